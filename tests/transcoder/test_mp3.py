"""transcoder.mp3: the Xing/LAME facts of real ffmpeg encodes match what a decoder yields."""

import contextlib
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from testkit import wavcorpus
from transcoder import crc16, mp3


def encode(wav: bytes, destination: Path, *extra: str) -> bytes:
    """An MP3 from ffmpeg written to a (seekable) file, as the transcoder writes it."""
    command = [wavcorpus.ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error"]
    command += ["-f", "wav", "-i", "pipe:0", "-c:a", "libmp3lame", *extra]
    command += ["-f", "mp3", "-y", str(destination)]
    subprocess.run(command, input=wav, check=True, timeout=60)
    return destination.read_bytes()


def decoded_samples(mp3_bytes: bytes) -> int:
    """Samples per channel ffmpeg's decoder yields from a file (trimmed by the LAME tag).

    Read from a pipe instead, ffmpeg trims nothing at the end: the gapless facts need a file.
    """
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "in.mp3"
        source.write_bytes(mp3_bytes)
        command = [wavcorpus.ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error"]
        command += ["-i", str(source), "-ac", "1", "-f", "s16le", "pipe:1"]
        pcm = subprocess.run(command, capture_output=True, check=True, timeout=60)
        return len(pcm.stdout) // 2


@pytest.mark.parametrize(
    ("rate", "channels", "seconds", "bitrate"),
    [
        (8000, 1, 0.3, "128k"),
        (11025, 2, 0.77, "128k"),
        (12000, 1, 0.5, "32k"),
        (16000, 2, 0.41, "128k"),
        (22050, 1, 1.01, "128k"),
        (24000, 2, 0.2, "64k"),
        (32000, 1, 0.9, "128k"),
        (44100, 2, 1.5, "128k"),
        (48000, 2, 0.05, "320k"),
    ],
)
def test_sample_count_equals_what_ffmpeg_decodes(
    tmp_path: Path, rate: int, channels: int, seconds: float, bitrate: str
) -> None:
    data = encode(wavcorpus.pcm(seconds, rate, channels), tmp_path / "out.mp3", "-b:a", bitrate)
    info = mp3.parse(data[: mp3.HEAD_BYTES])
    assert info.sample_rate == rate
    assert info.channels == channels
    assert info.sample_count == round(seconds * rate) == decoded_samples(data)
    assert info.duration_seconds == pytest.approx(seconds, abs=1 / rate)
    assert info.samples_per_frame == (1152 if rate >= 32000 else 576)
    assert info.encoder.startswith(("Lavc", "LAME"))


def test_xing_frame_count_excludes_the_info_frame(tmp_path: Path) -> None:
    data = encode(wavcorpus.pcm(1.0, 44100, 2), tmp_path / "out.mp3", "-b:a", "128k")
    start = mp3.id3v2_size(data)
    position, frames_in_file = start, 0
    while position + 4 <= len(data):
        position += mp3.parse_frame_header(data[position : position + 4]).length
        frames_in_file += 1
    assert position == len(data)
    assert mp3.parse(data).frames == frames_in_file - 1


def test_the_stream_bitrate_is_reported_not_the_info_frames(tmp_path: Path) -> None:
    """At 8 kHz LAME caps 128k at 64k while ffmpeg writes the Info frame at 128k to fit the tag."""
    data = encode(wavcorpus.pcm(0.5, 8000, 2), tmp_path / "out.mp3", "-b:a", "128k")
    start = mp3.id3v2_size(data)
    assert mp3.parse_frame_header(data[start : start + 4]).bitrate == 128000
    assert mp3.parse(data).bitrate == 64000


def test_vbr_reports_the_average_bitrate(tmp_path: Path) -> None:
    data = encode(wavcorpus.pcm(1.0, 44100, 2), tmp_path / "out.mp3", "-q:a", "4")
    info = mp3.parse(data)
    assert info.sample_count == 44100 == decoded_samples(data)
    assert 32000 <= info.bitrate <= 320000


def test_an_mp3_written_to_a_pipe_has_no_info_header() -> None:
    command = [wavcorpus.ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error"]
    command += ["-f", "wav", "-i", "pipe:0", "-c:a", "libmp3lame", "-f", "mp3", "pipe:1"]
    piped = subprocess.run(
        command, input=wavcorpus.pcm(0.5), capture_output=True, check=True, timeout=60
    )
    with pytest.raises(mp3.Mp3Error, match="Xing"):
        mp3.parse(piped.stdout[: mp3.HEAD_BYTES])


def test_a_corrupted_lame_tag_fails_its_crc(tmp_path: Path) -> None:
    data = bytearray(encode(wavcorpus.pcm(0.5), tmp_path / "out.mp3", "-b:a", "128k"))
    lame = data.index(b"Lavc") if b"Lavc" in data else data.index(b"LAME")
    data[lame + 22] ^= 0xFF  # inside the delay/padding field
    with pytest.raises(mp3.Mp3Error, match="CRC"):
        mp3.parse(bytes(data))


def test_crc16_is_crc16_arc() -> None:
    assert crc16.crc16(b"123456789") == 0xBB3D


@pytest.mark.parametrize(
    ("header", "version", "rate", "bitrate", "channels"),
    [
        (bytes.fromhex("fffb9000"), 1, 44100, 128000, 2),
        (bytes.fromhex("fffb94c0"), 1, 48000, 128000, 1),
        (bytes.fromhex("fff3c000"), 2, 22050, 128000, 2),
        (bytes.fromhex("ffe3c8c0"), 25, 8000, 128000, 1),
    ],
)
def test_frame_headers(header: bytes, version: int, rate: int, bitrate: int, channels: int) -> None:
    frame = mp3.parse_frame_header(header)
    assert (frame.mpeg_version, frame.sample_rate, frame.bitrate) == (version, rate, bitrate)
    assert frame.channels == channels


@pytest.mark.parametrize(
    "header",
    [b"", b"\xff\xfb", b"\x00\x00\x00\x00", bytes.fromhex("fffd9000"), bytes.fromhex("fffbf000")],
)
def test_invalid_frame_headers(header: bytes) -> None:
    with pytest.raises(mp3.Mp3Error):
        mp3.parse_frame_header(header)


@pytest.fixture(scope="module")
def real_head() -> bytes:
    command = [wavcorpus.ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error"]
    command += ["-f", "wav", "-i", "pipe:0", "-c:a", "libmp3lame", "-f", "mp3", "-y"]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.mp3"
        subprocess.run([*command, str(out)], input=wavcorpus.pcm(0.2), check=True, timeout=60)
        return out.read_bytes()[: mp3.HEAD_BYTES]


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_mp3_errors(data: bytes) -> None:
    with contextlib.suppress(mp3.Mp3Error):
        mp3.parse(data)


@given(
    edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 1000),
)
def test_mutated_mp3_heads_raise_only_mp3_errors(
    real_head: bytes, edits: list[tuple[int, int]], cut: int
) -> None:
    mutated = bytearray(real_head)
    for position, value in edits:
        mutated[position] = value
    with contextlib.suppress(mp3.Mp3Error):
        mp3.parse(bytes(mutated[: len(mutated) - cut]))


def test_file_bytes_slices_as_bytes_does(tmp_path: Path) -> None:
    content = bytes(range(256)) * 40 + b"end"  # 10,243 bytes; a window of 1000
    path = tmp_path / "data"
    path.write_bytes(content)
    spans = [(0, 4), (998, 1003), (5, 5), (10, 3), (100, 2600), (-7, None), (None, None)]
    spans += [(10_240, 20_000), (20_000, 30_000), (3, -3), (999, 1000), (1000, 1001)]
    with path.open("rb") as file:
        data = mp3.FileBytes(file, window=1000)
        assert len(data) == len(content)
        for start, stop in spans * 2:  # twice: from a cold and from a warm window
            assert data[start:stop] == content[start:stop], (start, stop)
        with pytest.raises(ValueError, match="no step"):
            data[::2]
