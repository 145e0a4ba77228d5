"""Refusals that must come early and cheaply, and a gateway's own life and death, against the live
stack: a stranger's large upload, a recording over the limit, a burst past the encoders, a full
spool disk, SIGTERM during an upload, and what a SIGKILLed gateway leaves for the next one."""

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from testkit.live import leftovers, wait_until
from testkit.problems import assert_problem
from testkit.procfs import bytes_written, is_running
from testkit.wavcorpus import pcm
from tests.faults.probes import (
    AT_ONCE_SECONDS,
    assert_next_upload_succeeds,
    assert_unavailable,
    note,
    stream_upload,
    timed,
    upload,
)
from tests.faults.stack import QUICK_MAX_DURATION_SECONDS, Stack, kill

MIB = 1024 * 1024
PROBLEMS = "https://riffle.dev/problems/"
MARGIN_SECONDS = 2.0


def test_a_wrong_token_before_a_large_file_is_401_before_the_file_is_read(stack: Stack) -> None:
    user = stack.new_user()
    written_before = bytes_written(stack.gateway.pid)
    answer = stream_upload(
        stack.gateway.url, bytes(60 * MIB), before=[("user", user["id"]), ("token", "wrong")]
    )
    written = bytes_written(stack.gateway.pid) - written_before
    note("wrong token on 60 MiB: seconds to the 401", answer.seconds)
    note("wrong token on 60 MiB: MiB the client sent first", answer.file_bytes_sent / MIB)
    # Refused on the fields: what got in is what the sockets buffer, not the file.
    assert answer.file_bytes_sent < 8 * MIB
    assert written < MIB, f"the gateway wrote {written} bytes"  # nothing spooled
    assert answer.status == 401
    assert answer.headers["connection"] == "close"
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.seconds < AT_ONCE_SECONDS + MARGIN_SECONDS
    assert stack.user_keys(user["id"]) == (set(), set())
    stack.assert_consistent()


def test_the_right_token_after_the_file_still_uploads(stack: Stack) -> None:
    user = stack.new_user()
    # Large enough that the fields arrive in later chunks than the start of the file.
    response = upload(stack.gateway.url, user, pcm(10.0, 44100, 2), fields_first=False)
    assert response.status_code == 201, response.text
    rows, objects = stack.user_keys(user["id"])
    stem = f"recordings/{user['id']}/{response.json()['id']}"
    assert rows == objects == {f"{stem}.mp3", f"{stem}.peaks"}  # the MP3 and its peaks
    stack.assert_consistent()


def test_a_recording_over_the_limit_is_422_audio_too_long_through_the_gateway(
    quick: Stack,
) -> None:
    user = quick.new_user()
    too_long = pcm(QUICK_MAX_DURATION_SECONDS + 1, 8000, 1)
    answer = timed(lambda: upload(quick.gateway.url, user, too_long))
    note("too-long recording: seconds to the 422", answer.seconds)
    assert_problem(answer.value, 422)
    problem = answer.value.json()
    assert problem["type"] == PROBLEMS + "audio-too-long"
    assert problem["title"] == "The recording is too long"
    assert answer.seconds < AT_ONCE_SECONDS + MARGIN_SECONDS  # refused on the header
    assert quick.user_keys(user["id"]) == (set(), set())
    quick.assert_consistent()
    assert_next_upload_succeeds(quick)


def test_a_burst_past_two_encoders_is_answered_201_or_503_each_within_its_deadline(
    stack: Stack, tmp_path: Path
) -> None:
    burst = 50
    # One upload per user: the encoders' admission is under test, not the per-user fair use.
    users = [stack.new_user() for _ in range(burst)]
    # The stack's gateway: deadline 10 s + 0.25 s per second of audio (the defaults).
    deadline = 10.0 + 0.25 * 0.3
    slow = {"MAX_CONCURRENT_ENCODES": "2", "FAKE_FFMPEG_DELAY_SECONDS": "0.3"}
    # One client with a connection for each upload, built before the clock starts: the burst's
    # times are the service's, not the set-up of 50 clients serialised on this process's GIL.
    shared = httpx.Client(
        base_url=stack.gateway.url, timeout=60, limits=httpx.Limits(max_connections=burst)
    )
    with (
        shared,
        stack.other_transcoder(tmp_path / "two-slots-tmp", **slow),
        ThreadPoolExecutor(burst) as clients,
    ):
        pending = [clients.submit(timed, lambda user=user: upload(shared, user)) for user in users]
        answers = [answer.result(60) for answer in pending]
        stack.assert_consistent()
    statuses = [answer.value.status_code for answer in answers]
    stored = [answer for answer in answers if answer.value.status_code == 201]
    refused = [answer for answer in answers if answer.value.status_code != 201]
    assert set(statuses) == {201, 503}, statuses  # both happen: the burst really queued
    note("burst of 50 on 2 encoders: stored", len(stored))
    note("burst of 50 on 2 encoders: slowest 201", max(answer.seconds for answer in stored))
    note("burst of 50 on 2 encoders: slowest 503", max(answer.seconds for answer in refused))
    note("burst of 50 on 2 encoders: median 503", statistics.median(a.seconds for a in refused))
    for answer in refused:
        assert_unavailable(answer.value)
        assert answer.value.json()["type"] == PROBLEMS + "dependency-unavailable"
    # Nobody waits past the deadline; refusals come long before it, not after a wait in line
    # (their time includes spooling 50 uploads at once on two shared cores).
    assert max(answer.seconds for answer in answers) <= deadline
    assert statistics.median(answer.seconds for answer in refused) <= deadline / 4
    keys = [stack.user_keys(user["id"]) for user in users]
    assert all(rows == objects for rows, objects in keys)
    assert sum(len(rows) for rows, _ in keys) == 2 * len(stored)  # an MP3 and its peaks each
    stack.assert_consistent()
    assert_next_upload_succeeds(stack)


@contextlib.contextmanager
def small_filesystem(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``folder`` (skips the test where mounting is refused)."""
    folder.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a {size} tmpfs for the spool here: {mount.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_spool_disk_is_507_with_retry_after_and_leaves_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    with (
        small_filesystem(tmp_path / "small-tmp", "2m") as small,
        stack.start_gateway(small) as gateway,
    ):
        view = stack.through(gateway, small)
        user = view.new_user()
        wav = pcm(20.0, 44100, 2)  # 3.4 MiB: more than the disk holds
        answer = stream_upload(
            gateway.url, wav, before=[("user", user["id"]), ("token", user["token"])]
        )
        note("full spool disk: seconds to the 507", answer.seconds)
        assert answer.status == 507
        assert int(answer.headers["retry-after"]) > 0
        assert answer.headers["connection"] == "close"
        assert answer.seconds < AT_ONCE_SECONDS + MARGIN_SECONDS
        assert leftovers(small) == []
        assert view.user_keys(user["id"]) == (set(), set())
        view.assert_consistent()
        assert_next_upload_succeeds(view)  # the disk has room again: nothing was left on it


def accepts_connections(url: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=1):
            return True
    except OSError:
        return False


def test_sigterm_during_an_upload_drains_then_finishes_it_then_exits(
    stack: Stack, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    drain = 2.0
    tmp = tmp_path / "draining-tmp"
    with stack.start_gateway(
        tmp,
        uvicorn_args=["--timeout-graceful-shutdown", "10"],
        SHUTDOWN_DRAIN_SECONDS=str(drain),
    ) as gateway:
        view = stack.through(gateway, tmp)
        user = view.new_user()
        stack.gate.arm()
        pending = pool.submit(upload, gateway.url, user)
        wait_until(stack.gate.waiting, what="the encode started", seconds=30)
        os.kill(gateway.pid, signal.SIGTERM)
        signalled = time.monotonic()
        with httpx.Client(base_url=gateway.url, timeout=10) as client:
            readiness = timed(lambda: client.get("/readyz"))
        assert_problem(readiness.value, 503)
        assert readiness.value.json()["failed"] == ["draining"]
        assert readiness.seconds < AT_ONCE_SECONDS
        wait_until(lambda: not accepts_connections(gateway.url), what="the listener closed")
        listened = time.monotonic() - signalled
        note("SIGTERM: seconds the listener stayed open", listened)
        assert drain <= listened <= drain + MARGIN_SECONDS
        assert is_running(gateway.pid)  # the upload in flight holds it
        stack.gate.release()
        response = pending.result(30)
        assert response.status_code == 201, response.text
        wait_until(lambda: not is_running(gateway.pid), what="the gateway exited")
        note("SIGTERM: seconds from the signal to the exit", time.monotonic() - signalled)
    rows, objects = stack.user_keys(user["id"])
    stem = f"recordings/{user['id']}/{response.json()['id']}"
    assert rows == objects == {f"{stem}.mp3", f"{stem}.peaks"}  # the MP3 and its peaks
    assert leftovers(tmp) == []
    stack.assert_consistent()


def test_a_new_gateway_sweeps_the_scratch_folder_a_killed_one_left(
    stack: Stack, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    shared = tmp_path / "shared-tmp"
    with stack.start_gateway(shared) as doomed:
        user = stack.through(doomed, shared).new_user()
        stack.gate.arm()
        pending = pool.submit(upload, doomed.url, user)
        wait_until(stack.gate.waiting, what="the encode started", seconds=30)
        [left] = shared.glob(f"riffle-{doomed.pid}-*")
        assert any(path.name == "upload.wav" for path in left.rglob("*"))
        kill(doomed.pid)
        with pytest.raises(httpx.TransportError):
            pending.result(30)
    stack.gate.release()
    assert left.exists()  # SIGKILL: nothing of the gateway ran to remove it
    with stack.start_gateway(shared) as successor:
        assert not left.exists()
        [own] = shared.glob("riffle-*")
        assert own.name.startswith(f"riffle-{successor.pid}-")
        assert_next_upload_succeeds(stack.through(successor, shared))
    assert stack.user_keys(user["id"]) == (set(), set())
    stack.assert_consistent()
