"""POST /record through the gateway and the transcoder (in process, real ffmpeg), on both back-ends.

The early 413 cut-off needs a socket: test_upload_cutoff.py."""

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from testkit.api import new_user, upload
from testkit.gateways import Gateway, GatewayFactory, assert_nothing_stored
from testkit.problems import assert_problem
from testkit.wavcorpus import pcm


def test_upload_converts_stores_and_answers_201_with_an_absolute_link(
    gateway: Gateway, client: httpx.Client
) -> None:
    user = new_user(client)
    response = upload(client, user, pcm(2.0), token=user["token"])
    assert response.status_code == 201, response.text
    body = response.json()
    record_id = body["id"]
    assert body["user"] == user["id"]
    assert body["url"] == f"{gateway.url}/record?id={record_id}&user={user['id']}"
    assert response.headers["Location"] == body["url"]
    assert body["duration_seconds"] == pytest.approx(2.0, abs=0.01)
    assert body["content_type"] == "audio/mpeg"
    assert body["size_bytes"] > 0
    assert gateway.record_count(user["id"]) == 1
    assert gateway.object_keys(user["id"]) == [
        f"recordings/{user['id']}/{record_id}.mp3",
        f"recordings/{user['id']}/{record_id}.peaks",
    ]
    download = client.get(body["url"])
    assert download.status_code == 200
    assert len(download.content) == body["size_bytes"]
    assert download.headers["Content-Type"] == "audio/mpeg"


def test_bearer_header_works_instead_of_the_token_field(client: httpx.Client) -> None:
    user = new_user(client)
    token = user["token"].upper()  # the case of the hex digits does not matter
    response = upload(client, user, pcm(0.5), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text


def test_url_uses_public_base_url_when_set(in_process_gateway: GatewayFactory) -> None:
    with (
        in_process_gateway(PUBLIC_BASE_URL="https://audio.example.com/") as gateway,
        gateway.client() as client,
    ):
        user = new_user(client)
        body = upload(client, user, pcm(0.3), token=user["token"]).json()
    assert body["url"] == f"https://audio.example.com/record?id={body['id']}&user={user['id']}"


def test_url_follows_the_host_the_client_addressed(client: httpx.Client) -> None:
    user = new_user(client)
    response = upload(
        client, user, pcm(0.3), token=user["token"], headers={"Host": "riffle.test:8080"}
    )
    assert response.json()["url"].startswith("http://riffle.test:8080/record?id=")


CREDENTIAL_FAILURES: list[tuple[str, Any]] = [
    ("no token", lambda user, other: None),
    ("wrong token", lambda user, other: str(uuid.uuid4())),
    ("another user's token", lambda user, other: other["token"]),
    ("malformed token", lambda user, other: "not-a-token"),
    ("empty token", lambda user, other: ""),
]


def test_every_credential_failure_is_one_indistinguishable_401_and_stores_nothing(
    gateway: Gateway, client: httpx.Client
) -> None:
    user, other = new_user(client), new_user(client)
    answers = []
    for _, make_token in CREDENTIAL_FAILURES:
        response = upload(client, user, pcm(0.2), token=make_token(user, other))
        answers.append(response)
    unknown = {"id": str(uuid.uuid4()), "token": user["token"]}
    answers.append(upload(client, unknown, pcm(0.2), token=user["token"]))
    bodies = []
    for response in answers:
        body = assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        bodies.append(body)
    assert all(body == bodies[0] for body in bodies)
    assert_nothing_stored(gateway, user["id"])


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"", "empty"),
        (b"R", "one byte"),
        (b"hello, this is text\n" * 10, "text"),
        (b"#EXTM3U\n#EXT-X-TARGETDURATION:10\nfile:///etc/passwd\n", "HLS playlist"),
        (bytes(range(256)) * 40, "binary noise"),
    ],
)
def test_non_wav_files_are_415_and_store_nothing(
    gateway: Gateway, client: httpx.Client, content: bytes, name: str
) -> None:
    user = new_user(client)
    assert_problem(upload(client, user, content, token=user["token"]), 415)
    assert_nothing_stored(gateway, user["id"])


def test_wav_header_without_audio_is_422_and_stores_nothing(
    gateway: Gateway, client: httpx.Client
) -> None:
    user = new_user(client)
    header_only = pcm(1.0)[:44]
    assert_problem(upload(client, user, header_only, token=user["token"]), 422)
    assert_nothing_stored(gateway, user["id"])


@pytest.mark.parametrize(
    ("data", "files", "field"),
    [
        ({}, {"file": ("a.wav", b"RIFF", "audio/wav")}, "user"),
        ({"user": "not-a-uuid", "token": "x"}, {"file": ("a.wav", b"RIFF", "audio/wav")}, "user"),
        ({"user": str(uuid.uuid4()), "token": "x"}, None, "file"),
    ],
)
def test_missing_or_malformed_form_fields_are_422(
    client: httpx.Client, data: dict[str, str], files: dict[str, Any] | None, field: str
) -> None:
    if files is None:
        files = {"other": ("x.txt", b"x", "text/plain")}
    body = assert_problem(client.post("/record", data=data, files=files), 422)
    assert body["errors"][0]["loc"] == ["body", field]


def test_a_body_that_is_not_multipart_is_422(client: httpx.Client) -> None:
    assert_problem(client.post("/record", json={"user": "x"}), 422)
    assert_problem(
        client.post("/record", content=b"RIFF", headers={"Content-Type": "audio/wav"}), 422
    )


def test_too_long_recordings_are_422(in_process_gateway: GatewayFactory) -> None:
    with in_process_gateway(MAX_DURATION_SECONDS="1") as gateway, gateway.client() as client:
        user = new_user(client)
        assert_problem(upload(client, user, pcm(1.5), token=user["token"]), 422)
        assert_nothing_stored(gateway, user["id"])
        assert upload(client, user, pcm(0.9), token=user["token"]).status_code == 201


def test_file_names_with_control_characters_and_any_length_are_kept_safely(
    client: httpx.Client,
) -> None:
    user = new_user(client)
    for name in ("nul\x00byte\x1b[31m.wav", "ü" * 1500 + ".wav", "../../etc/passwd"):
        created = upload(client, user, pcm(0.1), filename=name, token=user["token"])
        assert created.status_code == 201, created.text
        download = client.get(created.json()["url"])
        assert download.status_code == 200
        disposition = download.headers["Content-Disposition"]
        assert disposition.isascii()
        assert "/" not in disposition.split("filename*=")[0]
    listing = client.get(f"/users/{user['id']}/records", params={"token": user["token"]}).json()
    names = [item["original_filename"] for item in listing["items"]]
    assert names[-1] == "nul%00byte_[31m.wav"  # httpx escapes NUL as %00 (HTML5); ESC arrives raw
    raw = (
        b'--b\r\nContent-Disposition: form-data; name="user"\r\n\r\n'
        + user["id"].encode()
        + b'\r\n--b\r\nContent-Disposition: form-data; name="token"\r\n\r\n'
        + user["token"].encode()
        + b'\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="a\x00b.wav"\r\n\r\n'
        + pcm(0.1)
        + b"\r\n--b--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    assert client.post("/record", content=raw, headers=headers).status_code == 201
    listing = client.get(f"/users/{user['id']}/records", params={"token": user["token"]}).json()
    assert listing["items"][0]["original_filename"] == "a_b.wav"
    assert all(len(name) <= 255 for name in names)
    # A part header past the multipart parser's limit (4 KiB) is a malformed form, not a crash.
    huge = upload(client, user, pcm(0.1), filename="x" * 10_000 + ".wav", token=user["token"])
    assert_problem(huge, 422)


def slots_held(gateway: Gateway, user_id: str) -> int:
    """The user's rows in ``uploads_in_flight`` (the fair-use slots of uploads under way)."""
    engine = create_engine(gateway.backend.database_url)
    user = uuid.UUID(user_id).hex if engine.dialect.name == "sqlite" else user_id
    try:
        with engine.connect() as connection:
            query = text("SELECT count(*) FROM uploads_in_flight WHERE user_id = :user")
            return int(connection.execute(query, {"user": user}).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend_name", ["postgres+s3", "sqlite+folder"])
def test_an_uploads_slot_is_freed_with_its_record_and_also_when_the_insert_is_refused(
    in_process_gateway: GatewayFactory, backend_name: str
) -> None:
    # Room for one MP3 of 1 s (about 17 kB), not two: the second is refused at the insert.
    with (
        in_process_gateway(backend_name, USER_QUOTA_BYTES="25000") as gateway,
        gateway.client() as client,
    ):
        user = new_user(client)
        stored = upload(client, user, pcm(1.0), token=user["token"])
        assert stored.status_code == 201, stored.text
        assert slots_held(gateway, user["id"]) == 0  # freed by the record's own commit
        refused = upload(client, user, pcm(1.0), token=user["token"])
        assert_problem(refused, 413)
        assert refused.json()["type"].endswith("/quota-exceeded")
        # Refused by the insert's quota check: the slot is freed on the way out instead.
        assert slots_held(gateway, user["id"]) == 0
        assert upload(client, user, pcm(0.1), token=user["token"]).status_code == 201
