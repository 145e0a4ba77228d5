"""Waveform peaks in the BBC audiowaveform formats: made from PCM as it streams, stored as the
binary ``.dat`` (version 2, 8-bit), served as its JSON (what peaks.js and wavesurfer.js load).

``PeaksBuilder`` keeps the min/max of 16-bit PCM per pixel at the finest resolution that fits
``MAX_STORED_PIXELS`` pixels: it starts at ``MIN_SAMPLES_PER_PIXEL`` (or what the declared length
suggests) and doubles it, merging pixel pairs, whenever the recording turns out longer — so it
needs no length up front (streamed WAVs declare none). ``Peaks.for_pixels`` re-reduces the stored
peaks to the wanted width (min of mins, max of maxes).
8-bit values are the 16-bit ones divided by 256, rounded down (a monotone map: it commutes with
min and max, so storing 8 bits loses nothing the 8-bit JSON could show).
"""

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

# 2^18: four times the widest answer (GET /record/peaks takes up to 2^16 pixels), and 1 MiB
# stereo, so that an hour's peaks cost the services little more memory than a minute's.
MAX_STORED_PIXELS = 1 << 18
# Finer than this is more bytes than any screen shows (and than the MP3 of a short clip).
MIN_SAMPLES_PER_PIXEL = 16
# version, flags, sample rate, samples per pixel, length, channels
_DAT_HEADER = struct.Struct("<iIiiIi")
_FLAG_8_BIT = 1

Int8Array = npt.NDArray[np.int8]
Int16Array = npt.NDArray[np.int16]


class PeaksError(ValueError):
    """Bytes that are not a version 2, 8-bit audiowaveform ``.dat``."""


@dataclass(frozen=True, slots=True)
class Peaks:
    """``data[pixel, channel] = (min, max)``, int8."""

    sample_rate: int
    samples_per_pixel: int
    data: Int8Array  # shape (length, channels, 2)

    @property
    def channels(self) -> int:
        return int(self.data.shape[1])

    @property
    def length(self) -> int:
        return int(self.data.shape[0])

    def to_dat(self) -> bytes:
        header = _DAT_HEADER.pack(
            2, _FLAG_8_BIT, self.sample_rate, self.samples_per_pixel, self.length, self.channels
        )
        return header + self.data.tobytes()

    @classmethod
    def from_dat(cls, raw: bytes) -> "Peaks":
        if len(raw) < _DAT_HEADER.size:
            raise PeaksError("Too short for a waveform header.")
        version, flags, rate, spp, length, channels = _DAT_HEADER.unpack_from(raw)
        if version != 2 or not flags & _FLAG_8_BIT or channels not in (1, 2) or spp < 1:
            raise PeaksError("Not a version 2, 8-bit waveform.")
        if len(raw) != _DAT_HEADER.size + length * channels * 2:
            raise PeaksError("The waveform data does not match its length.")
        data = np.frombuffer(raw, dtype=np.int8, offset=_DAT_HEADER.size)
        return cls(rate, spp, data.reshape(length, channels, 2))

    def for_pixels(self, pixels: int, frames: int | None = None) -> "Peaks":
        """About ``pixels`` pixels of ``round(frames / pixels)`` samples each (never finer than
        stored). Where an edge falls inside a stored pixel, that pixel counts on both sides:
        the envelope may reach a few samples further, never less far."""
        stored = self.samples_per_pixel
        total = min(frames or self.length * stored, self.length * stored)
        spp = max(stored, round(total / max(pixels, 1)))
        if spp == stored or self.length == 0:
            return self
        length = -(-total // spp)
        edges = np.arange(length) * spp
        starts = edges // stored
        low = np.minimum.reduceat(self.data[..., 0], starts, axis=0)
        high = np.maximum.reduceat(self.data[..., 1], starts, axis=0)
        inside = (edges[1:] % stored) != 0  # pixel i + 1 starts inside a stored pixel
        shared = starts[1:][inside]
        before = np.flatnonzero(inside)
        low[before] = np.minimum(low[before], self.data[shared, :, 0])
        high[before] = np.maximum(high[before], self.data[shared, :, 1])
        return Peaks(self.sample_rate, spp, np.stack([low, high], axis=-1))

    def to_json(self) -> dict[str, Any]:
        """The audiowaveform JSON (version 2): ``data`` interleaves min, max per channel."""
        return {
            "version": 2,
            "channels": self.channels,
            "sample_rate": self.sample_rate,
            "samples_per_pixel": self.samples_per_pixel,
            "bits": 8,
            "length": self.length,
            "data": self.data.reshape(-1).tolist(),
        }


def _merge_pairs(data: Int8Array) -> Int8Array:
    """An even number of pixels merged two by two."""
    shaped = data.reshape(data.shape[0] // 2, 2, *data.shape[1:])
    merged = np.empty((shaped.shape[0], *data.shape[1:]), dtype=data.dtype)
    merged[..., 0] = shaped[..., 0].min(axis=1)
    merged[..., 1] = shaped[..., 1].max(axis=1)
    return merged


class PeaksBuilder:
    """Min/max per pixel of interleaved signed 16-bit PCM, fed in pieces of any size.

    Pixel ``i`` covers frames ``[i * spp, (i + 1) * spp)``; the unfinished pixel after the
    stored ones is kept as its min, max and frame count.
    """

    def __init__(self, channels: int, sample_rate: int, expected_frames: int | None = None):
        self.channels = channels
        self.sample_rate = sample_rate
        wanted = -(-(expected_frames or 0) // MAX_STORED_PIXELS)
        self.samples_per_pixel = max(MIN_SAMPLES_PER_PIXEL, wanted)
        self.frames = 0
        # Stored as the 8-bit values already (min and max commute with the map): 1 MiB at most.
        self._pixels = np.empty((MAX_STORED_PIXELS, channels, 2), dtype=np.int8)
        self._length = 0
        self._partial = np.empty((channels, 2), dtype=np.int16)
        self._partial_frames = 0
        self._odd = b""  # bytes of an unfinished frame

    def feed(self, pcm: bytes) -> None:
        """Take the next bytes of PCM (CPU work: call it from a worker thread)."""
        raw = self._odd + pcm
        whole = len(raw) - len(raw) % (2 * self.channels)
        self._odd = raw[whole:]
        frames: Int16Array = np.frombuffer(raw[:whole], dtype="<i2").reshape(-1, self.channels)
        self.frames += len(frames)
        while self._length + (self._partial_frames + len(frames)) // self.samples_per_pixel > (
            MAX_STORED_PIXELS
        ):
            self._coarsen()
        spp = self.samples_per_pixel
        if self._partial_frames and len(frames):
            need = min(spp - self._partial_frames, len(frames))
            self._absorb(frames[:need])
            frames = frames[need:]
            if self._partial_frames == spp:
                self._store(self._partial[None])
                self._partial_frames = 0
        full = len(frames) - len(frames) % spp
        if full:
            # Channel-major first: numpy reduces a contiguous last axis several times faster.
            blocks = np.ascontiguousarray(frames[:full].T).reshape(self.channels, -1, spp)
            self._store(np.stack([blocks.min(axis=2).T, blocks.max(axis=2).T], axis=-1))
        if full < len(frames):
            self._absorb(frames[full:])

    def _absorb(self, frames: Int16Array) -> None:
        """Add frames to the unfinished pixel."""
        low, high = frames.min(axis=0), frames.max(axis=0)
        if self._partial_frames:
            low = np.minimum(low, self._partial[:, 0])
            high = np.maximum(high, self._partial[:, 1])
        self._partial[:, 0], self._partial[:, 1] = low, high
        self._partial_frames += len(frames)

    def _store(self, pixels: Int16Array) -> None:
        # Floor division by 256 maps int16 onto int8, monotonically.
        self._pixels[self._length : self._length + len(pixels)] = (pixels >> 8).astype(np.int8)
        self._length += len(pixels)

    def _coarsen(self) -> None:
        """Twice the samples per pixel: stored pixels merge in pairs; an odd last one becomes
        the first half of the unfinished pixel (which held fewer than the old spp frames)."""
        length, spp = self._length, self.samples_per_pixel
        if length % 2:
            # Back to 16 bits: v << 8 maps back onto v, so min and max with it stay exact.
            last = self._pixels[length - 1].astype(np.int16) << 8
            if self._partial_frames:
                last[:, 0] = np.minimum(last[:, 0], self._partial[:, 0])
                last[:, 1] = np.maximum(last[:, 1], self._partial[:, 1])
            self._partial[:] = last
            self._partial_frames += spp
        pairs = length // 2
        self._pixels[:pairs] = _merge_pairs(self._pixels[: pairs * 2])
        self._length = pairs
        self.samples_per_pixel = spp * 2

    def finish(self) -> Peaks:
        """The peaks of everything fed; a last, shorter pixel holds the remaining frames."""
        if self._partial_frames:
            if self._length == MAX_STORED_PIXELS:
                self._coarsen()
            if self._partial_frames:
                self._store(self._partial[None].copy())
                self._partial_frames = 0
        return Peaks(self.sample_rate, self.samples_per_pixel, self._pixels[: self._length])
