"""Load on the real stack (PostgreSQL, S3 over HTTP, live transcoder): nothing lost, nothing
corrupted, no 5xx; slow clients cut off at the deadline; oversize floods leave memory flat."""

import asyncio
import hashlib
import select
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from testkit.live import LiveServer, leftovers, running, wait_until
from testkit.s3 import S3_CREDENTIALS, S3Endpoint
from testkit.wavcorpus import pcm
from tests.load.loadtest import run_load

USERS = 20
UPLOADS = 60  # the suite's share; `python -m tests.load.loadtest` sends 200 by default
MAX_UPLOAD_BYTES = 1024 * 1024
UPLOAD_TIMEOUT_SECONDS = 2
SLOW_CLIENTS = 5


class LoadStack:
    def __init__(
        self, server: LiveServer, tmp: Path, database_url: str, s3: S3Endpoint, bucket: str
    ) -> None:
        self.server, self.tmp, self.database_url, self.s3, self.bucket = (
            server,
            tmp,
            database_url,
            s3,
            bucket,
        )

    def rows(self, user_ids: set[str]) -> dict[str, tuple[str, str]]:
        """record id -> (object key, sha256) of these users' rows."""
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                found = connection.execute(
                    text("SELECT id, user_id, object_key, sha256 FROM records")
                ).all()
        finally:
            engine.dispose()
        return {
            str(row.id): (row.object_key, row.sha256)
            for row in found
            if str(row.user_id) in user_ids
        }

    def object_sha256(self, key: str) -> str:
        body = self.s3.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return hashlib.sha256(body).hexdigest()


@pytest.fixture(scope="module")
def load_stack(
    postgres_url: str,
    s3_endpoint: S3Endpoint,
    transcoder_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LoadStack]:
    tmp = tmp_path_factory.mktemp("load-gateway-tmp")
    bucket = f"riffle-load-{uuid.uuid4().hex[:12]}"
    env = {
        **S3_CREDENTIALS,
        "DATABASE_URL": postgres_url,
        "STORAGE_URL": f"s3://{bucket}",
        "S3_ENDPOINT_URL": s3_endpoint.url,
        "TRANSCODER_URL": transcoder_url,
        "MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
        # The load, not the per-user fair use (tests/jobs has those): no user is held back.
        "MAX_UPLOADS_IN_FLIGHT_PER_USER": "1000",
        "UPLOAD_TIMEOUT_SECONDS": str(UPLOAD_TIMEOUT_SECONDS),
        "TMPDIR": str(tmp),
    }
    with running("gateway.main:create_app", env) as server:
        yield LoadStack(server, tmp, postgres_url, s3_endpoint, bucket)


def test_concurrent_uploads_from_twenty_users_are_all_stored_whole(load_stack: LoadStack) -> None:
    report = asyncio.run(run_load(load_stack.server.url, users=USERS, uploads=UPLOADS, seconds=0.5))
    assert report.transport_errors == []
    assert dict(report.statuses) == {201: UPLOADS}
    assert report.mismatches == []
    user_ids = {user for _, user, _ in report.stored}
    assert len(user_ids) == USERS
    rows = load_stack.rows(user_ids)
    objects = set(load_stack.s3.keys(load_stack.bucket))
    assert set(rows) == {record_id for record_id, _, _ in report.stored}
    # Each record's MP3 and its waveform peaks beside it.
    assert {key for key, _ in rows.values()} == {key for key in objects if key.endswith(".mp3")}
    assert {key.removesuffix(".mp3") + ".peaks" for key, _ in rows.values()} == {
        key for key in objects if key.endswith(".peaks")
    }
    for record_id, (key, sha256) in rows.items():
        assert report.downloads[record_id] == sha256 == load_stack.object_sha256(key)
    wait_until(lambda: leftovers(load_stack.tmp) == [], what="temp files removed")


def dribble(url: str, user: dict[str, str], max_bytes: int) -> tuple[int | None, int]:
    """Upload at one byte per second; (status answered, bytes of body sent)."""
    host, port = url.removeprefix("http://").split(":")
    boundary = "slow"
    body_head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="user"\r\n\r\n{user["id"]}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    ).encode()
    head = (
        f"POST /record HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {user['token']}"
        f"\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body_head) + 100_000}\r\n\r\n"
    ).encode()
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(head + body_head)
        while sent < max_bytes:
            readable, _, _ = select.select([connection], [], [], 1.0)  # the 1 byte/s pace
            if readable:
                answer = connection.recv(65536)
                return (int(answer.split(b" ", 2)[1]) if answer else None), sent
            try:
                connection.sendall(b"\0")
            except OSError:
                return None, sent
            sent += 1
    return None, sent


def test_slow_clients_are_cut_off_at_the_upload_deadline_while_others_are_served(
    load_stack: LoadStack,
) -> None:
    url = load_stack.server.url
    with httpx.Client(base_url=url, timeout=60) as client:
        user = client.post("/users", json={"name": "slow"}).json()
        with ThreadPoolExecutor(SLOW_CLIENTS) as pool:
            slow = [pool.submit(dribble, url, user, 60) for _ in range(SLOW_CLIENTS)]
            served = client.post(
                "/record",
                data={"user": user["id"], "token": user["token"]},
                files={"file": ("fast.wav", pcm(0.3, 8000, 1), "audio/wav")},
            )
            outcomes = [future.result() for future in slow]
    assert served.status_code == 201, served.text
    for status, sent in outcomes:
        assert status == 408
        assert sent < 60
    wait_until(lambda: leftovers(load_stack.tmp) == [], what="temp files removed")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def _oversize(client: httpx.AsyncClient, user: dict[str, str]) -> int | None:
    head = (
        b'--b\r\nContent-Disposition: form-data; name="user"\r\n\r\n'
        + user["id"].encode()
        + b'\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    )

    async def body() -> AsyncIterator[bytes]:
        yield head
        for _ in range(1600):  # 100 MiB, far past the limit
            yield bytes(65536)

    try:
        response = await client.post(
            "/record",
            content=body(),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        return None  # cut off while still sending: refused all the same
    return response.status_code


def test_parallel_oversize_uploads_are_413_and_leave_memory_flat(load_stack: LoadStack) -> None:
    url, pid = load_stack.server.url, load_stack.server.pid
    with httpx.Client(base_url=url, timeout=60) as client:
        user = client.post("/users", json={"name": "flood"}).json()

    async def flood() -> list[int | None]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            return await asyncio.gather(*(_oversize(client, user) for _ in range(USERS)))

    asyncio.run(flood())  # warm-up: the first wave allocates what every later wave reuses
    before = rss_bytes(pid)
    statuses = asyncio.run(flood())
    after = rss_bytes(pid)
    assert set(statuses) <= {413, None}
    assert after - before < 32 * 1024 * 1024, f"RSS grew by {(after - before) >> 20} MiB"
    wait_until(lambda: leftovers(load_stack.tmp) == [], what="temp files removed")
