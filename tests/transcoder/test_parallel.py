"""transcoder.parallel: two segment encodes joined into one MP3, checked against a single pass.

A low threshold (``parallel_min_seconds=10``) puts 40 s inputs on the two-segment path.
"""

from __future__ import annotations

import array
import asyncio
import math
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from servicekit import wav
from servicekit.errors import TranscodeTimeout
from testkit import wavcorpus
from testkit.procfs import child_pids
from transcoder import crc16, encoder, mp3, parallel, tagging

SECONDS = 40
THRESHOLD = 10.0
SIGNALS = {
    "sine": "0.5*sin(2*PI*1000*t)",
    "chirp": "0.5*sin(2*PI*(50*t+250*t*t))",  # 50 Hz rising to ~20 kHz over 40 s
}


def signal_wav(expression: str, rate: int, channels: int, seconds: float = SECONDS) -> bytes:
    """16-bit PCM of an ffmpeg ``aevalsrc`` expression, with a header that states its size."""
    exprs = "|".join([expression] * channels)
    raw = subprocess.run(
        [
            *(wavcorpus.ffmpeg_exe(), "-v", "error", "-f", "lavfi"),
            *("-i", f"aevalsrc={exprs}:s={rate}:d={seconds}", "-f", "s16le", "-"),
        ],
        capture_output=True,
        check=True,
    ).stdout
    fmt = wavcorpus.fmt_chunk(wavcorpus.WAVE_FORMAT_PCM, channels, rate, 16)
    return wavcorpus.riff(fmt, wavcorpus.chunk(b"data", raw))


async def chunks_of(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def transcode(data: bytes, output: Path, threshold: float | None) -> mp3.Mp3Info:
    coder = encoder.Encoder(wavcorpus.ffmpeg_exe(), "128k", 60, threshold, in_process=False)
    output.touch()
    work = coder.encode(chunks_of(data), output=output, max_duration_seconds=600)
    return asyncio.run(work).info


def single_pass(data: bytes, tmp_path: Path) -> bytes:
    """What one ffmpeg writes with the segments' options (``-reservoir 0``), from a file, with
    no metadata of ffmpeg's and the LAME tag's version string replaced, as the encoder does."""
    source, target = tmp_path / "in.wav", tmp_path / "single.mp3"
    source.write_bytes(data)
    subprocess.run(
        [
            *(wavcorpus.ffmpeg_exe(), "-v", "error", "-f", "wav", "-i", str(source)),
            *("-c:a", "libmp3lame", "-b:a", "128k", *parallel.SEGMENT_OPTIONS),
            *("-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"),
            *("-id3v2_version", "0", "-y", str(target)),
        ],
        check=True,
    )
    tagging.finish_mp3(target, {})
    return target.read_bytes()


def decode(path: Path) -> array.array[int]:
    """16-bit samples (interleaved) that ffmpeg decodes from an MP3 file."""
    raw = subprocess.run(
        [wavcorpus.ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "s16le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    samples = array.array("h", raw)
    if sys.byteorder != "little":
        samples.byteswap()
    return samples


def audio_frames(data: bytes) -> tuple[bytes, bytes]:
    """(Info frame, the audio frames after it)."""
    start = mp3.id3v2_size(data)
    length = mp3.parse_frame_header(data[start : start + 4]).length
    return data[start : start + length], data[start + length :]


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", [44100, 48000])
def test_the_joined_mp3_has_an_exact_info_header(
    tmp_path: Path, joins: list[parallel.Plan], rate: int, channels: int
) -> None:
    data = signal_wav(SIGNALS["chirp"], rate, channels)
    output = tmp_path / "out.mp3"
    info = transcode(data, output, THRESHOLD)
    assert len(joins) == 1
    samples = SECONDS * rate
    assert (info.sample_count, info.encoder_delay, info.channels) == (samples, 576, channels)
    assert info.sample_rate == rate
    mp3_bytes = output.read_bytes()
    parsed = mp3.parse(mp3_bytes[: mp3.HEAD_BYTES * 2])  # the LAME tag CRC is checked here
    assert parsed == info
    info_frame, audio = audio_frames(mp3_bytes)
    assert info.frames * parsed.samples_per_frame > samples
    lame = info_frame.index(b"LAME")
    assert int.from_bytes(info_frame[lame + 28 : lame + 32], "big") == len(info_frame) + len(audio)
    assert int.from_bytes(info_frame[lame + 32 : lame + 34], "big") == crc16.crc16(audio)
    # ffmpeg decoding the file (gapless, from the tag) yields every input sample, no more.
    assert len(decode(output)) == samples * channels


@pytest.mark.parametrize("signal", sorted(SIGNALS))
@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (48000, 1)])
def test_the_join_matches_a_single_pass(
    tmp_path: Path, joins: list[parallel.Plan], signal: str, rate: int, channels: int
) -> None:
    """Same bytes as one ``-reservoir 0`` encode, hence the same decoded audio: no click."""
    data = signal_wav(SIGNALS[signal], rate, channels)
    output = tmp_path / "out.mp3"
    transcode(data, output, THRESHOLD)
    (split,) = joins
    single = tmp_path / "single.mp3"
    single.write_bytes(single_pass(data, tmp_path))
    ours, theirs = decode(output), decode(single)
    assert len(ours) == len(theirs) == SECONDS * rate * channels
    # The join in decoded samples: frame K starts at K * 1152 - 576 (the encoder delay).
    join = (split.split_frame * parallel.FRAME_SAMPLES - 576) * channels
    window = slice(join - 4096 * channels, join + 4096 * channels)
    original = array.array("h", data[len(data) - len(ours) * 2 :])
    if sys.byteorder != "little":
        original.byteswap()
    near = [a - b for a, b in zip(ours[window], theirs[window], strict=True)]
    codec_error = [a - b for a, b in zip(theirs[window], original[window], strict=True)]
    signal_rms = _rms(original[window])
    figures = {
        "max_abs_diff": max(map(abs, near)),
        "rms_diff_rel": _rms(near) / signal_rms,
        "single_pass_snr_db": 20 * math.log10(signal_rms / _rms(codec_error)),
    }
    print(f"\n{signal} {rate} Hz x{channels}: join ±4096 samples: {figures}")
    assert figures["max_abs_diff"] == 0
    assert ours == theirs
    assert output.read_bytes() == single.read_bytes()


def _rms(values: list[int] | array.array[int]) -> float:
    return math.sqrt(sum(v * v for v in values) / len(values)) or 1e-9


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(signal_wav(SIGNALS["sine"], 44100, 2, seconds=8), id="short"),
        pytest.param(wavcorpus.ffmpeg_encoded("pcm_mulaw", 12, 8000, 1), id="mulaw"),
        pytest.param(wavcorpus.ffmpeg_encoded("adpcm_ms", 12, 44100, 2), id="adpcm"),
        pytest.param(wavcorpus.pcm(12, 96000, 2), id="resampled"),
        pytest.param(wavcorpus.pcm(12, 44100, 6), id="downmixed"),
        pytest.param(wavcorpus.streamed(12), id="unknown-size"),
    ],
)
def test_other_inputs_keep_one_encode(
    tmp_path: Path, joins: list[parallel.Plan], data: bytes
) -> None:
    header = wav.parse_header(data)
    assert header is not None
    assert parallel.plan(header, THRESHOLD) is None
    info = transcode(data, tmp_path / "out.mp3", THRESHOLD)
    assert info.sample_count > 0
    assert joins == []


def test_data_shorter_than_its_header_falls_back_to_one_encode(
    tmp_path: Path, joins: list[parallel.Plan]
) -> None:
    data = signal_wav(SIGNALS["sine"], 44100, 2)
    cut = data[: len(data) - 10 * 44100 * 4]  # the header still says 40 s; 30 s arrive
    output, expected = tmp_path / "out.mp3", tmp_path / "expected.mp3"
    info = transcode(cut, output, THRESHOLD)
    assert joins == []
    assert info.sample_count == 30 * 44100
    transcode(cut, expected, None)
    assert output.read_bytes() == expected.read_bytes()


def test_no_temporary_file_or_process_is_left(tmp_path: Path) -> None:
    before = set(child_pids(os.getpid()))
    data = signal_wav(SIGNALS["sine"], 44100, 2)
    output = tmp_path / "out.mp3"
    transcode(data, output, THRESHOLD)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp3"]
    coder = encoder.Encoder(wavcorpus.ffmpeg_exe(), "128k", 0.1, THRESHOLD, in_process=False)
    with pytest.raises(TranscodeTimeout):
        asyncio.run(coder.encode(chunks_of(data), output=output, max_duration_seconds=600))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp3"]
    assert set(child_pids(os.getpid())) <= before


@pytest.mark.parametrize("length", [0, 1, 7, 1000, 65537])
def test_crc16_shift_chains_and_unchains_crcs(length: int) -> None:
    head, tail = os.urandom(333), os.urandom(length)
    whole = crc16.crc16(head + tail)
    assert whole == crc16.crc16(head + tail)
    assert whole == crc16.crc16_shift(crc16.crc16(head), length) ^ crc16.crc16(tail)
    assert crc16.crc16(head) == crc16.crc16_shift(whole ^ crc16.crc16(tail), -length)
