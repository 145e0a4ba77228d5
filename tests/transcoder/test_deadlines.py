"""The transcoder's deadlines and disconnects on live uvicorn servers (its ffmpeg processes are
its children, its requests come over a socket), on both encode paths (LAME in the process, and
ffmpeg): no ffmpeg and no temporary file survives."""

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from testkit import wavcorpus
from testkit.fake_ffmpeg import HANGING_FFMPEG, fake_ffmpeg
from testkit.live import TRANSCODER_APP, LiveServer, leftovers, running, wait_until
from testkit.problems import assert_problem
from testkit.procfs import child_pids


@pytest.fixture(scope="module", params=["true", "false"], ids=["in-process", "ffmpeg"])
def limited(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, Path, bool]]:
    """A transcoder allowing 1 s of audio and 1 s of work, with its own temp folder; whether it
    encodes in its own process."""
    temp = tmp_path_factory.mktemp("limited-tmp")
    env = {
        "MAX_DURATION_SECONDS": "1",
        "TRANSCODE_TIMEOUT_SECONDS": "1",
        "TMPDIR": str(temp),
        "ENCODE_IN_PROCESS": request.param,
    }
    with running(TRANSCODER_APP, env) as server:
        yield server, temp, request.param == "true"


def wait_for_the_encode(server: LiveServer, temp: Path, in_process: bool) -> None:
    """Until ffmpeg runs, or (in-process) the encode's output file exists."""
    if in_process:
        wait_until(lambda: leftovers(temp) != [], what="the encode started")
    else:
        wait_until(lambda: child_pids(server.pid) != [], what="ffmpeg started")


@pytest.fixture(scope="module")
def hanging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    """A transcoder whose 'ffmpeg' never ends and ignores SIGTERM; pids land in the folder."""
    folder = tmp_path_factory.mktemp("hanging")
    env = {
        "FFMPEG_PATH": str(fake_ffmpeg(folder / "ffmpeg", HANGING_FFMPEG)),
        "FAKE_FFMPEG_PID_DIR": str(folder),
        "TRANSCODE_TIMEOUT_SECONDS": "0.5",
        "ENCODE_IN_PROCESS": "false",  # the hanging ffmpeg must run
    }
    with running(TRANSCODER_APP, env) as server:
        yield server, folder


def open_upload(url: str, first_bytes: bytes, content_length: int) -> socket.socket:
    """A raw POST /transcode that promised ``content_length`` bytes and sent ``first_bytes``."""
    parts = urlsplit(url)
    connection = socket.create_connection((parts.hostname, parts.port), timeout=30)
    head = (
        f"POST /transcode HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: audio/wav\r\n"
        f"Content-Length: {content_length}\r\n\r\n"
    )
    connection.sendall(head.encode() + first_bytes)
    return connection


def read_status(connection: socket.socket) -> int:
    response = b""
    while b"\r\n" not in response:
        chunk = connection.recv(4096)
        if not chunk:
            break
        response += chunk
    return int(response.split(b" ", 2)[1])


def test_a_stalled_upload_times_out_with_504_and_leaves_nothing(
    limited: tuple[LiveServer, Path, bool],
) -> None:
    server, temp, in_process = limited
    data = wavcorpus.pcm(0.9, 8000, 1)
    with open_upload(server.url, data[:5000], len(data)) as connection:
        wait_for_the_encode(server, temp, in_process)
        assert read_status(connection) == 504
    wait_until(lambda: child_pids(server.pid) == [], what="ffmpeg reaped")
    wait_until(lambda: leftovers(temp) == [], what="temporary files removed")


def test_an_encoder_ignoring_sigterm_is_killed_after_the_deadline(
    hanging: tuple[LiveServer, Path],
) -> None:
    server, folder = hanging
    response = httpx.post(f"{server.url}/transcode", content=wavcorpus.pcm(0.2), timeout=30)
    assert_problem(response, 504, request_id=False)
    pids = [int(entry.name) for entry in folder.iterdir() if entry.name.isdigit()]
    assert pids
    assert child_pids(server.pid) == []
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


def test_a_client_disconnecting_mid_upload_stops_ffmpeg(
    limited: tuple[LiveServer, Path, bool],
) -> None:
    server, temp, in_process = limited
    data = wavcorpus.pcm(0.9, 8000, 1)
    with open_upload(server.url, data[:5000], len(data)):
        wait_for_the_encode(server, temp, in_process)
    wait_until(lambda: child_pids(server.pid) == [], what="ffmpeg reaped", seconds=5)
    wait_until(lambda: leftovers(temp) == [], what="temporary files removed")


def test_successful_responses_leave_no_temporary_file(
    limited: tuple[LiveServer, Path, bool],
) -> None:
    server, temp, _ = limited
    for _ in range(3):
        response = httpx.post(f"{server.url}/transcode", content=wavcorpus.pcm(0.3), timeout=30)
        assert response.status_code == 200
    wait_until(lambda: leftovers(temp) == [], what="temporary files removed")
