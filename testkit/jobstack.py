"""A stack for job tests: one PostgreSQL database and one S3 bucket shared by gateways and worker
processes started and killed at will, and a transcoder whose encodes can be made slow (so a
worker can be killed in the middle of one)."""

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
from sqlalchemy import create_engine, text

from testkit.fake_ffmpeg import fake_ffmpeg
from testkit.live import LiveServer, running, wait_until
from testkit.s3 import S3_CREDENTIALS, S3Endpoint
from testkit.wavcorpus import ffmpeg_exe

# Waits while the file named by SLOW_FFMPEG_FLAG exists (at most a minute), then becomes ffmpeg.
SLOW_FFMPEG = """
import os, sys, time
flag = os.environ["SLOW_FFMPEG_FLAG"]
open(flag + ".started", "w").close()
deadline = time.monotonic() + 60
while os.path.exists(flag) and time.monotonic() < deadline:
    time.sleep(0.02)
os.execv(os.environ["REAL_FFMPEG"], [os.environ["REAL_FFMPEG"], *sys.argv[1:]])
"""

GATEWAY_APP = "gateway.main:create_app"
WORKER_APP = "gateway.worker:create_app"


@dataclass
class JobStack:
    database_url: str
    s3: S3Endpoint
    bucket: str
    transcoder_url: str
    slow_flag: Path
    processes: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **S3_CREDENTIALS,
            "DATABASE_URL": self.database_url,
            "STORAGE_URL": f"s3://{self.bucket}",
            "S3_ENDPOINT_URL": self.s3.url,
            "TRANSCODER_URL": self.transcoder_url,
            "JOB_LEASE_SECONDS": "2",
            "JOB_POLL_SECONDS": "0.1",
            **extra,
        }

    @contextlib.contextmanager
    def gateway(self, **extra: str) -> Iterator[LiveServer]:
        """A gateway that runs no jobs itself (unless ``JOB_WORKERS`` says so)."""
        with running(GATEWAY_APP, self.env(**{"JOB_WORKERS": "0", **extra})) as server:
            yield server

    @contextlib.contextmanager
    def worker(self, **extra: str) -> Iterator[LiveServer]:
        with running(WORKER_APP, self.env(**{"JOB_WORKERS": "1", **extra})) as server:
            yield server

    @contextlib.contextmanager
    def slow_encodes(self) -> Iterator[None]:
        """Encodes started meanwhile wait (in the transcoder) until the block ends."""
        self.slow_flag.touch()
        try:
            yield
        finally:
            self.slow_flag.unlink(missing_ok=True)

    def encode_started(self) -> bool:
        return Path(f"{self.slow_flag}.started").exists()

    def forget_started(self) -> None:
        Path(f"{self.slow_flag}.started").unlink(missing_ok=True)

    def scalar(self, sql: str, **params: object) -> object:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return connection.execute(text(sql), params).scalar_one()
        finally:
            engine.dispose()

    def records_of(self, user_id: str) -> set[str]:
        """The object keys the user's rows name: each record's MP3 and its peaks."""
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    text("SELECT object_key, peaks_key FROM records WHERE user_id = :user"),
                    {"user": user_id},
                ).all()
        finally:
            engine.dispose()
        return {key for row in rows for key in row if key is not None}

    def objects_of(self, user_id: str) -> set[str]:
        return {
            key for key in self.s3.keys(self.bucket) if key.startswith(f"recordings/{user_id}/")
        }

    def upload_objects(self) -> set[str]:
        return {key for key in self.s3.keys(self.bucket) if key.startswith("uploads/")}


def start_transcoder(cleanup: contextlib.ExitStack, folder: Path) -> tuple[str, Path]:
    """A transcoder with the slow ffmpeg; returns its URL and the flag file that slows it."""
    flag = folder / "slow"
    ffmpeg = fake_ffmpeg(folder / "ffmpeg", SLOW_FFMPEG)
    env = {
        "FFMPEG_PATH": str(ffmpeg),
        "REAL_FFMPEG": ffmpeg_exe(),
        "SLOW_FFMPEG_FLAG": str(flag),
        "MAX_QUEUED_ENCODES": "1000",
        "ENCODE_IN_PROCESS": "false",  # the slow ffmpeg must run
    }
    server = cleanup.enter_context(running("transcoder.main:create_app", env))
    return server.url, flag


class HasClient(Protocol):
    def client(self, **kwargs: object) -> httpx.Client: ...


# A gateway: a live one's URL, or a testkit Gateway (in this process or live).
Target = str | HasClient


def client_of(target: Target) -> httpx.Client:
    if isinstance(target, str):
        return httpx.Client(base_url=target, timeout=60)
    return target.client()


def new_user(target: Target) -> dict[str, str]:
    with client_of(target) as client:
        response = client.post("/users", json={"name": "jobs"})
    assert response.status_code == 201, response.text
    user: dict[str, str] = response.json()
    return user


def submit(
    target: Target, user: dict[str, str], wav: bytes, name: str = "take.wav"
) -> httpx.Response:
    """``POST /record`` with ``Prefer: respond-async``."""
    with client_of(target) as client:
        return client.post(
            "/record",
            data={"user": user["id"], "token": user["token"]},
            files={"file": (name, wav, "audio/wav")},
            headers={"Prefer": "respond-async"},
        )


def job(target: Target, user: dict[str, str], job_id: str) -> dict[str, object]:
    with client_of(target) as client:
        response = client.get(
            f"/jobs/{job_id}", headers={"Authorization": f"Bearer {user['token']}"}
        )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def finished(
    target: Target, user: dict[str, str], job_id: str, seconds: float = 30
) -> dict[str, object]:
    """The job once it succeeded or failed (polled with a deadline)."""
    seen: dict[str, object] = {}

    def done() -> bool:
        seen.update(job(target, user, job_id))
        return seen["status"] in ("succeeded", "failed")

    wait_until(done, seconds=seconds, what=f"job {job_id} finished")
    return seen


def unique_bucket() -> str:
    return f"riffle-jobs-{uuid.uuid4().hex[:12]}"
