"""What the split-encode tests hold a joined MP3 to, shared by test_parallel (segments on this
process's cores) and test_peers (a segment on another transcoder): deterministic signals, the
decode, the SNR and the check of a join for clicks and errors."""

from __future__ import annotations

import math
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from servicekit import wav
from testkit import wavcorpus
from transcoder import join, parallel

Samples = npt.NDArray[np.float64]
SECONDS = 40
THRESHOLD = 10.0
# lavfi sources ({rate} filled in); deterministic (seeded noise, closed-form expressions).
SIGNALS = {
    "sine": "aevalsrc=0.5*sin(2*PI*1000*t):s={rate}",
    "chirp": "aevalsrc=0.5*sin(2*PI*(50*t+250*t*t)):s={rate}",  # 50 Hz to ~20 kHz over 40 s
    "pink": "anoisesrc=color=pink:seed=7:amplitude=0.5:r={rate}",
    # Music-like: a chord with vibrato and slow swells, harmonics up to 3.5 kHz; smooth, so a
    # click at a join stands out of its sample-to-sample steps.
    "music": "aevalsrc='"
    "0.18*sin(2*PI*220*t+0.8*sin(2*PI*5*t))*(0.7+0.3*sin(2*PI*0.37*t))"
    "+0.12*sin(2*PI*277.2*t)*(0.6+0.4*sin(2*PI*0.23*t+1))"
    "+0.1*sin(2*PI*329.6*t+0.5*sin(2*PI*4*t))"
    "+0.06*sin(2*PI*880*t)*(0.5+0.5*sin(2*PI*0.5*t))"
    "+0.04*sin(2*PI*1760*t+sin(2*PI*6*t))"
    "+0.02*sin(2*PI*3520*t)*(0.5+0.5*sin(2*PI*1.1*t))':s={rate}",
}
NEAR = 64  # samples either side of a join where its click would be
AROUND = parallel.FRAME_SAMPLES  # the surrounding signal: a frame either side
CLICK_RATIO = 1.25  # the largest step near a join against the single pass's there
LOCAL_SNR_MARGIN_DB = 3.0


def signal_wav(name: str, rate: int, channels: int, seconds: float = SECONDS) -> bytes:
    """16-bit PCM of one of ``SIGNALS``, with a header that states its size."""
    raw = subprocess.run(
        [
            *(wavcorpus.ffmpeg_exe(), "-v", "error", "-f", "lavfi"),
            *("-i", SIGNALS[name].format(rate=rate), "-t", str(seconds), "-ac", str(channels)),
            *("-f", "s16le", "-"),
        ],
        capture_output=True,
        check=True,
    ).stdout
    fmt = wavcorpus.fmt_chunk(wavcorpus.WAVE_FORMAT_PCM, channels, rate, 16)
    return wavcorpus.riff(fmt, wavcorpus.chunk(b"data", raw))


async def chunks_of(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def decode(path: Path, channels: int) -> Samples:
    """What ffmpeg decodes from an MP3 file (gapless, by its LAME tag): samples x channels."""
    raw = subprocess.run(
        [wavcorpus.ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "s16le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, "<i2").reshape(-1, channels).astype(np.float64)


def pcm_of(data: bytes, channels: int) -> Samples:
    header = wav.parse_header(data)
    assert header is not None
    audio = data[header.data_offset :]
    return np.frombuffer(audio, "<i2").reshape(-1, channels).astype(np.float64)


def snr_db(original: Samples, decoded: Samples) -> float:
    error = float(np.sum((original - decoded) ** 2))
    return 10 * math.log10(float(np.sum(original**2)) / max(error, 1e-9))


def join_sample(cut: join.Cut) -> int:
    """Where the cut frame's samples start in the decoded audio (the encoder delays by 576)."""
    return cut.frame * parallel.FRAME_SAMPLES - 576


def join_defects(ours: Samples, single: Samples, original: Samples, at: int) -> list[str]:
    """What gives a join at sample ``at`` away: a click, i.e. a sample-to-sample step within
    ``NEAR`` samples well above the single pass's largest there; or an error (against the
    input) over the frames around it well above the single pass's. (On pink noise a step
    hides among the noise's own: there the error shows a wrong join.)"""

    def step(samples: Samples, half: int) -> float:
        return float(np.abs(np.diff(samples[at - half : at + half], axis=0)).max())

    around = slice(at - AROUND, at + AROUND)
    defects = []
    ours_step, reference = step(ours, NEAR), step(single, NEAR)
    if ours_step > CLICK_RATIO * reference + 1:
        defects.append(f"click: step {ours_step:.0f} vs {reference:.0f}")
    ours_snr, single_snr = (
        snr_db(original[around], ours[around]),
        snr_db(original[around], single[around]),
    )
    if ours_snr < single_snr - LOCAL_SNR_MARGIN_DB:
        defects.append(f"error: {ours_snr:.1f} dB near the join vs {single_snr:.1f} dB")
    return defects
