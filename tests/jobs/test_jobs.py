"""Durable jobs on the live stack (PostgreSQL, S3 over HTTP, real ffmpeg): what POST /record with
``Prefer: respond-async`` answers, what a job shows while it runs and when it ends, and that a
job survives its worker being killed and every process being restarted, with one record."""

import itertools
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from testkit.gateways import Gateway, GatewayFactory
from testkit.jobstack import JobStack, finished, job, new_user, submit
from testkit.live import wait_until
from testkit.problems import assert_problem
from testkit.procfs import is_running
from testkit.wavcorpus import garbage_adpcm, pcm, text, too_many_channels

WAV = pcm(0.5, 22050, 1)


def test_an_async_upload_is_202_with_the_job_then_its_record_downloads(gateway: Gateway) -> None:
    user = new_user(gateway)
    response = submit(gateway, user, WAV)
    assert response.status_code == 202, response.text
    assert response.headers["Preference-Applied"] == "respond-async"
    body = response.json()
    assert response.headers["Location"] == f"{gateway.url}/jobs/{body['id']}"
    assert body["status"] == "queued"
    assert body["record"] is None
    assert body["error"] is None
    done = finished(gateway, user, body["id"])
    assert done["status"] == "succeeded", done
    assert done["progress"] == 1.0
    record = done["record"]
    assert isinstance(record, dict)
    assert record["duration_seconds"] == pytest.approx(0.5, abs=0.05)
    with gateway.client() as client:
        download = client.get(str(record["url"]))
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "audio/mpeg"
    stem = f"recordings/{user['id']}/{record['id']}"
    assert gateway.object_keys(user["id"]) == [f"{stem}.mp3", f"{stem}.peaks"]


@pytest.mark.parametrize(
    ("wav", "status", "token_ok"),
    [
        (WAV, 401, False),
        (text(), 415, True),
        (too_many_channels(), 422, True),
    ],
    ids=["wrong-token", "not-a-wav", "header-says-unusable"],
)
def test_what_the_request_and_header_show_is_answered_at_once_without_a_job(
    gateway: Gateway, wav: bytes, status: int, token_ok: bool
) -> None:
    user = new_user(gateway)
    if not token_ok:
        user = {**user, "token": str(uuid.uuid4())}
    assert_problem(submit(gateway, user, wav), status)
    assert gateway.record_count(user["id"]) == 0
    assert gateway.object_keys(user["id"]) == []


def test_a_recording_too_long_by_its_header_is_422_audio_too_long_at_once(
    start_gateway: GatewayFactory,
) -> None:
    with start_gateway("sqlite+folder", MAX_DURATION_SECONDS="1") as short:
        user = new_user(short.url)
        body = assert_problem(submit(short.url, user, pcm(2, 8000, 1)), 422)
    assert body["type"].endswith("/audio-too-long")


def test_a_failed_job_carries_the_problem_the_synchronous_upload_answers(gateway: Gateway) -> None:
    user = new_user(gateway)
    bad = garbage_adpcm()  # a sound header over audio no decoder takes: only the encode finds it
    with gateway.client() as client:
        synchronous = client.post(
            "/record",
            data={"user": user["id"], "token": user["token"]},
            files={"file": ("bad.wav", bad, "audio/wav")},
        )
    expected = assert_problem(synchronous, 422)
    response = submit(gateway, user, bad)
    assert response.status_code == 202, response.text
    done = finished(gateway, user, response.json()["id"])
    assert done["status"] == "failed"
    error = done["error"]
    assert isinstance(error, dict)
    assert {key: error[key] for key in ("type", "title", "status")} == {
        key: expected[key] for key in ("type", "title", "status")
    }
    assert done["record"] is None
    assert gateway.record_count(user["id"]) == 0
    assert gateway.object_keys(user["id"]) == []


def test_jobs_are_the_owners_alone(gateway: Gateway) -> None:
    owner, other = new_user(gateway), new_user(gateway)
    job_id = submit(gateway, owner, WAV).json()["id"]
    with gateway.client() as client:
        for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/events"):
            assert_problem(client.get(path, params={"token": other["token"]}), 404)
            assert_problem(client.get(path, params={"token": str(uuid.uuid4())}), 401)
            assert_problem(client.get(path), 401)
        unknown = f"/jobs/{uuid.uuid4()}"
        assert_problem(client.get(unknown, params={"token": owner["token"]}), 404)
    finished(gateway, owner, job_id)


def read_events(url: str, token: str, job_id: str) -> list[tuple[float, str, dict[str, object]]]:
    """(arrival time, event, data) of the whole stream, until the server ends it."""
    events: list[tuple[float, str, dict[str, object]]] = []
    name = ""
    with (
        httpx.Client(base_url=url, timeout=60) as client,
        client.stream("GET", f"/jobs/{job_id}/events", params={"token": token}) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((time.monotonic(), name, json.loads(line.removeprefix("data: "))))
    return events


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as executor:
        yield executor


def test_the_event_stream_shows_monotone_progress_every_second_then_succeeded(
    job_stack: JobStack, pool: ThreadPoolExecutor
) -> None:
    with job_stack.gateway() as gateway, job_stack.worker():
        user = new_user(gateway.url)
        with job_stack.slow_encodes():
            job_id = submit(gateway.url, user, pcm(60, 44100, 2)).json()["id"]
            wait_until(job_stack.encode_started, what="the encode started", seconds=20)
            stream = pool.submit(read_events, gateway.url, user["token"], job_id)
            # Not synchronisation: the encode is held this long, and all the while the stream
            # must keep saying where the job is.
            time.sleep(2.5)
        events = stream.result(timeout=60)
    names = [name for _, name, _ in events]
    assert names[0] == "progress"
    assert names[-1] == "succeeded"
    assert names.count("succeeded") == 1
    assert set(names[:-1]) == {"progress"}
    progress = [float(str(data["progress"])) for _, name, data in events if name == "progress"]
    assert progress == sorted(progress)
    times = [at for at, _, _ in events]
    assert max(later - earlier for earlier, later in itertools.pairwise(times)) <= 1.5
    record = events[-1][2]["record"]
    assert isinstance(record, dict)
    assert record["duration_seconds"] == pytest.approx(60, abs=0.1)


def test_a_worker_killed_mid_encode_loses_nothing_the_job_runs_again_once(
    job_stack: JobStack,
) -> None:
    with job_stack.gateway() as gateway:
        user = new_user(gateway.url)
        with job_stack.slow_encodes(), job_stack.worker() as doomed:
            job_id = submit(gateway.url, user, pcm(3, 44100, 2)).json()["id"]
            wait_until(job_stack.encode_started, what="the encode started", seconds=20)
            assert job(gateway.url, user, job_id)["status"] == "running"
            os.kill(doomed.pid, signal.SIGKILL)
            wait_until(lambda: not is_running(doomed.pid), what="the worker died")
        with job_stack.worker():
            done = finished(gateway.url, user, job_id, seconds=40)
    assert done["status"] == "succeeded", done
    attempts = job_stack.scalar("SELECT attempts FROM jobs WHERE id = :id", id=job_id)
    assert attempts == 2  # the killed run, then the one that finished
    record = done["record"]
    assert isinstance(record, dict)
    key = f"recordings/{user['id']}/{record['id']}.mp3"
    both = {key, key.removesuffix(".mp3") + ".peaks"}  # the MP3 and its peaks
    assert job_stack.records_of(user["id"]) == job_stack.objects_of(user["id"]) == both
    wait_until(
        lambda: not any(job_id in obj for obj in job_stack.upload_objects()),
        what="the upload's chunks removed",
    )


def test_jobs_survive_a_restart_of_every_process(job_stack: JobStack) -> None:
    with job_stack.gateway() as gateway:
        user = new_user(gateway.url)
        job_ids = [submit(gateway.url, user, WAV).json()["id"] for _ in range(3)]
        assert {job(gateway.url, user, job_id)["status"] for job_id in job_ids} == {"queued"}
    # No process of the first generation is left; a new gateway and a worker take over.
    with job_stack.gateway() as gateway, job_stack.worker():
        outcomes = [finished(gateway.url, user, job_id) for job_id in job_ids]
    assert {str(outcome["status"]) for outcome in outcomes} == {"succeeded"}
    assert len(job_stack.records_of(user["id"])) == 3 * 2  # an MP3 and its peaks each
    assert job_stack.records_of(user["id"]) == job_stack.objects_of(user["id"])


def test_the_job_path_carries_the_audio_options_and_tags_as_the_synchronous_one(
    gateway: Gateway,
) -> None:
    user = new_user(gateway)
    fields = {"title": "Take 3", "artist": "The Testers", "quality": "4"}
    with gateway.client() as client:
        synchronous = client.post(
            "/record",
            data={"user": user["id"], "token": user["token"], **fields},
            files={"file": ("take.wav", WAV, "audio/wav")},
        )
        assert synchronous.status_code == 201, synchronous.text
        accepted = client.post(
            "/record",
            data={"user": user["id"], "token": user["token"], **fields},
            files={"file": ("take.wav", WAV, "audio/wav")},
            headers={"Prefer": "respond-async"},
        )
        assert accepted.status_code == 202, accepted.text
    done = finished(gateway, user, accepted.json()["id"])
    record = done["record"]
    assert isinstance(record, dict)
    expected = synchronous.json()
    for name in ("mode", "bitrate_kbps", "tags", "loudness", "duration_seconds", "size_bytes"):
        assert record[name] == expected[name], name
    assert record["mode"] == "vbr"
    assert record["tags"] == {"title": "Take 3", "artist": "The Testers"}


def test_bad_audio_options_are_422_at_once_on_the_job_path(gateway: Gateway) -> None:
    user = new_user(gateway)
    with gateway.client() as client:
        response = client.post(
            "/record",
            data={"user": user["id"], "token": user["token"], "bitrate": "128", "quality": "2"},
            files={"file": ("take.wav", WAV, "audio/wav")},
            headers={"Prefer": "respond-async"},
        )
    assert_problem(response, 422)
    assert gateway.record_count(user["id"]) == 0
