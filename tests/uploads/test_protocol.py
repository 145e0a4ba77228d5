"""tus 1.0.0 at /uploads/ against live gateways on both back-ends: every status of API.md
section 6, by hand, one request at a time."""

import base64
import hashlib
import uuid

import httpx
import pytest

from testkit.gateways import Gateway
from testkit.live import wait_until
from testkit.wavcorpus import pcm, text
from tests.uploads.tus import (
    METHODS,
    OCTETS,
    TUS,
    TUS_VERSION,
    WAV,
    assert_refused,
    assert_tus_problem,
    bearer,
    create,
    created,
    finished_job,
    head,
    metadata,
    new_user,
    patch,
    request,
    upload_id,
    upload_keys,
    upload_rows,
    uploads_of,
)


def test_options_answers_204_with_versions_extensions_and_limits_without_credentials(
    client: httpx.Client,
) -> None:
    for path in ("/uploads/", f"/uploads/{uuid.uuid4()}"):
        response = client.options(path)
        assert response.status_code == 204, response.text
        assert response.headers["Tus-Version"] == TUS_VERSION
        assert response.headers["Tus-Resumable"] == TUS_VERSION
        extensions = set(response.headers["Tus-Extension"].split(","))
        expected = {"creation", "creation-with-upload", "termination", "expiration", "checksum"}
        assert extensions == expected
        assert response.headers["Tus-Max-Size"] == str(1024**3)  # MAX_UPLOAD_BYTES's default
        assert set(response.headers["Tus-Checksum-Algorithm"].split(",")) == {"sha1", "sha256"}


@pytest.mark.parametrize("version", [None, "0.2.2"], ids=["missing", "0.2.2"])
@pytest.mark.parametrize("method", ["POST", *METHODS])
def test_missing_or_unsupported_tus_resumable_is_412_with_tus_version(
    client: httpx.Client, method: str, version: str | None
) -> None:
    user = new_user(client)
    location = created(client, user, length=len(WAV))
    headers = bearer(user) | ({"Tus-Resumable": version} if version else {})
    if method == "POST":
        headers |= {"Upload-Length": "100", "Upload-Metadata": metadata(user=user["id"])}
        response = client.post("/uploads/", headers=headers)
    else:
        response = request(client, method, location, headers, body=WAV[:100])
    assert_refused(response, 412)
    assert response.headers["Tus-Version"] == TUS_VERSION
    assert head(client, location, user).headers["Upload-Offset"] == "0"


def test_creation_answers_201_with_an_absolute_location_and_upload_expires(
    gateway: Gateway, client: httpx.Client
) -> None:
    user = new_user(client)
    response = create(client, user, length=len(WAV))
    assert response.status_code == 201, response.text
    location = response.headers["Location"]
    assert location == f"{gateway.url}/uploads/{upload_id(location)}"
    assert response.headers["Upload-Expires"].endswith(" GMT")
    assert response.headers["Tus-Resumable"] == TUS_VERSION
    assert "Upload-Offset" not in response.headers  # no body: nothing taken yet
    assert "Link" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [{}, {"Upload-Length": "-1"}, {"Upload-Length": "ten"}],
    ids=["missing", "negative", "not-a-number"],
)
def test_creation_without_a_valid_upload_length_is_400(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    user = new_user(client)
    sent = {**TUS, **bearer(user), "Upload-Metadata": metadata(user=user["id"]), **headers}
    assert_tus_problem(client.post("/uploads/", headers=sent), 400)


def test_deferred_length_is_not_offered_400(client: httpx.Client) -> None:
    user = new_user(client)
    sent = {**TUS, **bearer(user), "Upload-Defer-Length": "1"}
    sent["Upload-Metadata"] = metadata(user=user["id"])
    assert_tus_problem(client.post("/uploads/", headers=sent), 400)


def test_upload_length_over_tus_max_size_is_413(client: httpx.Client) -> None:
    user = new_user(client)
    maximum = int(client.options("/uploads/").headers["Tus-Max-Size"])
    assert create(client, user, length=maximum).status_code == 201
    assert_tus_problem(create(client, user, length=maximum + 1), 413)


def _metadata_cases(user: dict[str, str], other: dict[str, str]) -> dict[str, dict[str, str]]:
    return {
        "no user": {"Upload-Metadata": metadata(filename="take.wav")},
        "no metadata": {"Upload-Metadata": ""},
        "user not a uuid": {"Upload-Metadata": metadata(user="alice")},
        "unknown user": {"Upload-Metadata": metadata(user=str(uuid.uuid4()))},
        "another user's token": {"Authorization": f"Bearer {other['token']}"},
        "no token": {"Authorization": ""},
        "token of no one": {"Authorization": f"Bearer {uuid.uuid4()}"},
    }


def test_creation_with_a_bad_user_or_token_is_the_one_401_and_creates_nothing(
    gateway: Gateway, client: httpx.Client
) -> None:
    user, other = new_user(client), new_user(client)
    for case, headers in _metadata_cases(user, other).items():
        response = create(client, user, length=len(WAV), body=WAV, headers=headers)
        body = assert_tus_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), case
        assert body["type"].endswith("/invalid-credentials"), (case, body)
        assert "Location" not in response.headers, case
    assert uploads_of(gateway, user["id"]) == uploads_of(gateway, other["id"]) == 0


def test_malformed_metadata_is_400(client: httpx.Client) -> None:
    user = new_user(client)
    """The header itself is not tus's ``key base64`` pairs (a ``user`` that decodes to no
    UUID is the 401 above)."""
    for header in ("user a b c", f"user {user['id']}", f"{metadata(user=user['id'])},user eA=="):
        response = create(client, user, length=len(WAV), headers={"Upload-Metadata": header})
        assert_tus_problem(response, 400)


def test_creation_with_upload_takes_the_bytes_and_answers_upload_offset(
    client: httpx.Client,
) -> None:
    user = new_user(client)
    response = create(client, user, length=len(WAV), body=WAV[:1000])
    assert response.status_code == 201, response.text
    assert response.headers["Upload-Offset"] == "1000"
    assert "Link" not in response.headers  # not the last byte yet
    assert head(client, response.headers["Location"], user).headers["Upload-Offset"] == "1000"


def test_head_reports_offset_length_metadata_and_is_not_cached(client: httpx.Client) -> None:
    user = new_user(client)
    location = created(client, user, length=len(WAV))
    assert patch(client, location, user, offset=0, body=WAV[:777]).status_code == 204
    response = head(client, location, user)
    assert response.status_code == 200
    assert response.headers["Upload-Offset"] == "777"
    assert response.headers["Upload-Length"] == str(len(WAV))
    assert response.headers["Upload-Metadata"] == metadata(user=user["id"], filename="take.wav")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Upload-Expires"].endswith(" GMT")
    assert response.headers["Tus-Resumable"] == TUS_VERSION
    assert response.content == b""


def test_patch_appends_and_answers_the_new_offset(client: httpx.Client) -> None:
    user = new_user(client)
    location = created(client, user, length=len(WAV))
    first = patch(client, location, user, offset=0, body=WAV[:4096])
    assert first.status_code == 204, first.text
    assert first.headers["Upload-Offset"] == "4096"
    assert first.headers["Upload-Expires"].endswith(" GMT")
    second = patch(client, location, user, offset=4096, body=WAV[4096:9000])
    assert second.headers["Upload-Offset"] == "9000"


def test_patch_at_the_wrong_offset_is_409_and_keeps_nothing(client: httpx.Client) -> None:
    user = new_user(client)
    location = created(client, user, length=len(WAV))
    patch(client, location, user, offset=0, body=WAV[:1000])
    for offset in (0, 999, 1001):
        response = patch(client, location, user, offset=offset, body=WAV[offset : offset + 500])
        assert_tus_problem(response, 409)
        assert response.headers["Upload-Offset"] == "1000"
    assert head(client, location, user).headers["Upload-Offset"] == "1000"


@pytest.mark.parametrize("offset", [None, "-5", "x"], ids=["missing", "negative", "not-a-number"])
def test_patch_without_a_valid_upload_offset_is_400(
    client: httpx.Client, offset: str | None
) -> None:
    user = new_user(client)
    location = created(client, user, length=len(WAV))
    headers = {**TUS, **bearer(user), **OCTETS} | ({"Upload-Offset": offset} if offset else {})
    assert_tus_problem(client.patch(location, content=WAV[:100], headers=headers), 400)


@pytest.mark.parametrize("content_type", [None, "application/octet-stream", "audio/wav"])
def test_patch_with_the_wrong_content_type_is_415(
    client: httpx.Client, content_type: str | None
) -> None:
    user = new_user(client)
    location = created(client, user, length=len(WAV))
    headers = {**TUS, **bearer(user), "Upload-Offset": "0"}
    if content_type:
        headers["Content-Type"] = content_type
    assert_tus_problem(client.patch(location, content=WAV[:100], headers=headers), 415)
    assert head(client, location, user).headers["Upload-Offset"] == "0"


def test_patch_past_upload_length_is_413_and_keeps_nothing(client: httpx.Client) -> None:
    user = new_user(client)
    location = created(client, user, length=len(WAV))
    assert_tus_problem(patch(client, location, user, offset=0, body=WAV + b"\0"), 413)
    assert head(client, location, user).headers["Upload-Offset"] == "0"


def checksum(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


@pytest.mark.parametrize("algorithm", ["sha1", "sha256"])
def test_a_matching_checksum_is_taken_and_a_wrong_one_is_460_keeping_nothing(
    gateway: Gateway, client: httpx.Client, algorithm: str
) -> None:
    user = new_user(client)
    location = created(client, user, length=len(WAV))
    good = patch(
        client, location, user, offset=0, body=WAV[:2000],
        headers={"Upload-Checksum": checksum(algorithm, WAV[:2000])},
    )  # fmt: skip
    assert good.status_code == 204, good.text
    assert good.headers["Upload-Offset"] == "2000"
    keys = upload_keys(gateway, upload_id(location))
    wrong = patch(
        client, location, user, offset=2000, body=WAV[2000:3000],
        headers={"Upload-Checksum": checksum(algorithm, WAV[2000:2999])},
    )  # fmt: skip
    body = assert_tus_problem(wrong, 460)
    assert body["status"] == 460
    assert head(client, location, user).headers["Upload-Offset"] == "2000"
    assert upload_keys(gateway, upload_id(location)) == keys  # the refused chunk left no object


@pytest.mark.parametrize(
    "header",
    [
        "md5 AAAA",
        "crc32 AAAA",
        "sha1",
        "sha1 !!!!",
        f"sha256 {base64.b64encode(bytes(20)).decode()}",
    ],
    ids=["md5", "crc32", "no-digest", "not-base64", "wrong-length"],
)
def test_an_unsupported_algorithm_or_malformed_checksum_is_400(
    client: httpx.Client, header: str
) -> None:
    user = new_user(client)
    location = created(client, user, length=len(WAV))
    response = patch(
        client, location, user, offset=0, body=WAV[:100], headers={"Upload-Checksum": header}
    )
    assert_tus_problem(response, 400)
    assert head(client, location, user).headers["Upload-Offset"] == "0"


@pytest.mark.parametrize("method", METHODS)
def test_an_unknown_upload_is_404(client: httpx.Client, method: str) -> None:
    user = new_user(client)
    headers = {**TUS, **bearer(user)}
    assert_refused(request(client, method, f"/uploads/{uuid.uuid4()}", headers), 404)


@pytest.mark.parametrize("method", METHODS)
def test_another_users_upload_is_404_with_a_valid_token_and_left_alone(
    gateway: Gateway, client: httpx.Client, method: str
) -> None:
    owner, other = new_user(client), new_user(client)
    location = created(client, owner, length=len(WAV))
    patch(client, location, owner, offset=0, body=WAV[:100])
    response = request(client, method, location, {**TUS, **bearer(other)}, offset=100, body=WAV)
    assert_refused(response, 404)
    assert head(client, location, owner).headers["Upload-Offset"] == "100"
    assert upload_keys(gateway, upload_id(location))


@pytest.mark.parametrize("method", METHODS)
def test_a_token_that_is_no_ones_is_401(client: httpx.Client, method: str) -> None:
    owner = new_user(client)
    location = created(client, owner, length=len(WAV))
    for token in (str(uuid.uuid4()), "not-a-token", None):
        headers = TUS | ({"Authorization": f"Bearer {token}"} if token else {})
        response = request(client, method, location, headers, body=WAV[:100])
        assert_refused(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert head(client, location, owner).headers["Upload-Offset"] == "0"


def test_delete_answers_204_then_404_and_the_partial_data_is_gone(
    gateway: Gateway, client: httpx.Client
) -> None:
    user = new_user(client)
    location = created(client, user, length=len(WAV))
    patch(client, location, user, offset=0, body=WAV[:1000])
    patch(client, location, user, offset=1000, body=WAV[1000:3000])
    upload = upload_id(location)
    assert len(upload_keys(gateway, upload)) == 2
    response = client.delete(location, headers={**TUS, **bearer(user)})
    assert response.status_code == 204, response.text
    assert response.headers["Tus-Resumable"] == TUS_VERSION
    assert upload_keys(gateway, upload) == []
    assert upload_rows(gateway, upload) == {"uploads": 0, "upload_chunks": 0}
    for method in METHODS:
        assert_refused(request(client, method, location, {**TUS, **bearer(user)}), 404)


def test_a_first_chunk_that_is_not_a_wav_is_415_and_terminates_the_upload(
    gateway: Gateway, client: httpx.Client
) -> None:
    user = new_user(client)
    location = created(client, user, length=len(WAV))
    assert_tus_problem(patch(client, location, user, offset=0, body=text()[:64]), 415)
    assert_refused(head(client, location, user), 404)
    assert upload_rows(gateway, upload_id(location)) == {"uploads": 0, "upload_chunks": 0}
    assert upload_keys(gateway, upload_id(location)) == []


def test_creation_with_an_upload_that_is_not_a_wav_is_415_and_keeps_nothing(
    gateway: Gateway, client: httpx.Client
) -> None:
    user = new_user(client)
    not_wav = b"ID3\x04" + bytes(4000)
    assert_tus_problem(create(client, user, length=len(not_wav), body=not_wav), 415)
    assert uploads_of(gateway, user["id"]) == 0


@pytest.mark.parametrize("bad_at", [0, 3, 8, 11])
def test_first_bytes_split_into_tiny_chunks_are_still_checked(
    gateway: Gateway, client: httpx.Client, bad_at: int
) -> None:
    """The magic (RIFF …. WAVE) arrives a few bytes at a time; a wrong byte anywhere in it is 415
    as soon as it arrives, and the upload is gone."""
    user = new_user(client)
    location = created(client, user, length=len(WAV))
    spoiled = WAV[:bad_at] + b"X" + WAV[bad_at + 1 :]
    offset = 0
    for size in (2, 3, 4, 5):
        piece = spoiled[offset : offset + size]
        response = patch(client, location, user, offset=offset, body=piece)
        if offset + size > bad_at:
            assert_tus_problem(response, 415)
            break
        assert response.status_code == 204, response.text
        offset += size
    else:
        pytest.fail("the bad byte was never sent")
    assert_refused(head(client, location, user), 404)
    assert upload_keys(gateway, upload_id(location)) == []


def test_a_wav_sent_a_few_bytes_at_a_time_is_taken(client: httpx.Client) -> None:
    user = new_user(client)
    location = created(client, user, length=len(WAV))
    offset = 0
    for size in (1, 2, 3, 4, 5, 6):
        response = patch(client, location, user, offset=offset, body=WAV[offset : offset + size])
        assert response.status_code == 204, response.text
        offset += size
    assert head(client, location, user).headers["Upload-Offset"] == str(offset)


def test_the_last_byte_links_the_job_which_succeeds_with_a_downloadable_mp3(
    gateway: Gateway, client: httpx.Client
) -> None:
    user = new_user(client)
    wav = pcm(2.0)
    response = create(client, user, length=len(wav), body=wav[:5000])
    location = response.headers["Location"]
    upload = upload_id(location)
    done = patch(client, location, user, offset=5000, body=wav[5000:])
    assert done.status_code == 204, done.text
    assert done.headers["Upload-Offset"] == str(len(wav))
    job_url = f"{gateway.url}/jobs/{upload}"
    assert done.headers["Link"] == f'<{job_url}>; rel="monitor"'
    job = finished_job(client, user, job_url)
    assert job["status"] == "succeeded", job
    assert job["id"] == str(upload)
    assert job["progress"] == 1.0
    record = job["record"]
    assert record["duration_seconds"] == pytest.approx(2.0, abs=0.05)
    mp3 = client.get(record["url"])
    assert mp3.status_code == 200
    assert mp3.headers["Content-Type"] == "audio/mpeg"
    assert len(mp3.content) == record["size_bytes"]
    assert gateway.record_count(user["id"]) == 1
    # HEAD still answers after the last byte (until expiry); no byte may be added.
    status = head(client, location, user)
    assert status.status_code == 200
    assert status.headers["Upload-Offset"] == status.headers["Upload-Length"] == str(len(wav))
    assert_tus_problem(patch(client, location, user, offset=len(wav), body=b"\0"), 413)
    wait_until(lambda: upload_keys(gateway, upload) == [], what="the job's chunks removed")


def test_creation_with_the_whole_upload_links_the_job(
    gateway: Gateway, client: httpx.Client
) -> None:
    user = new_user(client)
    response = create(client, user, length=len(WAV), body=WAV)
    assert response.status_code == 201, response.text
    assert response.headers["Upload-Offset"] == str(len(WAV))
    job_url = f"{gateway.url}/jobs/{upload_id(response.headers['Location'])}"
    assert response.headers["Link"] == f'<{job_url}>; rel="monitor"'
    assert finished_job(client, user, job_url)["status"] == "succeeded"
