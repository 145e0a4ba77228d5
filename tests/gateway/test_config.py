import pytest
from pydantic import ValidationError

from gateway.config import Settings


@pytest.mark.parametrize(
    "url", ["file://./var/objects", "file:///srv/riffle", "s3://recordings", "s3://my.bucket-01/"]
)
def test_storage_urls_that_name_a_folder_or_a_valid_bucket_are_accepted(url: str) -> None:
    assert Settings(storage_url=url).storage_url == url


@pytest.mark.parametrize(
    "url",
    [
        "s3://dl",
        "s3://Recordings",
        "s3://-bucket",
        "s3://bucket/prefix",
        "s3://",
        "ftp://x",
        "file://",
    ],
)
def test_storage_urls_that_cannot_work_fail_at_start_up(url: str) -> None:
    with pytest.raises(ValidationError, match="storage_url"):
        Settings(storage_url=url)


def test_blank_public_base_url_means_unset_and_a_trailing_slash_is_dropped() -> None:
    assert Settings(public_base_url="").public_base_url is None
    assert Settings(public_base_url="https://a.example/").public_base_url == "https://a.example"
