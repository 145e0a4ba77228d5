"""Dependencies that hang (a link that stops moving bytes, a process stopped with SIGSTOP), each
answered within its own bound by the quick gateway (``QUICK_SETTINGS``): how long the answer took,
that the bound and not something else ended it, that ``/healthz`` and ``/metrics`` answered at once
meanwhile, that nothing was left behind, and that the next upload succeeds once the hang ends."""

import os
import signal
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from typing import Any

import httpx

from gateway.storage.s3 import client_timeouts
from testkit.live import wait_until
from testkit.problems import assert_problem
from testkit.tcp_proxy import TcpProxy
from testkit.wavcorpus import pcm
from tests.faults.probes import (
    AT_ONCE_SECONDS,
    Timed,
    assert_answers_at_once,
    assert_next_upload_succeeds,
    assert_unavailable,
    note,
    thread_count,
    timed,
    upload,
)
from tests.faults.stack import (
    QUICK_DEADLINE_BASE_SECONDS,
    QUICK_DEADLINE_PER_AUDIO_SECOND,
    QUICK_DEPENDENCY_SECONDS,
    Stack,
)

# Past its bound, how late an answer may be on two shared, busy cores.
MARGIN_SECONDS = 2.0
# The gateway's database pool (DATABASE_POOL_SIZE's default): a hung database may hold at most
# twice as many threads.
POOL_SIZE = 10


def answering_at_once_until(url: str, pending: "Future[Any]", pid: int = 0) -> int:
    """Check ``/healthz`` and ``/metrics`` every 0.1 s until ``pending`` is done; returns the
    most threads process ``pid`` (if given) had at those times."""
    threads = 0
    while True:
        assert_answers_at_once(url)
        threads = max(threads, thread_count(pid) if pid else 0)
        if pending.done():
            return threads
        wait_for_futures([pending], timeout=0.1)  # the poll interval, not synchronisation


def restarted(proxy: TcpProxy) -> None:
    """End a hang as a restarted endpoint does: the connections that hung are dropped, unsent."""
    proxy.stop()
    proxy.start()
    proxy.resume()


def test_hung_storage_is_503_within_the_dependency_timeout_and_health_answers_meanwhile(
    quick: Stack, pool: ThreadPoolExecutor
) -> None:
    user = quick.new_user()
    quick.gate.arm()
    pending = pool.submit(timed, lambda: upload(quick.gateway.url, user))
    wait_until(quick.gate.waiting, what="the encode started", seconds=30)
    quick.proxies.s3.pause()  # the put that follows the encode gets no byte back
    released = time.monotonic()
    quick.gate.release()
    try:
        answering_at_once_until(quick.gateway.url, pending)
        answer: Timed[httpx.Response] = pending.result(30)
    finally:
        restarted(quick.proxies.s3)
    assert_unavailable(answer.value)
    waited = answer.ended - released
    note("hung S3: seconds from the encode's release to the 503", waited)
    # One attempt, its read bound the whole hang: ended by that bound, within the dependency's.
    assert waited >= client_timeouts(QUICK_DEPENDENCY_SECONDS)["read_timeout"]
    assert waited <= QUICK_DEPENDENCY_SECONDS + MARGIN_SECONDS
    assert quick.user_keys(user["id"]) == (set(), set())
    quick.assert_consistent()
    assert_next_upload_succeeds(quick)


def test_a_download_from_hung_storage_is_503_within_the_dependency_timeout(
    quick: Stack, pool: ThreadPoolExecutor
) -> None:
    user = quick.new_user()
    stored = upload(quick.gateway.url, user)
    assert stored.status_code == 201, stored.text
    quick.proxies.s3.pause()  # the GetObject gets no byte back
    try:
        with httpx.Client(timeout=60) as client:
            pending = pool.submit(timed, lambda: client.get(stored.json()["url"]))
            answering_at_once_until(quick.gateway.url, pending)
            answer: Timed[httpx.Response] = pending.result(30)
    finally:
        restarted(quick.proxies.s3)
    assert_unavailable(answer.value)
    note("hung S3: seconds to the download's 503", answer.seconds)
    assert answer.seconds >= client_timeouts(QUICK_DEPENDENCY_SECONDS)["read_timeout"]
    assert answer.seconds <= QUICK_DEPENDENCY_SECONDS + MARGIN_SECONDS
    with httpx.Client(timeout=10) as client:
        assert client.get(stored.json()["url"]).status_code == 200  # and once it ends, it serves


def test_hung_database_is_503_within_the_dependency_timeout_and_cannot_exhaust_threads(
    quick: Stack,
) -> None:
    user = quick.new_user()
    flood = 10 * POOL_SIZE
    threads_before = thread_count(quick.gateway.pid)
    listing = f"/users/{user['id']}/records"
    auth = {"Authorization": f"Bearer {user['token']}"}
    quick.proxies.database.pause()
    try:
        first = timed(lambda: upload(quick.gateway.url, user))  # its credentials hang
        with (
            httpx.Client(base_url=quick.gateway.url, timeout=60) as client,
            ThreadPoolExecutor(flood + 1) as clients,
        ):
            pending = [
                clients.submit(timed, lambda: client.get(listing, headers=auth))
                for _ in range(flood)
            ]
            everyone = clients.submit(lambda: [answer.result() for answer in pending])
            threads_during = answering_at_once_until(quick.gateway.url, everyone, quick.gateway.pid)
            answers = everyone.result(60)
    finally:
        quick.proxies.database.resume()
    note("hung database: upload answered after", first.seconds)
    note("hung database: slowest of the flood", max(answer.seconds for answer in answers))
    note("hung database: most threads added by the flood", threads_during - threads_before)
    assert_unavailable(first.value)
    # Ended by the gateway's own deadline: no server-side timeout can fire through a dead link.
    assert QUICK_DEPENDENCY_SECONDS <= first.seconds <= QUICK_DEPENDENCY_SECONDS + MARGIN_SECONDS
    for answer in answers:
        assert_unavailable(answer.value)
        assert answer.seconds <= QUICK_DEPENDENCY_SECONDS + MARGIN_SECONDS
    # Threads are bounded, not one per request: those in the driver (the pool and its overflow),
    # as many abandoned there (past that, requests fail fast), idle workers and a few for files.
    # Measured 35-55 on two busy cores; 101 with the cap removed.
    assert threads_during - threads_before <= 6 * POOL_SIZE < flood
    assert quick.user_keys(user["id"]) == (set(), set())
    readiness_started = time.monotonic()
    with httpx.Client(base_url=quick.gateway.url, timeout=10) as client:
        wait_until(lambda: client.get("/readyz").status_code == 200, what="ready again")
    note("hung database: ready again after the resume", time.monotonic() - readiness_started)
    assert time.monotonic() - readiness_started < QUICK_DEPENDENCY_SECONDS + MARGIN_SECONDS
    quick.assert_consistent()
    assert_next_upload_succeeds(quick)


def encode_bound(wav: bytes, audio_seconds: float) -> float:
    """How long the gateway waits for a hung transcoder: the encode deadline (base + per second
    of audio), plus 2 s and the time to move the bytes at 20 MB/s
    (``gateway.transcoder_client``)."""
    deadline = QUICK_DEADLINE_BASE_SECONDS + QUICK_DEADLINE_PER_AUDIO_SECOND * audio_seconds
    return deadline + 2.0 + len(wav) / 20e6


def test_hung_transcoder_is_504_after_each_recordings_own_deadline_and_downloads_go_on(
    quick: Stack,
) -> None:
    user = quick.new_user()
    stored = upload(quick.gateway.url, user)
    assert stored.status_code == 201, stored.text
    short, long = pcm(2.0, 8000, 1), pcm(80.0, 8000, 1)
    short_bound, long_bound = encode_bound(short, 2.0), encode_bound(long, 80.0)
    os.kill(quick.transcoder.pid, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(2) as clients:
            pending = [
                clients.submit(timed, lambda wav=wav: upload(quick.gateway.url, user, wav))
                for wav in (short, long)
            ]
            with httpx.Client(timeout=10) as client:
                while not all(answer.done() for answer in pending):
                    download = timed(lambda: client.get(stored.json()["url"]))
                    assert download.value.status_code == 200
                    assert download.value.headers["Content-Type"] == "audio/mpeg"
                    assert download.seconds < AT_ONCE_SECONDS
                    assert_answers_at_once(quick.gateway.url)
                    wait_for_futures(pending, timeout=0.2)  # the poll interval
            short_answer, long_answer = (answer.result(60) for answer in pending)
    finally:
        os.kill(quick.transcoder.pid, signal.SIGCONT)
    note("hung transcoder: 2 s clip answered after", short_answer.seconds)
    note("hung transcoder: 80 s file answered after", long_answer.seconds)
    for answer in (short_answer, long_answer):
        assert_problem(answer.value, 504)
        assert answer.value.json()["type"] == "https://riffle.dev/problems/transcode-timeout"
    # Each ended by its own deadline: the 2-second clip after seconds, the long file later.
    assert short_bound <= short_answer.seconds <= short_bound + MARGIN_SECONDS
    assert long_bound <= long_answer.seconds <= long_bound + MARGIN_SECONDS
    rows, objects = quick.user_keys(user["id"])
    stem = f"recordings/{user['id']}/{stored.json()['id']}"
    assert rows == objects == {f"{stem}.mp3", f"{stem}.peaks"}  # the MP3 and its peaks
    quick.assert_consistent()
    assert_next_upload_succeeds(quick)
