"""What fault tests do to a live stack and measure of it: uploads (timed, or streamed byte by
byte over a raw socket to count what the client got to send), and views of a server process."""

import contextlib
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import urlsplit

import httpx

from testkit.problems import assert_problem
from testkit.s3 import S3_CREDENTIALS
from testkit.wavcorpus import pcm
from tests.faults.stack import Stack

T = TypeVar("T")

WAV = pcm(0.3, 8000, 1)
# What "at once" means for an answer that needs no hung dependency (generous: 2 shared cores).
AT_ONCE_SECONDS = 1.0


@dataclass(frozen=True)
class Timed(Generic[T]):
    """A result and when (``time.monotonic()``) the call that made it started and ended."""

    value: T
    started: float
    ended: float

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def note(what: str, value: float) -> None:
    """Append a measured figure to the file ``$RIFFLE_FAULT_FIGURES`` names, if it names one
    (where the README's table of answer times comes from)."""
    if figures := os.environ.get("RIFFLE_FAULT_FIGURES"):
        with Path(figures).open("a") as out:
            out.write(f"{what}\t{value:.2f}\n")


def timed(call: Callable[[], T]) -> Timed[T]:
    started = time.monotonic()
    value = call()
    return Timed(value, started, time.monotonic())


def upload(
    gateway: str | httpx.Client,
    user: dict[str, str],
    content: bytes = WAV,
    *,
    fields_first: bool = True,
) -> httpx.Response:
    """POST /record with ``user`` and ``token`` before the file (as curl sends ``-F`` in order),
    or after it, to the gateway at a URL or through an open client (whose set-up is then not
    part of a timed upload: building one costs ~17 ms of the test's GIL)."""
    with _client(gateway) as client:
        fields = {"user": user["id"], "token": user["token"]}
        if fields_first:
            return client.post(
                "/record", data=fields, files={"file": ("take.wav", content, "audio/wav")}
            )
        boundary = "fieldslast"
        body = _file_part(boundary, "take.wav") + content + b"\r\n"
        body += b"".join(_field_part(boundary, name, value) for name, value in fields.items())
        body += f"--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return client.post("/record", content=body, headers=headers)


def _client(gateway: str | httpx.Client) -> AbstractContextManager[httpx.Client]:
    if isinstance(gateway, httpx.Client):
        return contextlib.nullcontext(gateway)
    return httpx.Client(base_url=gateway, timeout=60)


def assert_unavailable(response: httpx.Response) -> None:
    assert_problem(response, 503)
    assert int(response.headers["Retry-After"]) > 0


def assert_next_upload_succeeds(stack: Stack) -> None:
    user = stack.new_user()
    response = upload(stack.gateway.url, user)
    assert response.status_code == 201, response.text
    rows, objects = stack.user_keys(user["id"])
    stem = f"recordings/{user['id']}/{response.json()['id']}"
    assert rows == objects == {f"{stem}.mp3", f"{stem}.peaks"}  # the MP3 and its peaks
    stack.assert_consistent()


def assert_reconcile_removes(stack: Stack, *orphans: str) -> None:
    """``python -m gateway.reconcile`` reports the ``orphans`` (exit 1); ``--fix`` removes them."""
    env = {
        **os.environ,
        **S3_CREDENTIALS,
        "DATABASE_URL": stack.database_url,
        "STORAGE_URL": f"s3://{stack.bucket}",
        "S3_ENDPOINT_URL": stack.s3.url,
    }
    command = [sys.executable, "-m", "gateway.reconcile", "--grace-minutes", "0"]
    found = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert found.returncode == 1, found.stderr
    for orphan in orphans:
        assert f"orphan object (found): {orphan}" in found.stdout
    fixed = subprocess.run([*command, "--fix"], env=env, capture_output=True, text=True, timeout=60)
    assert fixed.returncode == 0, fixed.stderr
    assert not set(orphans) & stack.object_keys()


def assert_answers_at_once(url: str) -> None:
    """``/healthz`` and ``/metrics`` need no dependency: they answer within ``AT_ONCE_SECONDS``."""
    with httpx.Client(base_url=url, timeout=10) as client:
        for path in ("/healthz", "/metrics"):
            answer = timed(lambda: client.get(path))  # noqa: B023 - called at once
            assert answer.value.status_code == 200, path
            assert answer.seconds < AT_ONCE_SECONDS, f"{path} took {answer.seconds:.2f} s"


@dataclass(frozen=True)
class StreamedAnswer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes
    file_bytes_sent: int  # of the file part, before the answer arrived (or the link was cut)
    seconds: float  # from the first byte sent to the whole answer read


def stream_upload(
    url: str,
    file: bytes,
    *,
    before: Sequence[tuple[str, str]] = (),
    after: Sequence[tuple[str, str]] = (),
    chunk_bytes: int = 64 * 1024,
) -> StreamedAnswer:
    """POST /record as a client that streams the file while watching for an early answer: it
    stops sending the moment the gateway answers, so ``file_bytes_sent`` is what the gateway let
    in before it answered (plus the socket buffers, kept small on this side)."""
    parts = urlsplit(url)
    boundary = "streamedupload"
    head = b"".join(_field_part(boundary, name, value) for name, value in before)
    head += _file_part(boundary, "big.wav")
    tail = b"\r\n" + b"".join(_field_part(boundary, name, value) for name, value in after)
    tail += f"--{boundary}--\r\n".encode()
    request = (
        f"POST /record HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(head) + len(file) + len(tail)}\r\n\r\n"
    ).encode() + head
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as connection:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 128 * 1024)
        connection.settimeout(30)
        connection.connect(("127.0.0.1", parts.port or 80))
        started = time.monotonic()
        sent = 0
        try:
            connection.sendall(request)
            sent = _send_until_answered(connection, memoryview(file), chunk_bytes)
            if sent == len(file):
                connection.sendall(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass  # cut off: the answer, if any, is read below
        status, headers, body = _read_answer(connection)
        return StreamedAnswer(status, headers, body, sent, time.monotonic() - started)


def _send_until_answered(connection: socket.socket, file: memoryview, chunk_bytes: int) -> int:
    sent = 0
    deadline = time.monotonic() + 60
    while sent < len(file):
        readable, writable, _ = select.select([connection], [connection], [], 1.0)
        if readable:
            break
        if writable:
            sent += connection.send(file[sent : sent + chunk_bytes])
        if time.monotonic() > deadline:
            raise TimeoutError("the gateway neither read the upload nor answered")
    return sent


def _read_answer(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    received = b""
    with_length: int | None = None
    try:
        while chunk := connection.recv(65536):
            received += chunk
            head, separator, body = received.partition(b"\r\n\r\n")
            if separator and with_length is None:
                with_length = _content_length(head)
            if with_length is not None and len(body) >= with_length:
                break
    except ConnectionResetError:
        pass  # what arrived before the reset is the answer
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    assert status_line.startswith("HTTP/1.1 "), f"no answer: {received[:200]!r}"
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _field_part(boundary: str, name: str, value: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


def _file_part(boundary: str, filename: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()


def thread_count(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no thread count for process {pid}")
