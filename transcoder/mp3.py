"""MP3 facts from the start of a file: the first frame's Xing/Info header and its LAME tag.

The exact sample count is ``frames * samples_per_frame - encoder_delay - padding``, where
``frames`` (Xing) counts the audio frames after the Info frame itself; this equals the number of
samples ffmpeg's decoder yields (checked in tests/transcoder/test_mp3.py against real decodes).
"""

import dataclasses
import os
import struct
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO

from transcoder.crc16 import crc16

HEAD_BYTES = 8192  # enough for the Info frame and the first audio frame behind a small ID3 tag

_BITRATES_KBPS = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1 layer III
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2/2.5 layer III
}
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
SAMPLE_RATES = tuple(sorted(rate for rates in _SAMPLE_RATES.values() for rate in rates))
_XING_FRAMES, _XING_BYTES, _XING_TOC, _XING_QUALITY = 1, 2, 4, 8
_LAME_TAG_BYTES = 36
ANONYMOUS_ENCODER = b"LAME" + bytes(5)
_LAME_CRC_COVERS = 190
TOC_BAGS = 400
XING_FLAGS = _XING_FRAMES | _XING_BYTES | _XING_TOC | _XING_QUALITY


class FileBytes:
    """A file's bytes read on demand: ``len`` and slices, as ``bytes`` has them, through
    ``os.pread``. A long segment is walked without holding it: unlike an ``mmap``, the pages
    read stay in the page cache, not in this process's resident memory. Small slices come from
    one cached window, so walking frame headers costs a read per ``window`` bytes."""

    def __init__(self, file: IO[bytes], window: int = 1024 * 1024) -> None:
        self._fd = file.fileno()
        self._size = os.fstat(self._fd).st_size
        self._window = window
        self._cached_at, self._cached = 0, b""

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, span: slice) -> bytes:
        start, stop, step = span.indices(self._size)
        if step != 1:
            raise ValueError("FileBytes slices have no step.")
        if stop <= start:
            return b""
        if stop - start > self._window:
            return os.pread(self._fd, stop - start, start)
        if not (self._cached_at <= start and stop <= self._cached_at + len(self._cached)):
            self._cached_at, self._cached = start, os.pread(self._fd, self._window, start)
        return self._cached[start - self._cached_at : stop - self._cached_at]


Buffer = bytes | bytearray | FileBytes


class Mp3Error(ValueError):
    """The bytes are not an MP3 that starts with a Xing/Info frame carrying a LAME tag."""


@dataclass(frozen=True, slots=True)
class FrameHeader:
    mpeg_version: int  # 1, 2, or 25 (MPEG-2.5)
    sample_rate: int
    bitrate: int  # bits/s
    channels: int
    padded: bool

    @property
    def samples_per_frame(self) -> int:
        return 1152 if self.mpeg_version == 1 else 576

    @property
    def length(self) -> int:
        """Bytes in the frame, header included."""
        return self.samples_per_frame // 8 * self.bitrate // self.sample_rate + self.padded

    @property
    def side_info_bytes(self) -> int:
        if self.mpeg_version == 1:
            return 17 if self.channels == 1 else 32
        return 9 if self.channels == 1 else 17


@dataclass(frozen=True, slots=True)
class Mp3Info:
    sample_rate: int
    channels: int
    bitrate: int  # bits/s: the stream's for CBR ("Info"), the average for VBR ("Xing")
    frames: int  # audio frames, not counting the Info frame
    samples_per_frame: int
    encoder_delay: int
    padding: int
    encoder: str  # the LAME tag's 9-byte version string, e.g. "Lavc61.3." or "LAME3.100"

    @property
    def sample_count(self) -> int:
        """Samples per channel a gapless decoder yields."""
        return self.frames * self.samples_per_frame - self.encoder_delay - self.padding

    @property
    def duration_seconds(self) -> float:
        return self.sample_count / self.sample_rate


def parse_frame_header(header: bytes) -> FrameHeader:
    """Decode a 4-byte layer III frame header."""
    if len(header) < 4:
        raise Mp3Error("Too short for a frame header.")
    b1, b2, b3 = header[1], header[2], header[3]
    if header[0] != 0xFF or b1 & 0xE0 != 0xE0:
        raise Mp3Error("No frame sync.")
    version_bits = (b1 >> 3) & 3
    if version_bits == 1:
        raise Mp3Error("Reserved MPEG version.")
    if (b1 >> 1) & 3 != 1:
        raise Mp3Error("Not layer III.")
    bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 3
    if bitrate_index in (0, 15) or rate_index == 3:
        raise Mp3Error("Free-format or invalid bitrate or sample rate.")
    version = {3: 1, 2: 2, 0: 25}[version_bits]
    return FrameHeader(
        mpeg_version=version,
        sample_rate=_SAMPLE_RATES[version_bits][rate_index],
        bitrate=_BITRATES_KBPS[1 if version == 1 else 2][bitrate_index] * 1000,
        channels=1 if b3 >> 6 == 3 else 2,
        padded=bool((b2 >> 1) & 1),
    )


def id3v2_size(head: bytes) -> int:
    """Bytes taken by a leading ID3v2 tag (0 if none)."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    size_bytes = head[6:10]
    if any(b & 0x80 for b in size_bytes):
        raise Mp3Error("Malformed ID3v2 size.")
    size = (size_bytes[0] << 21) | (size_bytes[1] << 14) | (size_bytes[2] << 7) | size_bytes[3]
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


def parse(head: bytes) -> Mp3Info:
    """Parse the start of an MP3 file (at least through its first audio frame's header)."""
    start = id3v2_size(head)
    frame = parse_frame_header(head[start : start + 4])
    xing = start + 4 + frame.side_info_bytes
    tag = head[xing : xing + 4]
    if tag not in (b"Xing", b"Info"):
        raise Mp3Error("The first frame carries no Xing/Info header.")
    if len(head) < xing + 8:
        raise Mp3Error("Truncated Xing header.")
    (flags,) = struct.unpack_from(">I", head, xing + 4)
    if not flags & _XING_FRAMES:
        raise Mp3Error("The Xing header has no frame count.")
    position = xing + 8
    if len(head) < position + 4:
        raise Mp3Error("Truncated Xing header.")
    (frames,) = struct.unpack_from(">I", head, position)
    position += 4
    stream_bytes: int | None = None
    if flags & _XING_BYTES:
        if len(head) < position + 4:
            raise Mp3Error("Truncated Xing header.")
        (stream_bytes,) = struct.unpack_from(">I", head, position)
        position += 4
    position += (100 if flags & _XING_TOC else 0) + (4 if flags & _XING_QUALITY else 0)
    lame = head[position : position + _LAME_TAG_BYTES]
    if position + _LAME_TAG_BYTES > start + frame.length:
        raise Mp3Error("The LAME tag does not fit in the first frame.")
    if len(lame) < _LAME_TAG_BYTES or len(head) < start + _LAME_CRC_COVERS:
        raise Mp3Error("No LAME tag after the Xing header.")
    if not _tag_crc_matches(head[start : start + frame.length], position - start):
        raise Mp3Error("No valid LAME tag (CRC mismatch).")
    delay_padding = int.from_bytes(lame[21:24], "big")
    info = Mp3Info(
        sample_rate=frame.sample_rate,
        channels=frame.channels,
        bitrate=frame.bitrate,
        frames=frames,
        samples_per_frame=frame.samples_per_frame,
        encoder_delay=delay_padding >> 12,
        padding=delay_padding & 0xFFF,
        encoder=lame[:9].decode("latin-1"),
    )
    return _with_stream_bitrate(info, head, start + frame.length, tag, stream_bytes)


def _with_stream_bitrate(
    info: Mp3Info, head: bytes, next_frame: int, tag: bytes, stream_bytes: int | None
) -> Mp3Info:
    """The Info frame's own bitrate is whatever fits the tag: take the stream's instead."""
    if tag == b"Xing" and stream_bytes and info.frames:
        seconds = info.frames * info.samples_per_frame / info.sample_rate
        bitrate = round(stream_bytes * 8 / seconds / 1000) * 1000
    elif info.frames:
        bitrate = parse_frame_header(head[next_frame : next_frame + 4]).bitrate
    else:
        return info
    return dataclasses.replace(info, bitrate=bitrate)


def lame_tag_crc(frame: bytes | bytearray, lame_offset: int) -> int:
    """The tag CRC: over the Info frame's first 190 bytes, its own field as zeros. A frame
    shorter than that (a low-rate VBR Info frame can be 182 bytes) counts as zero-padded, as
    ffmpeg's muxer computes it."""
    covered = bytearray(frame[:_LAME_CRC_COVERS])
    covered += bytes(_LAME_CRC_COVERS - len(covered))
    crc_offset = lame_offset + _LAME_TAG_BYTES - 2
    covered[crc_offset : crc_offset + 2] = bytes(len(covered[crc_offset : crc_offset + 2]))
    return crc16(bytes(covered))


def _tag_crc_matches(frame: bytes, lame_offset: int) -> bool:
    crc_offset = lame_offset + _LAME_TAG_BYTES - 2
    stored = frame[crc_offset : crc_offset + 2]
    return lame_tag_crc(frame, lame_offset) == int.from_bytes(stored, "big")


def lame_tag_offset(frame: bytes | bytearray) -> int:
    """Where the LAME tag starts in an Info frame (which starts at ``frame[0]``)."""
    header = parse_frame_header(bytes(frame[:4]))
    xing = 4 + header.side_info_bytes
    (flags,) = struct.unpack_from(">I", frame, xing + 4)
    return (
        xing
        + 8
        + (4 if flags & _XING_FRAMES else 0)
        + (4 if flags & _XING_BYTES else 0)
        + (100 if flags & _XING_TOC else 0)
        + (4 if flags & _XING_QUALITY else 0)
    )


def without_encoder_version(frame: bytes | bytearray) -> bytes:
    """The Info frame with the LAME tag's encoder version string (ffmpeg writes ``Lavc61.3.``
    or ``Lavf``) replaced by ``LAME`` and NULs, its CRC made right. Decoders (ffmpeg among them)
    honour the delay and padding only behind a ``LAME``/``Lavf``/``Lavc`` prefix."""
    edited = bytearray(frame)
    lame = lame_tag_offset(edited)
    edited[lame : lame + 9] = ANONYMOUS_ENCODER
    crc = lame_tag_crc(edited, lame)
    crc_offset = lame + _LAME_TAG_BYTES - 2
    edited[crc_offset : crc_offset + 2] = crc.to_bytes(2, "big")
    return bytes(edited)


def xing_toc(info_length: int, frame_lengths: Iterable[int]) -> bytes:
    """The Xing TOC as ffmpeg's mp3 muxer builds it: the stream size after every ``want``-th
    frame in 400 slots (halved, and ``want`` doubled, whenever they fill up)."""
    bags: list[int] = []
    size, want, seen = info_length, 1, 0
    for length in frame_lengths:
        size += length
        seen += 1
        if seen == want:
            bags.append(size)
            if len(bags) == TOC_BAGS:
                bags = bags[1::2]
                want *= 2
            seen = 0
    if not bags:
        return bytes(100)
    points = (256 * bags[i * len(bags) // 100] // size for i in range(1, 100))
    return bytes([0, *(min(255, point) for point in points)])


def cbr_frame_offsets(data: Buffer, position: int = 0) -> "array[int]":
    """Where each frame starts, walking constant-bitrate frame headers from ``position`` to
    the end of ``data``; then the end of the last frame. An array of 64-bit offsets: an hour's
    segment has 69,000 frames, 2.5 MB as a list of ints, 0.55 MB here."""
    header = bytes(data[position : position + 4])
    first = parse_frame_header(header)
    unpadded = first.length - first.padded
    fixed = header[:2], header[2] & 0xFD, header[3] & 0xCF
    offsets = array("q")
    end = len(data)
    while position + 4 <= end:
        head = data[position : position + 4]
        if (head[:2], head[2] & 0xFD, head[3] & 0xCF) != fixed:
            raise Mp3Error(f"Not a constant-bitrate frame at byte {position}.")
        offsets.append(position)
        position += unpadded + ((head[2] >> 1) & 1)
    if position != end:
        raise Mp3Error("The stream ends inside a frame.")
    offsets.append(position)
    return offsets


def info_frame_length(first_header: bytes) -> int:
    """Bytes of the Info frame ``cbr_info_frame`` makes for a stream with this first header."""
    return _info_frame_header(first_header)[1]


def _info_frame_header(first_header: bytes) -> tuple[bytes, int]:
    """The Info frame's header: the stream's bitrate, or the next higher one the tag fits in
    (as ffmpeg's muxer picks it); with the frame's length."""
    stream = parse_frame_header(first_header)
    needed = 4 + stream.side_info_bytes + 120 + _LAME_TAG_BYTES
    header = bytearray(first_header[:4])
    header[1] |= 1  # no CRC
    header[2] &= 0xF0 | 0x0C  # bitrate index and sample rate kept; no padding, no private bit
    header[3] &= 0xC0  # the channel mode
    table = _BITRATES_KBPS[1 if stream.mpeg_version == 1 else 2]
    for index in range(header[2] >> 4, 15):
        length = dataclasses.replace(stream, bitrate=table[index] * 1000, padded=False).length
        if length >= needed:
            header[2] = (index << 4) | (header[2] & 0x0F)
            return bytes(header), length
    raise Mp3Error("No bitrate gives an Info frame room for its LAME tag.")


def cbr_info_frame(
    first_header: bytes,
    frame_lengths: Sequence[int],
    *,
    encoder_delay: int,
    padding: int,
    music_crc: int,
) -> bytes:
    """An Info frame (Xing for CBR, with a LAME tag) for the audio frames behind it, laid out as
    ffmpeg's muxer writes it: frame and byte counts, TOC, delay and padding, music length and
    CRC, tag CRC; no encoder version. ``first_header``: the first audio frame's header."""
    if not 0 <= encoder_delay < 4096 or not 0 <= padding < 4096:
        raise Mp3Error(f"Delay {encoder_delay} or padding {padding} does not fit the LAME tag.")
    header, length = _info_frame_header(first_header)
    xing = 4 + parse_frame_header(header).side_info_bytes
    lame = xing + 120
    stream_bytes = length + sum(frame_lengths)
    frame = bytearray(length)
    frame[:4] = header
    frame[xing : xing + 4] = b"Info"
    struct.pack_into(">III", frame, xing + 4, XING_FLAGS, len(frame_lengths), stream_bytes)
    frame[xing + 16 : xing + 116] = xing_toc(length, frame_lengths)
    frame[lame : lame + 9] = ANONYMOUS_ENCODER
    frame[lame + 21 : lame + 24] = ((encoder_delay << 12) | padding).to_bytes(3, "big")
    struct.pack_into(">IH", frame, lame + 28, stream_bytes, music_crc)
    struct.pack_into(">H", frame, lame + 34, lame_tag_crc(frame, lame))
    return bytes(frame)
