"""Faults caused for real against live processes: each checks the answer, then the invariants
(no row without object, no object without row, no temp file, no encoder left), then that the
very next upload succeeds once the fault has cleared, without restarting the gateway."""

import os
import signal
import socket
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from testkit.fake_ffmpeg import HANGING_FFMPEG, fake_ffmpeg
from testkit.live import leftovers, wait_until
from testkit.problems import assert_problem
from testkit.procfs import child_pids, is_running
from testkit.wavcorpus import pcm
from tests.faults.probes import (
    assert_next_upload_succeeds,
    assert_reconcile_removes,
    assert_unavailable,
    upload,
)
from tests.faults.stack import Stack, kill


def during_encode(
    stack: Stack, pool: ThreadPoolExecutor, user: dict[str, str], fault: Callable[[], None]
) -> Future[httpx.Response]:
    """Start an upload, cause ``fault`` while its encode is held at the gate, then let it go on."""
    stack.gate.arm()
    pending = pool.submit(upload, stack.gateway.url, user)
    wait_until(stack.gate.waiting, what="the encode started", seconds=30)
    fault()
    stack.gate.release()
    return pending


def test_transcoder_not_running_is_503_with_retry_after_and_stores_nothing(stack: Stack) -> None:
    user = stack.new_user()
    stack.proxies.transcoder.stop()
    try:
        assert_unavailable(upload(stack.gateway.url, user))
    finally:
        stack.proxies.transcoder.start()
    assert stack.user_keys(user["id"]) == (set(), set())
    stack.assert_consistent()
    assert_next_upload_succeeds(stack)


def test_transcoder_killed_mid_encode_is_503_and_stores_nothing(
    stack: Stack, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    user = stack.new_user()
    doomed = stack.transcoder
    response = during_encode(stack, pool, user, lambda: kill(doomed.pid)).result(60)
    assert_unavailable(response)
    assert stack.user_keys(user["id"]) == (set(), set())
    # Its encoder notices the parent is gone and exits; the stack's checks then see none running.
    wait_until(lambda: not any(is_running(pid) for pid in stack.gate.encoder_pids()))
    # A SIGKILLed process cannot remove its own temp file: the replacement gets a fresh TMPDIR,
    # as a restarted container gets a fresh /tmp.
    replacement_tmp = tmp_path / "transcoder-tmp"
    stack.use_transcoder(stack.start_transcoder(replacement_tmp), replacement_tmp)
    stack.assert_consistent()
    assert_next_upload_succeeds(stack)


def test_transcoder_slower_than_its_timeout_is_504_and_the_encoder_is_killed(
    stack: Stack, tmp_path: Path
) -> None:
    user = stack.new_user()
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    hanging_tmp = tmp_path / "hanging-tmp"
    normal = stack.transcoder, stack.transcoder_tmp
    hanging = stack.start_transcoder(
        hanging_tmp,
        FFMPEG_PATH=str(fake_ffmpeg(tmp_path / "ffmpeg", HANGING_FFMPEG)),
        FAKE_FFMPEG_PID_DIR=str(pid_dir),
        TRANSCODE_TIMEOUT_SECONDS="1",
        ENCODE_IN_PROCESS="false",
    )
    try:
        response = upload(stack.gateway.url, user)
        assert_problem(response, 504)
        hung = [int(entry.name) for entry in pid_dir.iterdir()]
        assert hung, "the fake encoder never started"
        wait_until(lambda: child_pids(hanging.pid) == [], what="the hung encoder reaped")
        assert not any(is_running(pid) for pid in hung)
        wait_until(lambda: leftovers(hanging_tmp) == [], what="its temp file removed")
    finally:
        stack.proxies.transcoder.retarget(("127.0.0.1", int(normal[0].url.rsplit(":", 1)[1])))
    assert stack.user_keys(user["id"]) == (set(), set())
    stack.assert_consistent()
    assert_next_upload_succeeds(stack)


def test_storage_down_before_the_upload_is_503_and_stores_nothing(stack: Stack) -> None:
    user = stack.new_user()
    stack.proxies.s3.stop()
    try:
        assert_unavailable(upload(stack.gateway.url, user))
    finally:
        stack.proxies.s3.start()
    assert stack.user_keys(user["id"]) == (set(), set())
    stack.assert_consistent()
    assert_next_upload_succeeds(stack)


def test_storage_going_down_between_encode_and_put_is_503_and_stores_nothing(
    stack: Stack, pool: ThreadPoolExecutor
) -> None:
    user = stack.new_user()
    try:
        response = during_encode(stack, pool, user, stack.proxies.s3.stop).result(60)
    finally:
        stack.proxies.s3.start()
    assert_unavailable(response)
    assert stack.user_keys(user["id"]) == (set(), set())
    stack.assert_consistent()
    assert_next_upload_succeeds(stack)


def object_puts_and_deletes(stack: Stack, user_id: str) -> list[str]:
    """The S3 requests the gateway sent for this user's objects, e.g. ["PUT", "DELETE"] (an MP3
    and its peaks: two of each)."""
    return [
        method
        for method, path in stack.proxies.s3.requests()
        if f"/recordings/{user_id}/" in path and method in ("PUT", "DELETE")
    ]


def test_database_down_after_the_put_is_503_and_the_object_is_deleted(
    stack: Stack, pool: ThreadPoolExecutor
) -> None:
    user = stack.new_user()
    try:
        response = during_encode(stack, pool, user, stack.proxies.database.stop).result(60)
    finally:
        stack.proxies.database.start()
    assert_unavailable(response)
    assert object_puts_and_deletes(stack, user["id"]) == ["PUT", "PUT", "DELETE", "DELETE"]
    assert stack.user_keys(user["id"]) == (set(), set())
    stack.assert_consistent()
    assert_next_upload_succeeds(stack)  # the pool replaced its dead connections


def test_an_insert_the_database_refuses_is_503_and_the_object_is_deleted(stack: Stack) -> None:
    user = stack.new_user()
    engine = create_engine(stack.database_url)
    # A full disk, for this user's rows only: PostgreSQL's own error, raised by a trigger.
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION refuse_insert() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.user_id = '{user['id']}' THEN "
                "RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; "
                "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER refuse_insert BEFORE INSERT ON records "
                "FOR EACH ROW EXECUTE FUNCTION refuse_insert()"
            )
        )
    try:
        response = upload(stack.gateway.url, user)
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP TRIGGER refuse_insert ON records"))
            connection.execute(text("DROP FUNCTION refuse_insert()"))
        engine.dispose()
    assert_unavailable(response)
    assert object_puts_and_deletes(stack, user["id"]) == ["PUT", "PUT", "DELETE", "DELETE"]
    assert stack.user_keys(user["id"]) == (set(), set())
    stack.assert_consistent()
    assert upload(stack.gateway.url, user).status_code == 201
    stack.assert_consistent()


def test_client_disconnecting_mid_upload_stores_nothing_and_leaves_no_encoder(
    stack: Stack,
) -> None:
    user = stack.new_user()
    wav = pcm(3.0, 44100, 2)
    boundary = "faultboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="user"\r\n\r\n{user["id"]}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="token"\r\n\r\n{user["token"]}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    length = len(head) + len(wav) + len(f"\r\n--{boundary}--\r\n")
    port = int(stack.gateway.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(
            (
                f"POST /record HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {length}\r\n\r\n"
            ).encode()
            + head
            + wav[: len(wav) // 2]
        )
        wait_until(
            lambda: _spooling(stack.gateway_tmp) or child_pids(stack.transcoder.pid) != [],
            what="the gateway is reading the upload",
        )
    stack.assert_consistent()
    assert stack.user_keys(user["id"]) == (set(), set())
    assert_next_upload_succeeds(stack)


def _spooling(folder: Path) -> bool:
    return any(path.is_file() for path in folder.rglob("*"))


def test_gateway_killed_between_put_and_insert_leaves_an_orphan_reconcile_finds_and_removes(
    stack: Stack, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    with stack.start_gateway(tmp_path / "doomed-tmp") as doomed:
        with httpx.Client(base_url=doomed.url, timeout=30) as client:
            user = client.post("/users", json={"name": "doomed"}).json()
        stack.gate.arm()
        pending = pool.submit(upload, doomed.url, user)
        wait_until(stack.gate.waiting, what="the encode started", seconds=30)
        stack.proxies.database.pause()  # the insert will hang, after the put
        stack.gate.release()
        wait_until(lambda: len(stack.user_keys(user["id"])[1]) == 2, what="the objects were put")
        os.kill(doomed.pid, signal.SIGKILL)
        with pytest.raises(httpx.TransportError):
            pending.result(60)
    stack.proxies.database.resume()
    rows, objects = stack.user_keys(user["id"])
    assert rows == set()
    orphans = sorted(objects)  # the MP3 and its peaks
    assert len(orphans) == 2

    assert_reconcile_removes(stack, *orphans)
    assert stack.user_keys(user["id"]) == (set(), set())
    stack.assert_consistent()
    assert_next_upload_succeeds(stack)
