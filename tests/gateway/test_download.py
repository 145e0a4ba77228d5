"""GET/HEAD /record: the MP3, ranges, validators, the file name, and 404s that tell nothing."""

import hashlib
import uuid
from dataclasses import dataclass

import httpx
import pytest

from testkit.api import new_user, upload
from testkit.problems import assert_problem
from testkit.wavcorpus import pcm


@dataclass(frozen=True)
class Stored:
    id: str
    user: str
    url: str
    size: int
    body: bytes


@pytest.fixture
def stored(client: httpx.Client) -> Stored:
    user = new_user(client)
    created = upload(client, user, pcm(1.0), filename="My Song.WAV", token=user["token"]).json()
    body = client.get(created["url"]).content
    return Stored(created["id"], user["id"], created["url"], created["size_bytes"], body)


def test_download_serves_the_whole_mp3_with_its_headers(
    client: httpx.Client, stored: Stored
) -> None:
    response = client.get(stored.url)
    assert response.status_code == 200
    assert response.content == stored.body
    assert len(response.content) == stored.size
    headers = response.headers
    assert headers["Content-Type"] == "audio/mpeg"
    assert headers["Content-Length"] == str(stored.size)
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"] == f'"{hashlib.sha256(stored.body).hexdigest()}"'
    assert headers["Last-Modified"].endswith(" GMT")
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"My Song.mp3\"; filename*=UTF-8''My%20Song.mp3"
    )


def test_head_answers_the_same_headers_without_a_body(client: httpx.Client, stored: Stored) -> None:
    got = client.get(stored.url)
    head = client.head(stored.url)
    assert head.status_code == 200
    assert head.content == b""
    for name in (
        "Content-Type",
        "Content-Length",
        "ETag",
        "Last-Modified",
        "Accept-Ranges",
        "Content-Disposition",
    ):
        assert head.headers[name] == got.headers[name]


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-9", 0, 9), ("bytes=100-", 100, None), ("bytes=-50", -50, None)],
)
def test_one_byte_range_is_206_with_content_range(
    client: httpx.Client, stored: Stored, header: str, start: int, end: int | None
) -> None:
    response = client.get(stored.url, headers={"Range": header})
    assert response.status_code == 206
    expected = stored.body[start : None if end is None else end + 1]
    assert response.content == expected
    first = start % stored.size
    assert response.headers["Content-Range"] == (
        f"bytes {first}-{first + len(expected) - 1}/{stored.size}"
    )
    assert response.headers["Content-Length"] == str(len(expected))


def test_range_past_the_end_is_416(client: httpx.Client, stored: Stored) -> None:
    response = client.get(stored.url, headers={"Range": f"bytes={stored.size}-"})
    assert_problem(response, 416)
    assert response.headers["Content-Range"] == f"bytes */{stored.size}"


def test_matching_if_none_match_is_304(client: httpx.Client, stored: Stored) -> None:
    etag = client.head(stored.url).headers["ETag"]
    response = client.get(stored.url, headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["ETag"] == etag
    assert client.get(stored.url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_ids_are_accepted_in_any_case(client: httpx.Client, stored: Stored) -> None:
    response = client.get("/record", params={"id": stored.id.upper(), "user": stored.user.upper()})
    assert response.status_code == 200


def test_unknown_and_foreign_records_are_identical_404s(
    client: httpx.Client, stored: Stored
) -> None:
    other = new_user(client)
    answers = [
        client.get("/record", params={"id": stored.id, "user": other["id"]}),
        client.get("/record", params={"id": str(uuid.uuid4()), "user": stored.user}),
        client.get("/record", params={"id": stored.id, "user": str(uuid.uuid4())}),
    ]
    bodies = [assert_problem(response, 404) for response in answers]
    assert all(body == bodies[0] for body in bodies)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"id": str(uuid.uuid4())},
        {"user": str(uuid.uuid4())},
        {"id": "x", "user": str(uuid.uuid4())},
        {"id": str(uuid.uuid4()), "user": "1"},
    ],
)
def test_missing_or_malformed_ids_are_422(client: httpx.Client, params: dict[str, str]) -> None:
    body = assert_problem(client.get("/record", params=params), 422)
    assert body["errors"]
