"""transcoder.encoder: the ffmpeg command, streaming in, deadlines, and no process left behind."""

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from starlette.requests import ClientDisconnect

from servicekit import wav
from servicekit.errors import NotAWav, TranscodeTimeout, UndecodableAudio
from testkit import wavcorpus
from testkit.fake_ffmpeg import HANGING_FFMPEG, fake_ffmpeg
from testkit.procfs import child_pids
from transcoder import encoder, mp3
from transcoder.errors import EncoderUnavailable


def real_encoder(timeout_seconds: float = 30) -> encoder.Encoder:
    return encoder.Encoder(wavcorpus.ffmpeg_exe(), "128k", timeout_seconds)


async def chunks_of(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def run(
    body: AsyncIterator[bytes],
    output: Path,
    *,
    coder: encoder.Encoder | None = None,
    max_duration_seconds: float = 60,
) -> mp3.Mp3Info:
    work = (coder or real_encoder()).encode(
        body, output=output, max_duration_seconds=max_duration_seconds
    )
    return asyncio.run(work).info


@pytest.fixture
def output(tmp_path: Path) -> Path:
    path = tmp_path / "out.mp3"
    path.touch()
    return path


@pytest.fixture
def no_new_children() -> Callable[[], bool]:
    """Whether every process started since (ffmpeg) is gone, zombies included.

    Other tests' live servers are children of this process too: only new ones count.
    """
    before = set(child_pids(os.getpid()))
    return lambda: set(child_pids(os.getpid())) <= before


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        (8000, 8000),
        (11025, 11025),
        (44100, 44100),
        (48000, 48000),
        (88200, 44100),
        (96000, 48000),
        (176400, 44100),
        (192000, 48000),
        (37800, 32000),
        (64000, 48000),
        (9000, 8000),
        (50000, 48000),
    ],
)
def test_output_sample_rate(rate: int, expected: int) -> None:
    assert encoder.output_sample_rate(rate) == expected


def test_the_command_forces_wav_from_a_pipe_and_writes_a_file(output: Path) -> None:
    header = wav.parse_header(wavcorpus.pcm(0.1, 96000, 6), complete=True)
    assert header is not None
    command = real_encoder().command(header, output, 60, encoder.Choice("cbr", kbps=128))
    assert command[command.index("-protocol_whitelist") + 1] == "pipe"
    assert command.index("-f") < command.index("-i")
    assert command[command.index("-f") + 1] == "wav"
    assert command[command.index("-i") + 1] == "pipe:0"
    assert command[command.index("-ac") + 1] == "2"
    assert command[command.index("-ar") + 1] == "48000"
    assert command[command.index("-t") + 1] == "61.000"
    assert command[command.index("-y") + 1] == str(output)
    assert command[command.index("-map_metadata") + 1] == "-1"
    assert command[command.index("-id3v2_version") + 1] == "0"


def test_a_header_arriving_byte_by_byte_is_found(
    no_new_children: Callable[[], bool], output: Path
) -> None:
    data = wavcorpus.list_before_fmt(0.3, 22050, 1)
    info = run(chunks_of(data, 1), output)
    assert info.sample_count == round(0.3 * 22050)
    assert info.channels == 1
    assert output.read_bytes().startswith(b"ID3")
    assert no_new_children()


def test_a_body_without_magic_is_refused_before_ffmpeg_starts(output: Path) -> None:
    coder = encoder.Encoder("/nonexistent/ffmpeg", "128k", 30, in_process=False)
    with pytest.raises(NotAWav):
        run(chunks_of(wavcorpus.hls_playlist()), output, coder=coder)


def test_no_data_chunk_within_the_header_budget_is_unusable(output: Path) -> None:
    huge_list = wavcorpus.chunk(b"LIST", bytes(encoder.MAX_HEADER_BYTES + 10))
    data = wavcorpus.riff(huge_list) + bytes(10)
    with pytest.raises(UndecodableAudio, match="No audio data chunk"):
        run(chunks_of(data), output)


def test_a_lying_chunk_size_cannot_make_it_read_forever(output: Path) -> None:
    lying = wavcorpus.chunk(b"junk", b"", size=0xFFFFFFF0)
    data = wavcorpus.riff(wavcorpus.fmt_chunk(1, 1, 8000, 16), lying) + bytes(200_000)
    with pytest.raises(UndecodableAudio, match="ends before its audio data"):
        run(chunks_of(data), output)


def test_the_output_duration_is_checked_when_the_header_has_none(
    no_new_children: Callable[[], bool], output: Path
) -> None:
    with pytest.raises(UndecodableAudio, match=r"at most 0\.5 s"):
        run(chunks_of(wavcorpus.streamed(1.0, 8000, 1)), output, max_duration_seconds=0.5)
    assert no_new_children()


def test_trailing_bytes_after_the_data_chunk_are_read_and_dropped(output: Path) -> None:
    data = wavcorpus.pcm(0.2, 8000, 1) + wavcorpus.chunk(b"junk", bytes(3_000_000))
    info = run(chunks_of(data), output)
    assert info.sample_count == 1600


def test_corrupt_audio_reports_ffmpegs_first_error_line(output: Path) -> None:
    with pytest.raises(UndecodableAudio, match="invalid number of samples") as raised:
        run(chunks_of(wavcorpus.garbage_adpcm()), output)
    assert "@ 0x" not in raised.value.detail
    assert len(raised.value.detail) < 300


def test_a_missing_encoder_is_our_fault_not_the_inputs(output: Path) -> None:
    coder = encoder.Encoder("/nonexistent/ffmpeg", "128k", 30, in_process=False)
    with pytest.raises(EncoderUnavailable):
        run(chunks_of(wavcorpus.pcm(0.1)), output, coder=coder)


def test_an_encoder_exiting_0_without_output_is_not_a_success(tmp_path: Path, output: Path) -> None:
    silent = fake_ffmpeg(tmp_path / "ffmpeg", "import sys\nsys.stdin.buffer.read()\n")
    coder = encoder.Encoder(str(silent), "128k", 30, in_process=False)
    with pytest.raises(UndecodableAudio, match="No audio could be decoded"):
        run(chunks_of(wavcorpus.pcm(0.2)), output, coder=coder)


def test_an_mp3_without_info_header_is_not_a_success(tmp_path: Path, output: Path) -> None:
    """What ffmpeg writes to a pipe: valid frames, no Xing/LAME header."""
    piping = fake_ffmpeg(
        tmp_path / "ffmpeg",
        "import subprocess, sys\n"
        "args = sys.argv[1:]; args.insert(args.index('-y'), '-write_xing'); "
        "args.insert(args.index('-y'), '0')\n"
        f"sys.exit(subprocess.run([{wavcorpus.ffmpeg_exe()!r}, *args]).returncode)\n",
    )
    coder = encoder.Encoder(str(piping), "128k", 30, in_process=False)
    with pytest.raises(UndecodableAudio, match="No audio could be decoded"):
        run(chunks_of(wavcorpus.pcm(0.2)), output, coder=coder)
    assert output.stat().st_size > 1000


def test_a_stalled_body_times_out_and_ffmpeg_is_reaped(
    no_new_children: Callable[[], bool], output: Path
) -> None:
    async def stalls() -> AsyncIterator[bytes]:
        yield wavcorpus.pcm(0.2)
        await asyncio.Event().wait()
        yield b""  # pragma: no cover

    with pytest.raises(TranscodeTimeout):
        run(stalls(), output, coder=real_encoder(timeout_seconds=0.5))
    assert no_new_children()


def test_an_encoder_ignoring_sigterm_is_killed_at_the_deadline(
    no_new_children: Callable[[], bool],
    tmp_path: Path,
    output: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_FFMPEG_PID_DIR", str(tmp_path))
    hanging = fake_ffmpeg(tmp_path / "ffmpeg", HANGING_FFMPEG)
    coder = encoder.Encoder(str(hanging), "128k", 0.5, in_process=False)
    with pytest.raises(TranscodeTimeout):
        run(chunks_of(wavcorpus.pcm(0.5)), output, coder=coder)
    assert no_new_children()
    pids = [int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()]
    assert pids  # it did start, and is gone
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


@pytest.mark.parametrize("error", [ClientDisconnect, asyncio.CancelledError])
def test_a_client_gone_mid_body_stops_ffmpeg(
    no_new_children: Callable[[], bool], output: Path, error: Callable[[], BaseException]
) -> None:
    async def disconnects() -> AsyncIterator[bytes]:
        yield wavcorpus.pcm(5.0)[:100_000]
        for _ in range(200):  # let ffmpeg start and take what it got
            await asyncio.sleep(0)
        raise error()

    with pytest.raises((ClientDisconnect, asyncio.CancelledError)):
        run(disconnects(), output)
    assert no_new_children()
