"""One timed operation each: the raw ffmpeg encode, a transcoder call, a gateway upload, a download,
and a whole-body read by one client (curl) for the large-download comparison.

Every function returns seconds of wall time (and checks the answer, so a fast failure never passes
for a fast success).
"""

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

_CHUNK_BYTES = 1024 * 1024
DURATION_TOLERANCE_SECONDS = 0.1


class BenchError(RuntimeError):
    """An operation under test failed or answered something wrong."""


@dataclass(frozen=True, slots=True)
class Timed:
    seconds: float
    peak_rss_bytes: int = 0  # only where the kernel tells us (the baseline's own process)
    cpu_seconds: float = 0.0  # user + system time, likewise


# ru_maxrss survives exec: a child forked from this (large) process would report our size, not
# ffmpeg's. So a minimal interpreter spawns ffmpeg, times it and reports the child's own peak.
_LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
elapsed = time.perf_counter() - started
cpu = usage.ru_utime + usage.ru_stime
print(elapsed, usage.ru_maxrss, cpu, os.waitstatus_to_exitcode(status))
"""


def baseline_command(ffmpeg: str, wav: Path, mp3: Path) -> list[str]:
    """The raw single-core CLI encode: LAME's defaults (bit reservoir on), one thread."""
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    command += ["-f", "wav", "-i", str(wav), "-c:a", "libmp3lame", "-b:a", "128k"]
    return [*command, "-threads", "1", str(mp3)]


def ffmpeg_baseline(ffmpeg: str, wav: Path, mp3: Path) -> Timed:
    """The issue's reference command, timed from spawn to exit; its peak RSS and CPU time from
    wait4()."""
    launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, *baseline_command(ffmpeg, wav, mp3)]
    output = subprocess.run(launcher, capture_output=True, text=True, check=True)  # noqa: S603
    elapsed, max_rss_kib, cpu, returncode = output.stdout.split()
    if int(returncode) != 0:
        raise BenchError(f"ffmpeg exited with {returncode}: {output.stderr[-300:]}")
    return Timed(float(elapsed), int(max_rss_kib) * 1024, float(cpu))


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK_BYTES):
            yield chunk


def transcode(
    client: httpx.Client, wav: Path, expected_seconds: float, *, save_to: Path | None = None
) -> Timed:
    """POST the WAV to the transcoder, read the whole MP3 (into ``save_to`` if given)."""
    started = time.perf_counter()
    with (
        client.stream(
            "POST",
            "/transcode",
            content=file_chunks(wav),
            headers={"Content-Type": "audio/wav", "Content-Length": str(wav.stat().st_size)},
        ) as response,
        contextlib.ExitStack() as files,
    ):
        out = files.enter_context(save_to.open("wb")) if save_to else None
        size = 0
        for chunk in response.iter_raw(_CHUNK_BYTES):
            size += len(chunk)
            if out:
                out.write(chunk)
        elapsed = time.perf_counter() - started
        if response.status_code != 200 or size == 0:
            raise BenchError(f"transcoder answered {response.status_code}")
        _check_duration(float(response.headers["X-Audio-Duration-Seconds"]), expected_seconds)
    return Timed(elapsed)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    token: str


def create_user(client: httpx.Client) -> User:
    response = client.post("/users", json={"name": "bench"})
    if response.status_code != 201:
        raise BenchError(f"POST /users answered {response.status_code}")
    body = response.json()
    return User(body["id"], body["token"])


@dataclass(frozen=True, slots=True)
class Uploaded:
    seconds: float
    url: str
    size_bytes: int


def upload(
    client: httpx.Client, user: User, wav: Path | bytes, expected_seconds: float
) -> Uploaded:
    """POST /record as a browser form would: the fields first, then the file."""
    started = time.perf_counter()
    if isinstance(wav, bytes):
        response = _post_record(client, user, wav)
    else:
        with wav.open("rb") as source:
            response = _post_record(client, user, source)
    elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise BenchError(f"POST /record answered {response.status_code}: {response.text[:300]}")
    body = response.json()
    _check_duration(float(body["duration_seconds"]), expected_seconds)
    return Uploaded(elapsed, str(body["url"]), int(body["size_bytes"]))


def _post_record(client: httpx.Client, user: User, content: object) -> httpx.Response:
    return client.post(
        "/record",
        data={"user": user.id, "token": user.token},
        files={"file": ("take.wav", content, "audio/wav")},  # type: ignore[dict-item]
    )


def download(client: httpx.Client, url: str, expected_bytes: int) -> Timed:
    """GET the record's link and read every byte of the body."""
    started = time.perf_counter()
    with client.stream("GET", url) as response:
        size = sum(len(chunk) for chunk in response.iter_raw(_CHUNK_BYTES))
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or size != expected_bytes:
        raise BenchError(f"GET {url} answered {response.status_code} with {size} bytes")
    return Timed(elapsed)


@dataclass(frozen=True, slots=True)
class Fetcher:
    """The one client that reads a whole body into nothing, for every side of a comparison:
    curl when it is on PATH (``curl`` holds its path), else httpx (or, for ``file://``, Python)."""

    curl: str | None

    @classmethod
    def find(cls) -> "Fetcher":
        return cls(shutil.which("curl"))

    def describe(self) -> str:
        if self.curl is None:
            return (
                "httpx `iter_raw()` (curl is not on PATH; `file://` read by Python into /dev/null)"
            )
        version = subprocess.run(  # noqa: S603
            [self.curl, "--version"], capture_output=True, text=True, check=True
        ).stdout.split()[:2]
        return f"`{' '.join(version)}`, a process per read"

    def fetch(self, url: str, expected_bytes: int) -> Timed:
        """Every byte of ``url`` (``http://`` or ``file://``) read and dropped; curl's own
        ``time_total`` when curl is used (connect to last byte, without its start-up)."""
        if self.curl is not None:
            return _curl(self.curl, url, expected_bytes)
        if url.startswith("file://"):
            return _python_file_read(Path(unquote(urlsplit(url).path)), expected_bytes)
        return _httpx_read(url, expected_bytes)


def _curl(curl: str, url: str, expected_bytes: int) -> Timed:
    command = [curl, "-s", "--fail", "-o", os.devnull, "-w", "%{size_download} %{time_total}"]
    done = subprocess.run([*command, url], capture_output=True, text=True)  # noqa: S603
    if done.returncode != 0:
        raise BenchError(f"curl {url} exited with {done.returncode}")
    size, seconds = done.stdout.split()
    if int(size) != expected_bytes:
        raise BenchError(f"curl {url} read {size} of {expected_bytes} bytes")
    return Timed(float(seconds))


def _httpx_read(url: str, expected_bytes: int) -> Timed:
    # A fresh client per read, as curl opens a fresh connection: both times include the connect.
    with httpx.Client(timeout=httpx.Timeout(900.0, connect=10.0)) as client:
        started = time.perf_counter()
        with client.stream("GET", url) as response:
            size = sum(len(chunk) for chunk in response.iter_raw())
        elapsed = time.perf_counter() - started
    if response.status_code != 200 or size != expected_bytes:
        raise BenchError(f"GET {url} answered {response.status_code} with {size} bytes")
    return Timed(elapsed)


def _python_file_read(path: Path, expected_bytes: int) -> Timed:
    started = time.perf_counter()
    with path.open("rb") as source, open(os.devnull, "wb") as sink:
        shutil.copyfileobj(source, sink)  # read() and write(), as curl does: no sendfile
        size = source.tell()
    elapsed = time.perf_counter() - started
    if size != expected_bytes:
        raise BenchError(f"{path}: read {size} of {expected_bytes} bytes")
    return Timed(elapsed)


def cpu_seconds(pid: int) -> float:
    """User + system time process ``pid`` (all its threads) has used so far, from
    /proc/<pid>/stat; the kernel counts it in clock ticks (10 ms where ``CLK_TCK`` is 100)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; fields[0] is the state
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _check_duration(actual: float, expected: float) -> None:
    if abs(actual - expected) > DURATION_TOLERANCE_SECONDS:
        raise BenchError(f"duration {actual:.3f} s, expected {expected:.3f} s")
