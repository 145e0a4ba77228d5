"""Idempotency-Key and fair use on two live gateway processes sharing one PostgreSQL and one
bucket: the database is the one place that knows, so neither holds per process."""

import base64
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from testkit.jobstack import JobStack, new_user
from testkit.live import LiveServer, wait_until
from testkit.problems import assert_problem
from testkit.wavcorpus import pcm

WAV = pcm(0.5, 22050, 1)
OTHER_WAV = pcm(0.6, 22050, 1)


def post(
    url: str,
    user: dict[str, str],
    wav: bytes = WAV,
    *,
    key: str | None = None,
    asynchronous: bool = False,
    title: str | None = None,
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    if asynchronous:
        headers["Prefer"] = "respond-async"
    data = {"user": user["id"], "token": user["token"]}
    if title is not None:
        data["title"] = title
    with httpx.Client(base_url=url, timeout=60) as client:
        return client.post(
            "/record", data=data, files={"file": ("take.wav", wav, "audio/wav")}, headers=headers
        )


@pytest.fixture(scope="module")
def two_gateways(job_stack: JobStack) -> Iterator[tuple[LiveServer, LiveServer]]:
    with (
        job_stack.gateway(MAX_UPLOADS_IN_FLIGHT_PER_USER="4") as first,
        job_stack.gateway(MAX_UPLOADS_IN_FLIGHT_PER_USER="4") as second,
    ):
        yield first, second


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(10) as executor:
        yield executor


# --- Idempotency-Key ---------------------------------------------------------------------------


def test_a_repeat_with_the_same_key_replays_the_first_answer_on_either_gateway(
    job_stack: JobStack, two_gateways: tuple[LiveServer, LiveServer]
) -> None:
    first, second = two_gateways
    user = new_user(first.url)
    key = str(uuid.uuid4())
    original = post(first.url, user, key=key)
    assert original.status_code == 201, original.text
    assert "Idempotent-Replayed" not in original.headers
    for gateway in (first, second):  # a new multipart boundary each time: still the same request
        again = post(gateway.url, user, key=key)
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == original.json()
        assert again.headers["Location"] == original.headers["Location"]
    assert len(job_stack.records_of(user["id"])) == 2  # one MP3 and its peaks
    assert job_stack.records_of(user["id"]) == job_stack.objects_of(user["id"])


def test_the_same_key_on_a_different_request_is_422(
    job_stack: JobStack, two_gateways: tuple[LiveServer, LiveServer]
) -> None:
    first, second = two_gateways
    user = new_user(first.url)
    key = str(uuid.uuid4())
    assert post(first.url, user, key=key).status_code == 201
    body = assert_problem(post(second.url, user, OTHER_WAV, key=key), 422)
    assert body["type"].endswith("/idempotency-key-reused")
    assert_problem(post(second.url, user, key=key, title="another field"), 422)
    # Keys are per user: another user's request with the same key is a request of its own.
    other = new_user(first.url)
    assert post(second.url, other, OTHER_WAV, key=key).status_code == 201
    assert len(job_stack.records_of(user["id"])) == 2  # one MP3 and its peaks


def test_the_same_request_twice_at_once_makes_one_record_and_one_409(
    job_stack: JobStack, two_gateways: tuple[LiveServer, LiveServer], pool: ThreadPoolExecutor
) -> None:
    first, second = two_gateways
    user = new_user(first.url)
    key = str(uuid.uuid4())
    with job_stack.slow_encodes():
        leader = pool.submit(post, first.url, user, key=key)
        wait_until(job_stack.encode_started, what="the first request's encode started")
        follower = post(second.url, user, key=key)
        body = assert_problem(follower, 409)
        assert body["type"].endswith("/idempotency-key-in-use")
    assert leader.result(timeout=60).status_code == 201
    replay = post(second.url, user, key=key)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == leader.result().json()
    assert len(job_stack.records_of(user["id"])) == 2  # one MP3 and its peaks


def test_a_failed_request_gives_its_key_back(two_gateways: tuple[LiveServer, LiveServer]) -> None:
    first, _ = two_gateways
    user = new_user(first.url)
    key = str(uuid.uuid4())
    assert_problem(post(first.url, user, b"not a wav at all", key=key), 415)
    assert_problem(post(first.url, user, b"not a wav at all", key=key), 415)  # not a replay


def test_async_uploads_and_tus_creations_replay_too(
    job_stack: JobStack, two_gateways: tuple[LiveServer, LiveServer]
) -> None:
    first, second = two_gateways
    user = new_user(first.url)
    key = str(uuid.uuid4())
    accepted = post(first.url, user, key=key, asynchronous=True)
    assert accepted.status_code == 202
    again = post(second.url, user, key=key, asynchronous=True)
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == accepted.headers["Location"]
    assert again.json()["id"] == accepted.json()["id"]
    assert job_stack.scalar("SELECT count(*) FROM jobs WHERE user_id = :user", user=user["id"]) == 1

    metadata = f"user {base64.b64encode(user['id'].encode()).decode()}"
    tus_headers = {
        "Tus-Resumable": "1.0.0",
        "Upload-Length": "1000",
        "Upload-Metadata": metadata,
        "Authorization": f"Bearer {user['token']}",
        "Idempotency-Key": key + "-tus",
    }
    with httpx.Client(timeout=30) as client:
        created = client.post(f"{first.url}/uploads/", headers=tus_headers)
        assert created.status_code == 201, created.text
        replayed = client.post(f"{second.url}/uploads/", headers=tus_headers)
        assert replayed.status_code == 201
        assert replayed.headers["Idempotent-Replayed"] == "true"
        assert replayed.headers["Location"] == created.headers["Location"]
        different = client.post(
            f"{second.url}/uploads/", headers={**tus_headers, "Upload-Length": "2000"}
        )
        assert_problem(different, 422)


# --- fair use ----------------------------------------------------------------------------------


def test_ten_parallel_uploads_with_a_limit_of_four_are_four_accepted_and_six_429(
    job_stack: JobStack, two_gateways: tuple[LiveServer, LiveServer], pool: ThreadPoolExecutor
) -> None:
    first, second = two_gateways
    user = new_user(first.url)
    with job_stack.slow_encodes():
        # Held in their encodes, the first four keep their slots while the others arrive.
        held = [pool.submit(post, gateway.url, user) for gateway in (first, second, first, second)]
        wait_until(
            lambda: (
                job_stack.scalar(
                    "SELECT count(*) FROM uploads_in_flight WHERE user_id = :user", user=user["id"]
                )
                == 4
            ),
            what="four uploads in flight",
        )
        refused = [
            pool.submit(post, gateway.url, user).result(timeout=30)
            for gateway in (first, second) * 3
        ]
    for response in refused:
        assert_problem(response, 429)
        assert int(response.headers["Retry-After"]) > 0
        assert response.headers["RateLimit-Policy"] == '"inflight";q=4'
        assert response.headers["RateLimit"].startswith('"inflight";r=0;t=')
    assert [future.result(timeout=60).status_code for future in held] == [201] * 4
    assert len(job_stack.records_of(user["id"])) == 4 * 2
    # The slots came back: the next upload is accepted.
    assert post(second.url, user).status_code == 201


def test_jobs_queued_count_as_uploads_in_flight(
    job_stack: JobStack, two_gateways: tuple[LiveServer, LiveServer]
) -> None:
    first, second = two_gateways
    user = new_user(first.url)
    for gateway in (first, second, first, second):  # no worker runs: they stay queued
        assert post(gateway.url, user, asynchronous=True).status_code == 202
    assert_problem(post(first.url, user, asynchronous=True), 429)
    assert_problem(post(second.url, user), 429)
    with job_stack.worker():
        wait_until(
            lambda: (
                job_stack.scalar(
                    "SELECT count(*) FROM jobs WHERE user_id = :user AND status = 'succeeded'",
                    user=user["id"],
                )
                == 4
            ),
            seconds=30,
            what="the four jobs done",
        )
    assert post(second.url, user).status_code == 201


def test_the_quota_of_stored_bytes_holds_across_gateways(job_stack: JobStack) -> None:
    with job_stack.gateway() as probe:
        user = new_user(probe.url)
        size = post(probe.url, user).json()["size_bytes"]
    quota = str(int(size * 1.5))  # room for one more MP3 of this size, not two
    with (
        job_stack.gateway(USER_QUOTA_BYTES=quota) as first,
        job_stack.gateway(USER_QUOTA_BYTES=quota) as second,
    ):
        fresh = new_user(first.url)
        assert post(first.url, fresh).status_code == 201
        body = assert_problem(post(second.url, fresh), 413)
        assert body["type"].endswith("/quota-exceeded")
        assert len(job_stack.records_of(fresh["id"])) == 2
        assert job_stack.records_of(fresh["id"]) == job_stack.objects_of(fresh["id"])
        with httpx.Client(base_url=first.url, timeout=30) as client:
            metrics = client.get("/metrics").text
        with httpx.Client(base_url=second.url, timeout=30) as client:
            metrics += client.get("/metrics").text
    assert 'riffle_fair_use_refusals_total{limit="quota"} 1.0' in metrics
