"""What the MP3 says about itself, written after the encode: ID3v2.4 tags (mutagen) from the
request's fields, else the WAV's chunks; no encoder or library version string anywhere.

ffmpeg writes no metadata of its own (``-map_metadata -1``, ``-id3v2_version 0``, bitexact), and
the LAME tag's version string is replaced (``mp3.without_encoder_version``), so the same bytes
come out whichever encode path ran.
"""

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

from mutagen.id3 import COMM, ID3, TALB, TCON, TDRC, TIT2, TPE1, TRCK, Encoding, Frame

from servicekit import wav, wavtags
from transcoder import mp3

MAX_TRAILING_BYTES = 1024 * 1024  # chunks after the audio that are kept for their metadata
_TIMESTAMP = re.compile(r"\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2})?)?)?)?)?")
_TRACK = re.compile(r"\d{1,4}(/\d{1,4})?")


class TrailingChunks:
    """The body as it streams past, keeping the bytes after the ``data`` chunk (where recorders
    often put LIST/bext/iXML), at most ``MAX_TRAILING_BYTES`` of them."""

    def __init__(self, header: wav.WavHeader, buffered: bytes, body: AsyncIterator[bytes]):
        self._end = (
            None
            if header.data_size is None
            else header.data_offset + header.data_size + header.data_size % 2
        )
        self._position = 0
        self.tail = bytearray()
        self._take(buffered)
        self._body = body

    def _take(self, chunk: bytes) -> None:
        start = self._position
        self._position += len(chunk)
        if self._end is None or self._position <= self._end:
            return
        room = MAX_TRAILING_BYTES - len(self.tail)
        if room > 0:
            self.tail += chunk[max(0, self._end - start) :][:room]

    async def stream(self) -> AsyncIterator[bytes]:
        async for chunk in self._body:
            self._take(chunk)
            yield chunk


def wav_tags(header_bytes: bytes, header: wav.WavHeader, trailing: bytes) -> dict[str, str]:
    """The tags of the metadata chunks before and after the audio (``servicekit.wavtags``)."""
    metadata = wavtags.WavMetadata()
    wavtags.chunks_before_data(header_bytes, header.data_offset, metadata)
    wavtags.chunks_from(trailing, metadata)
    return wavtags.tags_from_chunks(metadata)


def writable(tags: dict[str, str]) -> dict[str, str]:
    """The tags ID3v2.4 can carry as they are: a date must be an ID3 timestamp (yyyy-MM-ddTHH:mm:ss
    or a prefix of it), a track a number or ``n/total``; others are dropped."""
    kept = dict(tags)
    if "date" in kept:
        date = _TIMESTAMP.match(kept["date"].replace(" ", "T", 1))
        if date:
            kept["date"] = date.group(0)
        else:
            del kept["date"]
    if "track" in kept and not _TRACK.fullmatch(kept["track"]):
        del kept["track"]
    return kept


def finish_mp3(path: Path, tags: dict[str, str]) -> None:
    """Replace the LAME tag's version string, then write ``tags`` as ID3v2.4 (blocking I/O)."""
    descriptor = os.open(path, os.O_RDWR)
    try:
        head = os.pread(descriptor, mp3.HEAD_BYTES, 0)
        start = mp3.id3v2_size(head[:10])
        length = mp3.parse_frame_header(head[start : start + 4]).length
        frame = mp3.without_encoder_version(head[start : start + length])
        os.pwrite(descriptor, frame, start)
    finally:
        os.close(descriptor)
    if not tags:
        return
    id3 = ID3()
    for id3_frame in id3_frames(tags):
        id3.add(id3_frame)
    id3.save(path, v1=0, v2_version=4, padding=lambda info: 0)


def id3_frames(tags: dict[str, str]) -> list[Frame]:
    utf8 = Encoding.UTF8
    frames: list[Frame] = []
    simple = {"title": TIT2, "artist": TPE1, "album": TALB, "genre": TCON, "track": TRCK}
    for name, frame_class in simple.items():
        if name in tags:
            frames.append(frame_class(encoding=utf8, text=[tags[name]]))
    if "date" in tags:
        frames.append(TDRC(encoding=utf8, text=[tags["date"]]))
    if "comment" in tags:
        frames.append(COMM(encoding=utf8, lang="und", desc="", text=[tags["comment"]]))
    return frames
