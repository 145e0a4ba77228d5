"""Long PCM inputs on several cores: ffmpeg encodes of overlapping segments, joined into one MP3.

``plan`` splits the input into ``SEGMENTS`` ranges (``transcoder.join.segment_ranges``): each
segment after the first starts on a frame boundary ``OVERLAP_FRAMES`` before the previous one
ends. The encodes keep LAME's bit reservoir on, as a single pass does, and
``transcoder.join`` cuts each pair of neighbours at a frame of their overlap where the later
one's reservoir bytes fit in the room the earlier one left (carrying them over), so the joined
stream decodes to every input sample with a single pass's quality (tests/transcoder/
test_parallel.py measures the length, the joins and the SNR). The joined stream gets segment
1's Info frame with the frame count, byte count, TOC, padding, music length, music CRC and tag
CRC of the whole stream.

The body is spooled to an unlinked temporary file as it arrives; each segment's ffmpeg reads
its range from there as soon as the bytes are in, so segment 1 starts with the first bytes.
Segment 1 reads the whole input, not only its part: its ffmpeg also measures loudness and makes
the waveform PCM of everything (``transcoder.analysis``) while its encoder stops at its range's
end (``atrim``), so the split keeps the one-pass analysis. Only CBR is split (the segments'
frames are walked as constant-bitrate frames). Anything unexpected (the data ends early, an
encode fails, no frame to cut at) falls back to the single encode over the spool, which then
answers exactly as it always did.
"""

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import struct
import tempfile
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Sequence,
)
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from servicekit import wav
from transcoder import join as joiner
from transcoder import mp3

logger = logging.getLogger(__name__)

FRAME_SAMPLES = joiner.FRAME_SAMPLES
MPEG1_RATES = (32000, 44100, 48000)
SEGMENTS = 2  # as many encodes as the transcoder's two cores run at once
# The segments run with the single pass's options: the reservoir stays on (transcoder.join).
SEGMENT_OPTIONS: tuple[str, ...] = ()
_CHUNK_BYTES = 256 * 1024
_SPOOL_FLUSH_BYTES = 1024 * 1024
_MAX_RIFF_DATA = 0xFFFFFFFF - 64
_XING_FRAMES, _XING_BYTES, _XING_TOC = 1, 2, 4

R = TypeVar("R")
# (index, WAV header, audio, output path, encode_end_sample): segment 1 (index 0) is given the
# whole input and the sample where its encode ends; the others their own part and None.
RunSegment = Callable[[int, bytes, AsyncIterator[bytes], Path, int | None], Coroutine[Any, Any, R]]
RunSingle = Callable[[bytes, AsyncIterator[bytes]], Awaitable[R]]


def local_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, as ``taskset`` sets it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class Plan:
    header: wav.WavHeader
    samples: int  # per channel, from the header's data size
    ranges: tuple[joiner.Range, ...]  # each segment's input samples


def plan(
    header: wav.WavHeader,
    min_seconds: float | None,
    segments: int | None = None,
    weights: Sequence[float] | None = None,
) -> Plan | None:
    """A split into ``segments`` (else ``SEGMENTS``; ``weights``: their shares, else equal) for
    integer PCM or float input of known size, mono or stereo, at an MPEG-1 rate (no
    resampling), at least ``min_seconds`` long; None for everything else."""
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
    if samples < min_seconds * header.sample_rate:
        return None
    try:
        ranges = joiner.segment_ranges(samples, segments or SEGMENTS, weights=weights)
    except joiner.JoinError:
        return None
    largest = max(r.end - r.start for r in ranges) * header.block_align
    return Plan(header, samples, tuple(ranges)) if largest <= _MAX_RIFF_DATA else None


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
    """Encode the segments at once and join them into ``output``; returns segment 1's result.

    ``run_segment(index, header, body, path, end_sample)`` encodes segment ``index``'s WAV
    with ``SEGMENT_OPTIONS`` to ``path`` (up to ``end_sample`` when given);
    ``run_single(header, body)`` is the usual single encode to ``output`` (the fallback, whose
    result is returned then). The first segment to fail ends the others."""
    header = split.header
    assert header.data_size is not None
    block = header.block_align
    directory = output.parent
    with contextlib.ExitStack() as files:
        spool = Spool(files.enter_context(tempfile.TemporaryFile(dir=directory)), header.data_size)
        paths = [files.enter_context(_temporary(directory)) for _ in split.ranges]
        filling = asyncio.create_task(spool.fill(buffered[header.data_offset :], body))
        first = split.ranges[0]
        segments = [
            asyncio.create_task(
                run_segment(
                    0,
                    segment_header(header, split.samples),
                    spool.read(0, split.samples * block),
                    paths[0],
                    first.end,
                )
            )
        ]
        segments += [
            asyncio.create_task(
                run_segment(
                    index,
                    segment_header(header, part.end - part.start),
                    spool.read(part.start * block, part.end * block),
                    path,
                    None,
                )
            )
            for index, (part, path) in enumerate(
                zip(split.ranges[1:], paths[1:], strict=True), start=1
            )
        ]
        try:
            await filling
            complete = spool.size >= split.samples * block
            # The first failure ends the others: the fallback need not wait for them.
            await asyncio.wait(segments, return_when=asyncio.FIRST_EXCEPTION)
            failures = [
                error
                for task in segments
                if task.done() and not task.cancelled() and (error := task.exception())
            ]
            if complete and not failures:
                try:
                    await asyncio.to_thread(join, split, paths, output)
                except (ValueError, OSError, IndexError, struct.error) as error:
                    logger.warning("cannot join the segments (%s): encoding in one pass", error)
                else:
                    return segments[0].result()
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


def join(split: Plan, segments: Sequence[Path], output: Path) -> list[joiner.Cut]:
    """Join the segment files into ``output``, behind segment 1's ID3 tag and an Info frame
    that describes the joined stream; returns the cuts (``joiner.JoinError`` if there are
    none to make)."""
    with contextlib.ExitStack() as stack:
        parsed = [
            _Segment.read(mp3.FileBytes(stack.enter_context(path.open("rb")))) for path in segments
        ]
        seg1 = parsed[0]
        delay = seg1.info.encoder_delay
        if any(segment.info.encoder_delay != delay for segment in parsed):
            raise mp3.Mp3Error("The segments' encoder delays differ.")
        if seg1.info.samples_per_frame != FRAME_SAMPLES:
            raise mp3.Mp3Error("The segments are not MPEG-1 layer III.")
        streams = [
            joiner.Stream(segment.data, segment.offsets, part.first_frame)
            for segment, part in zip(parsed, split.ranges, strict=True)
        ]
        pieces, cuts = joiner.plan(streams)
        frames = sum(piece.end - piece.first for piece in pieces)
        padding = frames * FRAME_SAMPLES - delay - split.samples
        if not 0 <= padding < 4096:
            raise mp3.Mp3Error(f"Padding {padding} does not fit the LAME tag.")
        # CRCs are linear: each piece's comes from its segment's music CRC (which covers the
        # frames after the Info frame) and the bytes around and patched in it.
        runs = [
            (
                joiner.piece_crc(streams[piece.stream], piece, parsed[piece.stream].music_crc),
                streams[piece.stream].offsets[piece.end]
                - streams[piece.stream].offsets[piece.first],
            )
            for piece in pieces
        ]
        music_crc = joiner.chain_crcs(runs)
        stream_bytes = seg1.info_length + sum(length for _, length in runs)
        lengths = (
            end - start
            for piece in pieces
            for start, end in itertools.pairwise(
                streams[piece.stream].offsets[piece.first : piece.end + 1]
            )
        )
        toc = mp3.xing_toc(seg1.info_length, lengths)
        info = seg1.info_frame(frames, stream_bytes, toc, delay, padding, music_crc)
        with output.open("wb") as out:
            out.write(seg1.data[: seg1.start])
            out.write(info)
            joiner.write(streams, pieces, out)
        return cuts


@dataclass(frozen=True, slots=True)
class _Segment:
    data: mp3.FileBytes
    start: int  # the Info frame's offset (after an ID3v2 tag)
    info: mp3.Mp3Info
    info_length: int
    lame_offset: int  # in the Info frame
    offsets: Sequence[int]  # each audio frame's start, then the end of the last

    @property
    def frames(self) -> int:
        return len(self.offsets) - 1

    @property
    def music_crc(self) -> int:
        position = self.start + self.lame_offset + 32
        return int.from_bytes(self.data[position : position + 2], "big")

    @classmethod
    def read(cls, data: mp3.FileBytes) -> "_Segment":
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
