"""Resumable uploads (tus 1.0.0 at ``/uploads/``) with httpx. The upload URL of each file is
kept under its fingerprint in ``$XDG_STATE_HOME/riffle/uploads.json`` until its job is done,
so a run cut short (Ctrl-C, a lost connection, a crash) goes on from the server's offset."""

import base64
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from client.api import Api, ApiError
from client.config import state_dir

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK_BYTES = 8 * 1024 * 1024
RETRY_SECONDS = (1, 2, 4, 8, 15, 30)
MAX_TRIES = 12

Progress = Callable[[int, int], None]


def fingerprint(path: Path, url: str, user: str) -> str:
    """The same file (path, size, modification time) to the same riffle, for the same user."""
    stat = path.stat()
    return f"{url}|{user}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in metadata.items()
        if value
    )


def job_url_of(upload_url: str) -> str:
    return "/jobs/" + upload_url.rstrip("/").rsplit("/", 1)[-1]


class UploadState:
    """Unfinished uploads: fingerprint → upload URL, in a file of the owner's alone."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or state_dir() / "uploads.json"

    def all(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def get(self, key: str) -> str | None:
        return self.all().get(key)

    def put(self, key: str, url: str) -> None:
        self._write({**self.all(), key: url})

    def remove(self, key: str) -> None:
        entries = self.all()
        if entries.pop(key, None) is not None:
            self._write(entries)

    def _write(self, entries: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(entries, file, indent=1)
        temporary.replace(self.path)


@dataclass
class Sent:
    upload_url: str
    job_url: str
    resumed_from: int | None  # the offset a previous run had reached, if it was resumed


@dataclass
class Upload:
    api: Api
    path: Path
    metadata: dict[str, str]
    state: UploadState
    on_progress: Progress
    on_retry: Callable[[ApiError, float], None]
    chunk_bytes: int = CHUNK_BYTES

    def __post_init__(self) -> None:
        self.size = self.path.stat().st_size
        self.key = fingerprint(self.path, self.api.credentials.url, self.api.user)
        self.url = self.state.get(self.key)
        self.offset: int | None = None
        self.resumed_from: int | None = None
        self.monitor: str | None = None

    def run(self) -> Sent:
        tries = 0
        while True:
            try:
                return self._send()
            except ApiError as error:
                if error.status == 409:
                    self.offset = None  # the server's offset moved: ask it again
                    continue
                if not error.transient or tries >= MAX_TRIES:
                    if not error.transient:
                        self.state.remove(self.key)  # refused for good: nothing to resume
                    raise
                wait = error.retry_after or RETRY_SECONDS[min(tries, len(RETRY_SECONDS) - 1)]
                tries += 1
                self.on_retry(error, wait)
                time.sleep(wait)  # a back-off between tries, not synchronisation
                self.offset = None

    def _send(self) -> Sent:
        try:
            if self.url is not None and self.offset is None:
                self._head()
            if self.url is None:
                self._create()
            assert self.url is not None
            assert self.offset is not None
            while self.offset < self.size:
                self._patch()
        except httpx.TransportError as error:
            raise ApiError.unreachable(self.api.credentials.url, error) from error
        return Sent(self.url, self.monitor or job_url_of(self.url), self.resumed_from)

    def _headers(self, **extra: str) -> dict[str, str]:
        return {**TUS, **self.api.auth, **extra}

    def _head(self) -> None:
        assert self.url is not None
        response = self.api.http.head(self.url, headers=self._headers())
        if response.status_code in (403, 404, 410):
            self.state.remove(self.key)  # expired or removed: start again
            self.url = None
            return
        if response.is_error:
            raise ApiError(status=response.status_code, title=response.reason_phrase)
        self.offset = int(response.headers["Upload-Offset"])
        if self.resumed_from is None:
            self.resumed_from = self.offset
        if self.offset >= self.size:
            self.monitor = job_url_of(self.url)
        self.on_progress(self.offset, self.size)

    def _create(self) -> None:
        headers = self._headers(
            **{"Upload-Length": str(self.size), "Upload-Metadata": encode_metadata(self.metadata)}
        )
        response = self.api.http.post("/uploads/", headers=headers)
        if response.status_code != 201:
            raise ApiError.from_response(response)
        self.url = str(self.api.http.base_url.join(response.headers["Location"]))
        self.offset = 0
        self.state.put(self.key, self.url)
        self.on_progress(0, self.size)

    def _patch(self) -> None:
        assert self.url is not None
        assert self.offset is not None
        start = self.offset
        length = min(self.chunk_bytes, self.size - start)
        headers = self._headers(
            **{
                "Upload-Offset": str(start),
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(length),
            }
        )
        response = self.api.http.patch(
            self.url, headers=headers, content=self._chunk(start, length)
        )
        if response.status_code != 204:
            raise ApiError.from_response(response)
        self.offset = int(response.headers["Upload-Offset"])
        self.monitor = _monitor(response.headers.get("Link")) or self.monitor
        self.on_progress(self.offset, self.size)

    def _chunk(self, start: int, length: int) -> Iterator[bytes]:
        """The bytes, read as they are sent, reported as they go."""
        with self.path.open("rb") as file:
            file.seek(start)
            left = length
            while left > 0:
                piece = file.read(min(256 * 1024, left))
                if not piece:
                    return
                left -= len(piece)
                yield piece
                self.on_progress(start + length - left, self.size)


def _monitor(link: str | None) -> str | None:
    for part in (link or "").split(","):
        url, _, params = part.partition(";")
        if 'rel="monitor"' in params.replace(" ", ""):
            return url.strip().strip("<>")
    return None


def watch_job(api: Api, job_url: str, on_progress: Callable[[float], None]) -> dict[str, Any]:
    """Follow the job's SSE stream to its end; the record, or ``ApiError`` of its problem."""
    while True:
        with contextlib.suppress(httpx.TransportError):
            params = {"token": api.credentials.token or ""}
            with api.http.stream(
                "GET", f"{job_url}/events", params=params, timeout=httpx.Timeout(30.0)
            ) as response:
                if response.is_error:
                    response.read()
                    raise ApiError.from_response(response)
                for event, data in _events(response.iter_lines()):
                    if event == "progress":
                        on_progress(float(data["progress"]))
                    elif event == "succeeded":
                        record: dict[str, Any] = data["record"]
                        return record
                    elif event == "failed":
                        raise ApiError.from_problem(data.get("error") or {})
        # The stream ended early (a restart, a cut connection): the job's state, then again.
        job = api.job(job_url)
        if job["status"] == "succeeded":
            done: dict[str, Any] = job["record"]
            return done
        if job["status"] == "failed":
            raise ApiError.from_problem(job.get("error") or {})
        time.sleep(1)  # a back-off before reconnecting, not synchronisation


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    event, data = "message", ""
    for line in lines:
        if not line:
            if data:
                yield event, json.loads(data)
            event, data = "message", ""
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
