"""Long PCM inputs on two cores: two ffmpeg encodes of overlapping halves, joined into one MP3.

The input is split at a sample position ``split = K * 1152``. Segment 1 encodes samples
``[0, split + 4 frames)`` and keeps its first ``K`` frames; segment 2 encodes from
``split - 4 frames`` and drops its first 4 (pre-roll) frames. Both run with ``-reservoir 0``, so
no frame borrows bits from the frame before it and frames of two encodes can follow each other.
As both encoders delay by the same 576 samples, segment 2's frame ``m`` covers exactly the
samples of single-pass frame ``K - 4 + m``: the kept frames are, bar the odd padding slot, the
frames a single ``-reservoir 0`` encode writes (tests/transcoder/test_parallel.py measures it).
The joined stream gets segment 1's Info frame with the frame count, byte count, TOC,
padding, music length, music CRC and tag CRC of the whole stream.

The body is spooled to an unlinked temporary file as it arrives; each segment's ffmpeg reads
its range from there as soon as the bytes are in, so segment 1 starts with the first bytes.
Segment 1 reads the whole input, not only its part: its ffmpeg also measures loudness and makes
the waveform PCM of everything (``transcoder.analysis``) while its encoder stops at ``first_end``
(``atrim``), so the split keeps the one-pass analysis. Only CBR is split: VBR frames differ
with what came before, so halves of VBR encodes could not be joined into the single pass.
Anything unexpected (the data ends early, an encode fails) falls back to the single encode
over the spool, which then answers exactly as it always did.
"""

import asyncio
import contextlib
import functools
import itertools
import logging
import mmap
import os
import struct
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

from servicekit import wav
from transcoder import mp3
from transcoder.crc16 import crc16, crc16_shift

logger = logging.getLogger(__name__)

FRAME_SAMPLES = 1152  # MPEG-1 layer III
MPEG1_RATES = (32000, 44100, 48000)
PRE_ROLL_FRAMES = 4
TAIL_FRAMES = 4
SEGMENT_OPTIONS = ("-reservoir", "0")
_PADDING_PERIOD_FRAMES = 49
_CHUNK_BYTES = 256 * 1024
_SPOOL_FLUSH_BYTES = 1024 * 1024
_MAX_RIFF_DATA = 0xFFFFFFFF - 64
_XING_FRAMES, _XING_BYTES, _XING_TOC = 1, 2, 4

R = TypeVar("R")
# (WAV header, audio, output path, encode_end_sample): segment 1 is given the whole input and
# the sample where its encode ends; segment 2 its own part and None.
RunSegment = Callable[[bytes, AsyncIterator[bytes], Path, int | None], Coroutine[Any, Any, R]]
RunSingle = Callable[[bytes, AsyncIterator[bytes]], Awaitable[R]]


@dataclass(frozen=True, slots=True)
class Plan:
    header: wav.WavHeader
    samples: int  # per channel, from the header's data size
    split_frame: int  # K: segment 1 keeps frames [0, K), segment 2 the rest

    @property
    def second_start(self) -> int:
        """First sample of segment 2's input."""
        return (self.split_frame - PRE_ROLL_FRAMES) * FRAME_SAMPLES

    @property
    def first_end(self) -> int:
        """End (exclusive) of segment 1's input."""
        return min(self.samples, (self.split_frame + TAIL_FRAMES) * FRAME_SAMPLES)


def plan(header: wav.WavHeader, min_seconds: float | None) -> Plan | None:
    """A split for integer PCM or float input of known size, mono or stereo, at an MPEG-1 rate
    (no resampling), at least ``min_seconds`` long; None for everything else."""
    if min_seconds is None or header.data_size is None:
        return None
    if header.format_tag not in (wav.FORMAT_PCM, wav.FORMAT_IEEE_FLOAT):
        return None
    if header.channels not in (1, 2) or header.sample_rate not in MPEG1_RATES:
        return None
    bits = header.bits_per_sample
    if bits % 8 or bits == 0 or header.block_align != header.channels * bits // 8:
        return None
    samples = header.data_size // header.block_align
    if samples < max(min_seconds * header.sample_rate, 4 * FRAME_SAMPLES * PRE_ROLL_FRAMES):
        return None
    # LAME pads a frame with one byte when its running remainder says so; that pattern repeats
    # every 49 frames at 44.1 kHz (1152 * bitrate / 8 mod 44100 is a multiple of 900 for every
    # bitrate) and is empty at 32 and 48 kHz. Segment 2 starts in phase with a single pass.
    middle = samples // FRAME_SAMPLES // 2 - PRE_ROLL_FRAMES
    split_frame = middle - middle % _PADDING_PERIOD_FRAMES + PRE_ROLL_FRAMES
    result = Plan(header, samples, split_frame)
    largest = max(result.first_end, samples - result.second_start) * header.block_align
    return result if largest <= _MAX_RIFF_DATA else None


def segment_header(header: wav.WavHeader, samples: int) -> bytes:
    """A canonical WAV header for ``samples`` frames of ``header``'s audio."""
    size = samples * header.block_align
    fmt = struct.pack(
        "<HHIIHH",
        header.format_tag,
        header.channels,
        header.sample_rate,
        header.sample_rate * header.block_align,
        header.block_align,
        header.bits_per_sample,
    )
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + size)
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", size)
    )


class Spool:
    """The audio data of the body, in an unlinked file that readers follow as it grows."""

    def __init__(self, file: BinaryIO, data_size: int) -> None:
        self._file = file
        self._limit = data_size
        self.size = 0
        self.done = False
        self._grown = asyncio.Condition()

    async def fill(self, buffered: bytes, body: AsyncIterator[bytes]) -> None:
        """Store the data chunk's bytes; read (and drop) the rest of the body."""
        pending = bytearray(buffered)
        try:
            async for chunk in body:
                if self.size + len(pending) < self._limit:
                    pending += chunk
                if len(pending) >= _SPOOL_FLUSH_BYTES:
                    await self._flush(pending)
            await self._flush(pending)
        finally:
            async with self._grown:
                self.done = True
                self._grown.notify_all()

    async def _flush(self, pending: bytearray) -> None:
        kept = bytes(pending[: max(0, self._limit - self.size)])
        pending.clear()
        if kept:
            await asyncio.to_thread(os.pwrite, self._file.fileno(), kept, self.size)
            async with self._grown:
                self.size += len(kept)
                self._grown.notify_all()

    def _past(self, position: int) -> bool:
        return self.done or self.size > position

    async def read(self, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` of the data, as they arrive (fewer if the body ends early)."""
        position = start
        while position < end:
            async with self._grown:
                await self._grown.wait_for(functools.partial(self._past, position))
                available = min(self.size, end)
            if available <= position:
                return
            while position < available:
                size = min(_CHUNK_BYTES, available - position)
                chunk = await asyncio.to_thread(os.pread, self._file.fileno(), size, position)
                position += len(chunk)
                yield chunk


async def encode(
    split: Plan,
    buffered: bytes,
    body: AsyncIterator[bytes],
    output: Path,
    *,
    run_segment: RunSegment[R],
    run_single: RunSingle[R],
) -> R:
    """Encode both segments at once and join them into ``output``; returns segment 1's result.

    ``run_segment(header, body, path, end_sample)`` encodes a WAV with ``SEGMENT_OPTIONS`` to
    ``path`` (up to ``end_sample`` when given); ``run_single(header, body)`` is the usual single
    encode to ``output`` (the fallback, whose result is returned then).
    """
    header = split.header
    assert header.data_size is not None
    block = header.block_align
    directory = output.parent
    with tempfile.TemporaryFile(dir=directory) as spool_file, _temporary(directory) as first, \
            _temporary(directory) as second:  # fmt: skip
        spool = Spool(spool_file, header.data_size)
        filling = asyncio.create_task(spool.fill(buffered[header.data_offset :], body))
        segments = [
            asyncio.create_task(
                run_segment(
                    segment_header(header, split.samples),
                    spool.read(0, split.samples * block),
                    first,
                    split.first_end,
                )
            ),
            asyncio.create_task(
                run_segment(
                    segment_header(header, split.samples - split.second_start),
                    spool.read(split.second_start * block, split.samples * block),
                    second,
                    None,
                )
            ),
        ]
        try:
            await filling
            complete = spool.size >= split.samples * block
            results = await asyncio.gather(*segments, return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            if complete and not failures:
                try:
                    await asyncio.to_thread(join, split, first, second, output)
                except (ValueError, OSError, IndexError, struct.error) as error:
                    logger.warning("cannot join the segments (%s): encoding in one pass", error)
                else:
                    return cast(R, results[0])
            elif failures:
                logger.warning("a segment failed (%s): encoding in one pass", failures[0])
        finally:
            for task in (filling, *segments):
                task.cancel()
            await asyncio.gather(filling, *segments, return_exceptions=True)
        # Short data or a failed segment: the single encode over the spool says what it is.
        original = buffered[: header.data_offset]
        return await run_single(original, spool.read(0, header.data_size))


@contextlib.contextmanager
def _temporary(directory: Path) -> Iterator[Path]:
    descriptor, name = tempfile.mkstemp(prefix="riffle-segment-", suffix=".mp3", dir=directory)
    os.close(descriptor)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def join(split: Plan, first: Path, second: Path, output: Path) -> None:
    """Write segment 1's first K frames and segment 2's frames after its pre-roll to ``output``,
    behind segment 1's ID3 tag and an Info frame that describes the joined stream."""
    with (
        first.open("rb") as file1,
        second.open("rb") as file2,
        _mapped(file1) as one,
        _mapped(file2) as two,
    ):
        seg1, seg2 = _Segment.read(one), _Segment.read(two)
        if seg1.info.encoder_delay != seg2.info.encoder_delay:
            raise mp3.Mp3Error("The segments' encoder delays differ.")
        if seg1.info.samples_per_frame != FRAME_SAMPLES or seg1.frames < split.split_frame:
            raise mp3.Mp3Error("Segment 1 is shorter than planned.")
        if seg2.frames <= PRE_ROLL_FRAMES:
            raise mp3.Mp3Error("Segment 2 is shorter than planned.")
        start1, end1 = seg1.offsets[0], seg1.offsets[split.split_frame]
        start2, end2 = seg2.offsets[PRE_ROLL_FRAMES], seg2.offsets[-1]
        frames = split.split_frame + seg2.frames - PRE_ROLL_FRAMES
        delay = seg1.info.encoder_delay
        padding = frames * FRAME_SAMPLES - delay - split.samples
        if not 0 <= padding < 4096:
            raise mp3.Mp3Error(f"Padding {padding} does not fit the LAME tag.")
        # CRCs are linear: take segment 1's tail off its music CRC, segment 2's pre-roll off
        # its own, and chain the two (the music CRC covers the frames after the Info frame).
        tail = one[end1 : seg1.offsets[-1]]
        crc1 = crc16_shift(seg1.music_crc ^ crc16(tail), -len(tail))
        suffix = end2 - start2
        crc2 = seg2.music_crc ^ crc16_shift(crc16(two[seg2.offsets[0] : start2]), suffix)
        music_crc = crc16_shift(crc1, suffix) ^ crc2
        first_bytes = end1 - start1
        stream_bytes = seg1.info_length + first_bytes + suffix

        lengths = itertools.chain(
            itertools.pairwise(seg1.offsets[: split.split_frame + 1]),
            itertools.pairwise(seg2.offsets[PRE_ROLL_FRAMES:]),
        )
        toc = mp3.xing_toc(seg1.info_length, (end - start for start, end in lengths))
        info = seg1.info_frame(frames, stream_bytes, toc, delay, padding, music_crc)
        with output.open("wb") as out:
            out.write(one[: seg1.start])
            out.write(info)
            _copy(one, start1, end1, out)
            _copy(two, start2, end2, out)


@contextlib.contextmanager
def _mapped(file: BinaryIO) -> Iterator[mmap.mmap]:
    mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        yield mapped
    finally:
        mapped.close()


def _copy(source: mmap.mmap, start: int, end: int, out: BinaryIO) -> None:
    for position in range(start, end, _SPOOL_FLUSH_BYTES):
        out.write(source[position : min(end, position + _SPOOL_FLUSH_BYTES)])


@dataclass(frozen=True, slots=True)
class _Segment:
    data: mmap.mmap
    start: int  # the Info frame's offset (after an ID3v2 tag)
    info: mp3.Mp3Info
    info_length: int
    lame_offset: int  # in the Info frame
    offsets: list[int]  # each audio frame's start, then the end of the last

    @property
    def frames(self) -> int:
        return len(self.offsets) - 1

    @property
    def music_crc(self) -> int:
        position = self.start + self.lame_offset + 32
        return int.from_bytes(self.data[position : position + 2], "big")

    @classmethod
    def read(cls, data: mmap.mmap) -> "_Segment":
        start = mp3.id3v2_size(data[:10])
        head = data[: start + mp3.HEAD_BYTES]
        info = mp3.parse(head)
        frame = mp3.parse_frame_header(head[start : start + 4])
        xing = 4 + frame.side_info_bytes
        (flags,) = struct.unpack_from(">I", head, start + xing + 4)
        if flags & (_XING_FRAMES | _XING_BYTES | _XING_TOC) != 7:
            raise mp3.Mp3Error("The Info frame lacks a frame count, byte count or TOC.")
        lame_offset = xing + 8 + 4 + 4 + 100 + (4 if flags & 8 else 0)
        offsets = mp3.cbr_frame_offsets(data, start + frame.length)
        segment = cls(data, start, info, frame.length, lame_offset, offsets)
        music_length = int.from_bytes(
            head[start + lame_offset + 28 : start + lame_offset + 32], "big"
        )
        if len(offsets) - 1 != info.frames or music_length != offsets[-1] - start:
            raise mp3.Mp3Error("The segment's Info frame does not describe its frames.")
        return segment

    def info_frame(
        self, frames: int, stream_bytes: int, toc: bytes, delay: int, padding: int, music_crc: int
    ) -> bytes:
        frame = bytearray(self.data[self.start : self.start + self.info_length])
        xing = 4 + mp3.parse_frame_header(bytes(frame[:4])).side_info_bytes
        struct.pack_into(">II", frame, xing + 8, frames, stream_bytes)
        frame[xing + 16 : xing + 116] = toc
        lame = self.lame_offset
        frame[lame + 21 : lame + 24] = ((delay << 12) | padding).to_bytes(3, "big")
        struct.pack_into(">IH", frame, lame + 28, stream_bytes, music_crc)
        struct.pack_into(">H", frame, lame + 34, mp3.lame_tag_crc(frame, lame))
        return bytes(frame)
