"""The transcoder over HTTP (the app in process, with its lifespan and real ffmpeg): the
gateway's contract. Deadlines and disconnects, which need a process and a socket: test_deadlines.py.
"""

import subprocess
import tempfile
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit import problems, wavcorpus
from testkit.inprocess import transcoder_client
from transcoder import mp3
from transcoder.config import Settings


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with transcoder_client(Settings()) as http:
        yield http


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


def test_the_setting_caps_the_requested_max_duration() -> None:
    with transcoder_client(Settings(max_duration_seconds=1)) as limited:
        response = limited.post(
            "/transcode",
            params={"max_duration_seconds": 1000},
            content=wavcorpus.streamed(1.5, 8000, 1),
        )
        assert_problem(response, 422)
        ok = limited.post("/transcode", content=wavcorpus.pcm(0.9, 8000, 1))
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
