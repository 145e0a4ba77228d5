"""The transcoder over HTTP, on live uvicorn servers with real ffmpeg: the gateway's contract."""

import socket
import subprocess
import tempfile
import wave
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests import problems, wavcorpus
from tests.fixtures.transcoder import HANGING_FFMPEG, TRANSCODER_APP, fake_ffmpeg
from tests.live import LiveServer, child_pids, leftovers, running, wait_until
from transcoder import mp3


@pytest.fixture(scope="module")
def client(transcoder_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=transcoder_url, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    """A transcoder allowing 1 s of audio and 1 s of work, with its own temp folder."""
    temp = tmp_path_factory.mktemp("limited-tmp")
    env = {"MAX_DURATION_SECONDS": "1", "TRANSCODE_TIMEOUT_SECONDS": "1", "TMPDIR": str(temp)}
    with running(TRANSCODER_APP, env) as server:
        yield server, temp


@pytest.fixture(scope="module")
def hanging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    """A transcoder whose 'ffmpeg' never ends and ignores SIGTERM; pids land in the folder."""
    folder = tmp_path_factory.mktemp("hanging")
    env = {
        "FFMPEG_PATH": str(fake_ffmpeg(folder / "ffmpeg", HANGING_FFMPEG)),
        "FAKE_FFMPEG_PID_DIR": str(folder),
        "TRANSCODE_TIMEOUT_SECONDS": "0.5",
    }
    with running(TRANSCODER_APP, env) as server:
        yield server, folder


def decode_to_wav(mp3_bytes: bytes) -> tuple[int, int, int]:
    """(channels, sample rate, frames) of ffmpeg's decode, read back with the stdlib."""
    with tempfile.TemporaryDirectory() as folder:
        source, decoded = Path(folder) / "in.mp3", Path(folder) / "out.wav"
        source.write_bytes(mp3_bytes)
        command = [wavcorpus.ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error"]
        command += ["-i", str(source), "-c:a", "pcm_s16le", "-f", "wav", str(decoded)]
        subprocess.run(command, check=True, timeout=60)
        with wave.open(str(decoded), "rb") as reader:
            return reader.getnchannels(), reader.getframerate(), reader.getnframes()


def assert_problem(response: httpx.Response, status: int) -> None:
    problems.assert_problem(response, status, request_id=False)


@pytest.mark.parametrize("case", wavcorpus.good_cases(), ids=lambda case: case.name)
def test_every_corpus_format_becomes_an_exact_mp3(
    client: httpx.Client, case: wavcorpus.Case
) -> None:
    response = client.post("/transcode", content=case.wav)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/mpeg"
    assert int(response.headers["content-length"]) == len(response.content)
    info = mp3.parse(response.content)
    channels, rate, frames = decode_to_wav(response.content)
    duration = float(response.headers["x-audio-duration-seconds"])
    assert channels == case.channels == int(response.headers["x-audio-channels"])
    assert rate == info.sample_rate == int(response.headers["x-audio-sample-rate"])
    assert int(response.headers["x-audio-bitrate"]) == info.bitrate
    assert frames == info.sample_count == round(duration * rate)
    assert duration == pytest.approx(case.seconds, abs=0.1)


@pytest.mark.parametrize("case", wavcorpus.bad_cases(), ids=lambda case: case.name)
def test_every_bad_input_is_refused(client: httpx.Client, case: wavcorpus.BadCase) -> None:
    assert_problem(client.post("/transcode", content=case.wav), case.status)


def test_a_chunked_body_in_small_pieces_works(client: httpx.Client) -> None:
    data = wavcorpus.streamed(0.5, 16000, 2, size=0xFFFFFFFF)
    pieces = (data[i : i + 999] for i in range(0, len(data), 999))
    response = client.post("/transcode", content=pieces)
    assert response.status_code == 200
    assert float(response.headers["x-audio-duration-seconds"]) == 0.5


def test_max_duration_is_checked_from_the_header(client: httpx.Client) -> None:
    response = client.post(
        "/transcode", params={"max_duration_seconds": 0.4}, content=wavcorpus.pcm(0.5)
    )
    assert_problem(response, 422)
    assert response.json()["type"].endswith("/audio-too-long")


def test_max_duration_is_checked_from_the_output_when_the_header_cannot_tell(
    client: httpx.Client,
) -> None:
    response = client.post(
        "/transcode", params={"max_duration_seconds": 0.4}, content=wavcorpus.streamed(0.5)
    )
    assert_problem(response, 422)
    assert response.json()["type"].endswith("/audio-too-long")


def test_the_setting_caps_the_requested_max_duration(limited: tuple[LiveServer, Path]) -> None:
    server, _ = limited
    response = httpx.post(
        f"{server.url}/transcode",
        params={"max_duration_seconds": 1000},
        content=wavcorpus.streamed(1.5, 8000, 1),
        timeout=30,
    )
    assert_problem(response, 422)
    ok = httpx.post(f"{server.url}/transcode", content=wavcorpus.pcm(0.9, 8000, 1), timeout=30)
    assert ok.status_code == 200


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf"])
def test_an_invalid_max_duration_is_a_422_problem(client: httpx.Client, value: str) -> None:
    response = client.post(
        "/transcode", params={"max_duration_seconds": value}, content=wavcorpus.pcm(0.1)
    )
    assert_problem(response, 422)
    assert response.json()["errors"][0]["loc"] == ["query", "max_duration_seconds"]


def test_the_request_id_is_echoed(client: httpx.Client) -> None:
    response = client.post(
        "/transcode", content=wavcorpus.pcm(0.1), headers={"X-Request-ID": "req-42"}
    )
    assert response.headers["x-request-id"] == "req-42"
    assert (
        client.get("/healthz", headers={"X-Request-ID": "a b\x01"}).headers.get("x-request-id")
        is None
    )


def test_healthz(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unknown_paths_and_methods_are_problems(client: httpx.Client) -> None:
    assert_problem(client.get("/nope"), 404)
    assert_problem(client.get("/transcode"), 405)


# --- deadlines and disconnects: no ffmpeg and no temporary file survives -----------------------


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
    limited: tuple[LiveServer, Path],
) -> None:
    server, temp = limited
    data = wavcorpus.pcm(0.9, 8000, 1)
    with open_upload(server.url, data[:5000], len(data)) as connection:
        wait_until(lambda: child_pids(server.pid) != [], what="ffmpeg started")
        assert read_status(connection) == 504
    wait_until(lambda: child_pids(server.pid) == [], what="ffmpeg reaped")
    wait_until(lambda: leftovers(temp) == [], what="temporary files removed")


def test_an_encoder_ignoring_sigterm_is_killed_after_the_deadline(
    hanging: tuple[LiveServer, Path],
) -> None:
    server, folder = hanging
    response = httpx.post(f"{server.url}/transcode", content=wavcorpus.pcm(0.2), timeout=30)
    assert_problem(response, 504)
    pids = [int(entry.name) for entry in folder.iterdir() if entry.name.isdigit()]
    assert pids
    assert child_pids(server.pid) == []
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


def test_a_client_disconnecting_mid_upload_stops_ffmpeg(
    limited: tuple[LiveServer, Path],
) -> None:
    server, temp = limited
    data = wavcorpus.pcm(0.9, 8000, 1)
    with open_upload(server.url, data[:5000], len(data)):
        wait_until(lambda: child_pids(server.pid) != [], what="ffmpeg started")
    wait_until(lambda: child_pids(server.pid) == [], what="ffmpeg reaped", seconds=5)
    wait_until(lambda: leftovers(temp) == [], what="temporary files removed")


def test_successful_responses_leave_no_temporary_file(limited: tuple[LiveServer, Path]) -> None:
    server, temp = limited
    for _ in range(3):
        response = httpx.post(f"{server.url}/transcode", content=wavcorpus.pcm(0.3), timeout=30)
        assert response.status_code == 200
    wait_until(lambda: leftovers(temp) == [], what="temporary files removed")
