"""The in-process encode (``transcoder.lame``): LAME's frames behind an Info frame of our own
making, checked field by field against the frames themselves and by ffmpeg's gapless decode."""

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from servicekit import wav
from servicekit.errors import AudioTooLong
from testkit import wavcorpus
from tests.transcoder.joincheck import decode
from transcoder import lame, mp3
from transcoder.crc16 import crc16, crc16_of_large


async def chunks_of(data: bytes, size: int = 50_001) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def encode(data: bytes, path: Path, kbps: int = 128) -> lame.Measured:
    header = wav.parse_header(data[:4096])
    assert header is not None
    assert lame.handles(header)
    path.touch()
    return asyncio.run(
        lame.encode(
            header,
            data[: header.data_offset],
            chunks_of(data[header.data_offset :]),
            path,
            kbps=kbps,
            max_duration_seconds=60,
        )
    )


@pytest.mark.parametrize(
    ("rate", "channels", "kbps"),
    [
        (44100, 2, 128),
        (48000, 2, 320),
        (44100, 1, 64),
        (32000, 2, 32),
        (22050, 2, 32),
        (8000, 1, 8),
    ],
)
def test_the_info_frame_describes_the_frames_and_the_decode_is_gapless(
    tmp_path: Path, rate: int, channels: int, kbps: int
) -> None:
    data = wavcorpus.pcm(2.3, rate, channels)
    path = tmp_path / "out.mp3"
    measured = encode(data, path, kbps)
    assert measured.frames == round(2.3 * rate)
    mp3_bytes = path.read_bytes()
    info = mp3.parse(mp3_bytes[: mp3.HEAD_BYTES])  # the tag CRC checked on the way
    first = mp3.parse_frame_header(mp3_bytes[:4])
    offsets = mp3.cbr_frame_offsets(mp3_bytes, first.length)
    lengths = [end - start for start, end in itertools.pairwise(offsets)]
    assert info.frames == len(lengths)
    assert info.sample_count == measured.frames
    assert info.encoder_delay == lame.ENCODER_DELAY
    assert info.bitrate == kbps * 1000  # the stream's, whatever the Info frame's own
    lame_tag = mp3.lame_tag_offset(mp3_bytes[: first.length])
    xing = 4 + first.side_info_bytes
    assert int.from_bytes(mp3_bytes[xing + 12 : xing + 16], "big") == len(mp3_bytes)
    assert mp3_bytes[xing + 16 : xing + 116] == mp3.xing_toc(first.length, lengths)
    assert int.from_bytes(mp3_bytes[lame_tag + 28 : lame_tag + 32], "big") == len(mp3_bytes)
    music_crc = int.from_bytes(mp3_bytes[lame_tag + 32 : lame_tag + 34], "big")
    assert music_crc == crc16(mp3_bytes[first.length :])
    assert mp3_bytes[lame_tag : lame_tag + 9] == mp3.ANONYMOUS_ENCODER
    assert len(decode(path, channels)) == measured.frames


@pytest.mark.parametrize(
    "make",
    [
        lambda: wavcorpus.streamed(1.2),
        lambda: wavcorpus.truncated_data(1.2),
        lambda: wavcorpus.list_before_fmt(1.2),
        lambda: wavcorpus.pcm(1.2) + wavcorpus.info_list("after the audio"),
    ],
    ids=["streamed", "truncated", "list-first", "trailing-chunk"],
)
def test_only_the_data_chunk_is_encoded(tmp_path: Path, make: object) -> None:
    assert callable(make)
    data: bytes = make()
    header = wav.parse_header(data[:4096])
    assert header is not None
    measured = encode(data, tmp_path / "out.mp3")
    end = len(data) if header.data_size is None else header.data_offset + header.data_size
    size = len(data[header.data_offset : end])
    assert measured.frames == size // header.block_align
    assert len(decode(tmp_path / "out.mp3", header.channels)) == measured.frames


def test_a_streamed_recording_past_the_limit_is_refused(tmp_path: Path) -> None:
    data = wavcorpus.streamed(2.0, rate=8000)
    header = wav.parse_header(data[:4096])
    assert header is not None
    (tmp_path / "out.mp3").touch()
    with pytest.raises(AudioTooLong, match=r"lasts 2\.0 s"):
        asyncio.run(
            lame.encode(
                header,
                data[: header.data_offset],
                chunks_of(data[header.data_offset :]),
                tmp_path / "out.mp3",
                kbps=128,
                max_duration_seconds=1,
            )
        )


@pytest.mark.parametrize("size", [0, 1, 4095, 4096 * 64 + 17, 3_000_001])
def test_the_large_crc_is_the_crc(size: int) -> None:
    data = os.urandom(size)
    assert crc16_of_large(data) == crc16(data)
    assert crc16_of_large(data, 0x1234) == crc16(data, 0x1234)
