"""tus requests by hand, the job they end in, and what an upload left in the database and store.

user = new_user(client)
created = create(client, user, length=len(wav), body=wav[:1000])
patch(client, created.headers["Location"], user, offset=1000, body=wav[1000:])
job = finished_job(client, user, job_id)
"""

import base64
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from testkit import wavcorpus
from testkit.gateways import Gateway
from testkit.problems import assert_problem

# The browser origin the CORS tests allow.
ORIGIN = "https://app.example"

TUS_VERSION = "1.0.0"
TUS = {"Tus-Resumable": TUS_VERSION}
OCTETS = {"Content-Type": "application/offset+octet-stream"}
JOB_SECONDS = 60.0
WAV = wavcorpus.pcm(0.5)
# The methods on an upload that exists (POST creates one).
METHODS = ["HEAD", "PATCH", "DELETE"]


def new_user(client: httpx.Client, name: str = "Uploader") -> dict[str, str]:
    response = client.post("/users", json={"name": name})
    assert response.status_code == 201, response.text
    user: dict[str, str] = response.json()
    return user


def bearer(user: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['token']}"}


def metadata(**values: str) -> str:
    """``Upload-Metadata``: ``key base64(value)`` pairs, comma-separated."""
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items()
    )


def create(
    client: httpx.Client,
    user: dict[str, str],
    *,
    length: int,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    filename: str = "take.wav",
) -> httpx.Response:
    """``POST /uploads/`` as ``user`` (with ``body``: creation-with-upload)."""
    sent = {
        **TUS,
        **bearer(user),
        "Upload-Length": str(length),
        "Upload-Metadata": metadata(user=user["id"], filename=filename),
    }
    if body is not None:
        sent |= OCTETS
    return client.post("/uploads/", content=body, headers=sent | (headers or {}))


def created(client: httpx.Client, user: dict[str, str], *, length: int) -> str:
    """A new upload's path (``/uploads/<id>``)."""
    response = create(client, user, length=length)
    assert response.status_code == 201, response.text
    return httpx.URL(response.headers["Location"]).path


def patch(
    client: httpx.Client,
    location: str,
    user: dict[str, str],
    *,
    offset: int,
    body: bytes,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {**TUS, **bearer(user), **OCTETS, "Upload-Offset": str(offset)}
    return client.patch(location, content=body, headers=sent | (headers or {}))


def head(client: httpx.Client, location: str, user: dict[str, str]) -> httpx.Response:
    return client.head(location, headers={**TUS, **bearer(user)})


def assert_tus_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """A problem document of ``status`` that carries the tus headers too."""
    assert response.headers.get("Tus-Resumable") == TUS_VERSION, response.headers
    return assert_problem(response, status)


def request(
    client: httpx.Client,
    method: str,
    location: str,
    headers: dict[str, str],
    *,
    offset: int = 0,
    body: bytes = b"",
) -> httpx.Response:
    """``method`` on an upload with ``headers`` (a PATCH adds its own, ``body`` at ``offset``)."""
    if method == "PATCH":
        headers = {**OCTETS, "Upload-Offset": str(offset), **headers}
        return client.patch(location, content=body, headers=headers)
    return client.request(method, location, headers=headers)


def assert_refused(response: httpx.Response, status: int) -> None:
    """``status`` with the tus headers; a problem document unless it is the answer to a HEAD."""
    if response.request.method == "HEAD":
        assert response.status_code == status
        assert response.headers["Tus-Resumable"] == TUS_VERSION
    else:
        assert_tus_problem(response, status)


def upload_id(location: str) -> uuid.UUID:
    return uuid.UUID(httpx.URL(location).path.rsplit("/", 1)[-1])


def finished_job(
    client: httpx.Client, user: dict[str, str], job_url: str, *, seconds: float = JOB_SECONDS
) -> dict[str, Any]:
    """The job at ``job_url`` once it succeeded or failed (polled, failing after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        response = client.get(job_url, headers=bearer(user))
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in ("succeeded", "failed"):
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"{job_url} still {job['status']} after {seconds:g} s")
        time.sleep(0.05)  # the poll interval; the loop has a deadline


def decoded_pcm(mp3: bytes) -> bytes:
    """The MP3's audio as ffmpeg decodes it: interleaved signed 16-bit samples."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "take.mp3"
        path.write_bytes(mp3)  # a file, not a pipe: ffmpeg then honours the LAME tag's padding
        command = [wavcorpus.ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error"]
        command += ["-i", str(path), "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1"]
        return subprocess.run(command, capture_output=True, check=True, timeout=60).stdout


def upload_keys(gateway: Gateway, upload: uuid.UUID) -> list[str]:
    """The upload's objects (its chunks) in the gateway's store."""
    return [key for key in gateway.backend.list_keys() if key.startswith(f"uploads/{upload}/")]


def upload_rows(gateway: Gateway, upload: uuid.UUID) -> dict[str, int]:
    """How many rows of ``uploads`` and ``upload_chunks`` the upload has."""
    return {
        table: _count(gateway, table, column, upload)
        for table, column in (("uploads", "id"), ("upload_chunks", "upload_id"))
    }


def uploads_of(gateway: Gateway, user_id: str) -> int:
    """How many uploads (rows) the user has."""
    return _count(gateway, "uploads", "user_id", uuid.UUID(user_id))


def _count(gateway: Gateway, table: str, column: str, value: uuid.UUID) -> int:
    engine = create_engine(gateway.backend.database_url)
    # SQLite keeps UUIDs as 32 hex digits, PostgreSQL as uuid.
    parameter = value.hex if "sqlite" in gateway.backend.database_url else str(value)
    query = text(f"SELECT count(*) FROM {table} WHERE {column} = :value")
    try:
        with engine.connect() as connection:
            return int(connection.execute(query, {"value": parameter}).scalar_one())
    finally:
        engine.dispose()
