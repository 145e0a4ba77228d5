"""The benchmark's inputs: stereo 44.1 kHz 16-bit WAV files of any length, written in seconds.

The signal is music-like enough for LAME to work as it does on real audio (two detuned tones per
channel, a slow tremolo and a little noise), built as one second of frames and repeated.
"""

import array
import math
import random
import struct
import sys
from pathlib import Path

RATE = 44100
CHANNELS = 2
BITS = 16


def one_second(seed: int = 5) -> bytes:
    """One second of interleaved stereo frames that joins onto itself without a click."""
    noise = random.Random(seed)  # noqa: S311 (a signal, not a secret)
    frames = array.array("h", bytes(2 * RATE * CHANNELS))
    for i in range(RATE):
        t = i / RATE
        tremolo = 0.75 + 0.25 * math.sin(2 * math.pi * 2 * t)
        left = math.sin(2 * math.pi * 220 * t) + 0.5 * math.sin(2 * math.pi * 331 * t)
        right = math.sin(2 * math.pi * 277 * t) + 0.5 * math.sin(2 * math.pi * 412 * t)
        frames[2 * i] = round(9000 * tremolo * left + noise.gauss(0, 300))
        frames[2 * i + 1] = round(9000 * tremolo * right + noise.gauss(0, 300))
    if sys.byteorder != "little":
        frames.byteswap()
    return frames.tobytes()


def header(data_bytes: int) -> bytes:
    block_align = CHANNELS * BITS // 8
    fmt = struct.pack("<HHIIHH", 1, CHANNELS, RATE, RATE * block_align, block_align, BITS)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + data_bytes)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def write_wav(path: Path, seconds: float) -> Path:
    """Write ``seconds`` of audio to ``path`` (once: an existing file of the right size is kept)."""
    frames = round(seconds * RATE)
    data_bytes = frames * CHANNELS * BITS // 8
    size = len(header(data_bytes)) + data_bytes
    if path.exists() and path.stat().st_size == size:
        return path
    second = one_second()
    with path.open("wb") as out:
        out.write(header(data_bytes))
        remaining = data_bytes
        while remaining > 0:
            piece = second[:remaining]
            out.write(piece)
            remaining -= len(piece)
    return path
