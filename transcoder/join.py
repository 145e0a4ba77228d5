"""Join layer III frame streams that were encoded with the bit reservoir on.

``K`` encoders each encode an overlapping range of the input; segment ``i``'s frame ``m``
covers the samples of global frame ``first_frame + m`` (LAME delays every encode by the same
576 samples, and each range starts on a frame boundary). The joined stream takes segment
``i - 1``'s frames before a cut frame ``J`` and segment ``i``'s frames from ``J`` on.

With the reservoir on, frame ``J``'s main data starts ``main_data_begin`` bytes before its own
payload, in the payload bytes of earlier frames. So at a cut segment ``i``'s ``N_J`` bytes that
precede its frame ``J`` (the start of the main data of ``J`` and later frames) must go where
segment ``i - 1``'s frames before ``J`` left room: the payload bytes between the end of their
main data and frame ``J``'s payload (``F_J``, which is segment ``i - 1``'s own main_data_begin at
``J`` since LAME sets main_data_begin to the reservoir fill). A cut is made at a frame where
``N_J <= F_J``: the ``N_J`` bytes are written into the last ``N_J`` bytes of that room and the
rest of it is zeroed (ancillary data). No side information changes, hence no frame CRC either.

A cut also needs the same block types (long/start/short/stop, per granule and channel) in both
segments' frames ``J - 1`` and ``J``, so that the decoder's overlap-add at the cut joins a
valid window sequence, and at least ``pre_roll`` frames of the later segment before ``J`` (its
encoder warms up on them). Of the frames that qualify, the cut takes the one that leaves the
least room unused. No frame qualifying raises ``JoinError``: the caller encodes in one pass.
"""

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from transcoder import mp3
from transcoder.crc16 import crc16, crc16_shift

FRAME_SAMPLES = 1152  # MPEG-1 layer III
PRE_ROLL_FRAMES = 4  # a later segment's frames before the first cut candidate
TAIL_FRAMES = 4  # an earlier segment's last frames, never kept (the encoder's flush shapes them)
OVERLAP_FRAMES = 24  # frames both neighbours encode: PRE_ROLL + TAIL + the cut candidates
# LAME pads a frame with one byte when its running remainder says so; that pattern repeats
# every 49 frames at 44.1 kHz (1152 * bitrate / 8 mod 44100 is a multiple of 900 for every
# bitrate) and is empty at 32 and 48 kHz. Segments that start on a multiple of 49 frames start
# in phase with a single pass, so the joined stream has a single pass's frame lengths.
PADDING_PERIOD_FRAMES = 49
_COPY_BYTES = 1024 * 1024


class JoinError(ValueError):
    """The segments cannot be joined (no frame qualifies for a cut, or they do not fit)."""


class Buffer(Protocol):
    """Bytes, or a memory map of a segment file."""

    def __getitem__(self, index: slice, /) -> bytes: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Range:
    """Samples ``[start, end)`` of the input: one segment's encode."""

    start: int
    end: int

    @property
    def first_frame(self) -> int:
        return self.start // FRAME_SAMPLES


def segment_ranges(
    samples: int,
    segments: int,
    overlap: int = OVERLAP_FRAMES,
    weights: Sequence[float] | None = None,
) -> list[Range]:
    """Input ranges for ``segments`` encodes of ``samples`` samples: starts on multiples of the
    padding period, each overlapping the one before by ``overlap`` frames (its pre-roll and the
    other's tail); raises ``JoinError`` if the input is too short for that many.

    ``weights`` (one per segment, positive): each segment's share of the input; else equal."""
    frames = -(-samples // FRAME_SAMPLES)
    shares = list(weights) if weights is not None else [1.0] * segments
    if len(shares) != segments or min(shares) <= 0:
        raise ValueError(f"{segments} segments need as many positive weights, not {shares}.")
    bounds = list(itertools.accumulate(shares))
    ranges = [Range(0, samples)]
    for index in range(1, segments):
        ideal = int(frames * bounds[index - 1] / bounds[-1]) - overlap // 2
        first = ideal - ideal % PADDING_PERIOD_FRAMES
        previous = ranges[-1]
        if first - previous.first_frame < 2 * overlap or frames - first < 2 * overlap:
            raise JoinError(f"{samples} samples are too few for {segments} segments.")
        ranges[-1] = Range(previous.start, min(samples, (first + overlap) * FRAME_SAMPLES))
        ranges.append(Range(first * FRAME_SAMPLES, samples))
    return ranges


@dataclass(frozen=True, slots=True)
class SideInfo:
    """What the join reads of a frame's side information."""

    main_data_begin: int  # bytes before this frame's payload where its main data starts
    main_bits: int  # part2_3_length over its granules and channels
    # (window_switching_flag, block_type, mixed_block_flag) per granule and channel
    blocks: tuple[tuple[int, int, int], ...]


def side_info(data: Buffer, offset: int) -> tuple[SideInfo, int]:
    """The side information of the frame at ``offset``, and where its payload starts."""
    frame = mp3.parse_frame_header(data[offset : offset + 4])
    protected = not data[offset + 1 : offset + 2][0] & 1
    start = offset + 4 + (2 if protected else 0)
    bits = _Bits(data[start : start + frame.side_info_bytes])
    mpeg1 = frame.mpeg_version == 1
    channels = frame.channels
    main_data_begin = bits.read(9 if mpeg1 else 8)
    bits.read((5 if channels == 1 else 3) if mpeg1 else (1 if channels == 1 else 2))
    if mpeg1:
        bits.read(4 * channels)  # scfsi
    main_bits = 0
    blocks = []
    for _granule, _channel in itertools.product(range(2 if mpeg1 else 1), range(channels)):
        main_bits += bits.read(12)
        bits.read(9 + 8 + (4 if mpeg1 else 9))  # big_values, global_gain, scalefac_compress
        switching = bits.read(1)
        if switching:
            block_type, mixed = bits.read(2), bits.read(1)
            bits.read(10 + 9)  # table_select x2, subblock_gain x3
        else:
            block_type, mixed = 0, 0
            bits.read(15 + 7)  # table_select x3, region0/1_count
        bits.read(3 if mpeg1 else 2)  # (preflag), scalefac_scale, count1table_select
        blocks.append((switching, block_type, mixed))
    return SideInfo(main_data_begin, main_bits, tuple(blocks)), start + frame.side_info_bytes


class _Bits:
    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._left = 8 * len(data)

    def read(self, count: int) -> int:
        self._left -= count
        if self._left < 0:
            raise mp3.Mp3Error("Truncated side information.")
        return (self._value >> self._left) & ((1 << count) - 1)


@dataclass(frozen=True, slots=True)
class Stream:
    """One segment's frames: ``offsets`` holds each frame's start in ``data``, then the end of
    the last; frame ``m`` covers the samples of global frame ``first_frame + m``."""

    data: Buffer
    offsets: Sequence[int]
    first_frame: int

    @property
    def frames(self) -> int:
        return len(self.offsets) - 1

    @property
    def end_frame(self) -> int:
        """The global frame after the last."""
        return self.first_frame + self.frames


@dataclass(frozen=True, slots=True)
class Patch:
    """Bytes written over ``data[offset : offset + len(replacement)]`` of a piece's stream."""

    offset: int
    replacement: bytes


@dataclass(frozen=True, slots=True)
class Piece:
    """Frames ``[first, end)`` (indices into ``streams[stream]``), with the patches that make
    room for the next piece's reservoir bytes."""

    stream: int
    first: int
    end: int
    patches: tuple[Patch, ...] = ()


@dataclass(frozen=True, slots=True)
class Cut:
    """Where two neighbours meet: the global frame, and the reservoir bytes carried over."""

    frame: int
    carried: int  # N_J: the later segment's bytes before frame J
    room: int  # F_J: what the earlier segment left free before frame J


def plan(
    streams: Sequence[Stream], *, pre_roll: int = PRE_ROLL_FRAMES, tail: int = TAIL_FRAMES
) -> tuple[list[Piece], list[Cut]]:
    """The pieces of the joined stream (each stream's kept frames, in order) and its cuts;
    ``JoinError`` when two neighbours have no frame to cut at."""
    if not streams or streams[0].first_frame != 0:
        raise JoinError("The first segment must start at frame 0.")
    cuts = []
    for earlier, later in itertools.pairwise(streams):
        candidates = range(
            max(later.first_frame + pre_roll, earlier.first_frame + 1),
            earlier.end_frame - tail + 1,
        )
        cuts.append(_cut(earlier, later, candidates))
    pieces = []
    begin = 0
    for index, stream in enumerate(streams):
        end = cuts[index].frame if index < len(cuts) else stream.end_frame
        first, last = begin - stream.first_frame, end - stream.first_frame
        if not 0 <= first < last <= stream.frames:
            raise JoinError("The segments do not overlap as planned.")
        patches: tuple[Patch, ...] = ()
        if index < len(cuts):
            patches = _carry(stream, streams[index + 1], cuts[index])
        pieces.append(Piece(index, first, last, patches))
        begin = end
    return pieces, cuts


@dataclass(frozen=True, slots=True)
class _Window:
    """Side information of a stream's frames ``[first, end)`` (stream indices), with each
    payload's position in the stream's payload bytes counted from frame ``first``."""

    stream: Stream
    first: int
    infos: list[SideInfo]
    payloads: list[int]  # where each frame's payload starts in the data
    positions: list[int]  # each payload's start in the payload bytes, then the end of the last

    @classmethod
    def read(cls, stream: Stream, first: int, end: int) -> "_Window":
        """Global frames ``[first, end)``, as far as the stream has them."""
        first = max(0, first - stream.first_frame)
        end = min(stream.frames, end - stream.first_frame)
        infos, payloads, positions = [], [], [0]
        for m in range(first, end):
            info, payload = side_info(stream.data, stream.offsets[m])
            infos.append(info)
            payloads.append(payload)
            positions.append(positions[-1] + stream.offsets[m + 1] - payload)
        return cls(stream, first, infos, payloads, positions)

    def _index(self, frame: int) -> int:
        index = frame - self.stream.first_frame - self.first
        if not 0 <= index < len(self.positions):
            raise JoinError(f"Frame {frame} is outside the segment.")
        return index

    def info(self, frame: int) -> SideInfo:
        return self.infos[self._index(frame)]

    def position(self, frame: int) -> int:
        return self.positions[self._index(frame)]

    def room(self, frame: int) -> int:
        """Payload bytes before ``frame``'s that no earlier frame uses (main data ends on or
        before the next frame's payload, so frames before the window use none of them)."""
        earlier = self.infos[: self._index(frame)]
        used = max(
            (
                self.positions[m] - i.main_data_begin + -(-i.main_bits // 8)
                for m, i in enumerate(earlier)
            ),
            default=0,
        )
        return self.position(frame) - used

    def need(self, frame: int) -> int:
        """Payload bytes before ``frame``'s where the main data of ``frame`` and later starts."""
        here, index = self.position(frame), self._index(frame)
        starts = (self.positions[m] - info.main_data_begin for m, info in enumerate(self.infos))
        return here - min(itertools.islice(starts, index, None))

    def chunks(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Payload bytes ``[start, end)`` as (data offset, length) runs."""
        for index, payload in enumerate(self.payloads):
            low, high = max(start, self.positions[index]), min(end, self.positions[index + 1])
            if low < high:
                yield payload + low - self.positions[index], high - low


_LOOK_AROUND = 24  # frames of side information read around the candidates (511 bytes back)


def _cut(earlier: Stream, later: Stream, candidates: range) -> Cut:
    if not candidates:
        raise JoinError("The segments overlap too little to be joined.")
    first, last = candidates[0], candidates[-1]
    a = _Window.read(earlier, first - _LOOK_AROUND, last + 1)
    b = _Window.read(later, later.first_frame, last + _LOOK_AROUND)
    best: Cut | None = None
    for frame in candidates:
        if a.info(frame - 1).blocks != b.info(frame - 1).blocks:
            continue
        if a.info(frame).blocks != b.info(frame).blocks:
            continue
        carried, room = b.need(frame), a.room(frame)
        if carried <= room and (best is None or room - carried < best.room - best.carried):
            best = Cut(frame, carried, room)
    if best is None:
        raise JoinError(f"No frame in {first}..{last} qualifies for a cut.")
    return best


def _carry(earlier: Stream, later: Stream, cut: Cut) -> tuple[Patch, ...]:
    """The earlier stream's free payload bytes before the cut: zeros, then the later stream's
    reservoir bytes."""
    frame = cut.frame
    a = _Window.read(earlier, frame - _LOOK_AROUND, frame)
    b = _Window.read(later, frame - _LOOK_AROUND, frame)
    end_a, end_b = a.positions[-1], b.positions[-1]
    carried = b"".join(
        later.data[offset : offset + length]
        for offset, length in b.chunks(end_b - cut.carried, end_b)
    )
    replacement = bytes(cut.room - cut.carried) + carried
    patches = []
    used = 0
    for offset, length in a.chunks(end_a - cut.room, end_a):
        patches.append(Patch(offset, replacement[used : used + length]))
        used += length
    return tuple(patches)


def write(streams: Sequence[Stream], pieces: Iterable[Piece], out: BinaryIO) -> None:
    """Write the pieces' frames, patched, to ``out``."""
    for piece in pieces:
        stream = streams[piece.stream]
        position, end = stream.offsets[piece.first], stream.offsets[piece.end]
        for patch in (*piece.patches, Patch(end, b"")):
            for start in range(position, patch.offset, _COPY_BYTES):
                out.write(stream.data[start : min(patch.offset, start + _COPY_BYTES)])
            out.write(patch.replacement)
            position = patch.offset + len(patch.replacement)


def piece_crc(stream: Stream, piece: Piece, stream_crc: int) -> int:
    """CRC-16 of the piece's bytes as written, from ``stream_crc`` (that of all the stream's
    frames): the bytes around the piece and the patches are read, not the piece."""
    start, end = stream.offsets[piece.first], stream.offsets[piece.end]
    head = crc16(stream.data[stream.offsets[0] : start])
    tail_bytes = stream.data[end : stream.offsets[-1]]
    after = len(tail_bytes)
    # crc(head + piece + tail)
    #   = shift(crc(head), |piece + tail|) ^ shift(crc(piece), |tail|) ^ crc(tail)
    crc = stream_crc ^ crc16_shift(head, end - start + after) ^ crc16(tail_bytes)
    crc = crc16_shift(crc, -after)
    for patch in piece.patches:
        size = len(patch.replacement)
        original = stream.data[patch.offset : patch.offset + size]
        delta = bytes(x ^ y for x, y in zip(original, patch.replacement, strict=True))
        crc ^= crc16_shift(crc16(delta), end - patch.offset - size)
    return crc


def chain_crcs(crcs_and_lengths: Iterable[tuple[int, int]]) -> int:
    """The CRC-16 of consecutive byte runs from each run's CRC and length."""
    crc = 0
    for run_crc, length in crcs_and_lengths:
        crc = crc16_shift(crc, length) ^ run_crc
    return crc
