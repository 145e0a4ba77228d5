from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.config import FolderStorage, S3Storage, Settings


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("file://./var/objects", FolderStorage(Path("./var/objects"))),
        ("file:///srv/riffle", FolderStorage(Path("/srv/riffle"))),
        ("s3://recordings", S3Storage("recordings")),
        ("s3://my.bucket-01/", S3Storage("my.bucket-01")),
    ],
)
def test_storage_urls_are_parsed_once_into_the_store_they_name(
    url: str, location: FolderStorage | S3Storage
) -> None:
    assert Settings(storage_url=url).storage_url == location


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


def test_blank_variables_mean_unset_and_a_trailing_slash_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Compose passes unset variables through as empty strings.
    for name in ("PUBLIC_BASE_URL", "S3_ENDPOINT_URL", "STORAGE_URL", "MAX_UPLOAD_BYTES"):
        monkeypatch.setenv(name, "")
    settings = Settings()
    assert settings.public_base_url is None
    assert settings.s3_endpoint_url is None
    assert settings.storage_url == FolderStorage(Path("./var/objects"))
    assert settings.max_upload_bytes == 1024**3
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://a.example/")
    assert Settings().public_base_url == "https://a.example"
