"""Loudness of 16-bit PCM measured in-process, as it streams: ITU-R BS.1770-4 integrated
loudness (K-weighting, 400 ms blocks every 100 ms, absolute and relative gates) and true peak
(4x oversampled), for the in-process encode path (``transcoder.lame``).

The K-weighting is libebur128's pair of biquads for the input's own rate, applied as their
impulse response (cut where it has decayed below float precision) by FFT convolution, so numpy
does it without a recursive filter. The true peak interpolates with a 48-tap windowed sinc in
four phases, as BS.1770-4 Annex 2 describes; only the 64-sample blocks whose sample peak, times
the filter's largest gain, could beat the peak found so far are interpolated (an exact bound). The
figures agree with ffmpeg's ``ebur128`` (tests/transcoder/test_analysis.py runs both).
"""

import functools
import math
from array import array

import numpy as np
import numpy.typing as npt

from transcoder.analysis import Loudness

Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]

_ABSOLUTE_GATE_LUFS = -70.0
_RELATIVE_GATE_LU = -10.0
_HOPS_PER_BLOCK = 4  # a 400 ms gating block is four 100 ms hops
_IMPULSE_FLOOR = 1e-6  # of the response's peak: what is cut changes the energy by < 1e-9
_MAX_IMPULSE = 1 << 14
_FFT_SIZE = 1 << 13  # larger transforms leave the CPU cache: slower per sample
_PHASES = 4
_TAPS = 48
_PEAK_BLOCK = 64


@functools.lru_cache(maxsize=16)
def _k_weighting(rate: int) -> Float64Array:
    """The impulse response of BS.1770's pre-filter (high shelf) and RLB high-pass at ``rate``."""
    k = math.tan(math.pi * 1681.974450955533 / rate)
    shelf_q, gain_db = 0.7071752369554196, 3.999843853973347
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / shelf_q + k * k
    shelf = (
        (
            (vh + vb * k / shelf_q + k * k) / a0,
            2 * (k * k - vh) / a0,
            (vh - vb * k / shelf_q + k * k) / a0,
        ),
        (2 * (k * k - 1) / a0, (1 - k / shelf_q + k * k) / a0),
    )
    k = math.tan(math.pi * 38.13547087602444 / rate)
    pass_q = 0.5003270373238773
    a0 = 1 + k / pass_q + k * k
    high_pass = ((1.0, -2.0, 1.0), (2 * (k * k - 1) / a0, (1 - k / pass_q + k * k) / a0))
    response = [0.0] * _MAX_IMPULSE
    response[0] = 1.0
    for (b0, b1, b2), (a1, a2) in (shelf, high_pass):
        x1 = x2 = y1 = y2 = 0.0
        for n, x in enumerate(response):
            y = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
            x2, x1, y2, y1 = x1, x, y1, y
            response[n] = y
    values = np.array(response)
    above = np.flatnonzero(np.abs(values) > _IMPULSE_FLOOR * np.abs(values).max())
    return values[: int(above[-1]) + 1]


@functools.lru_cache(maxsize=1)
def _interpolator() -> Float32Array:
    """``[phase, tap]``: the 4x interpolation filter, each phase summing to 1 (unity at DC),
    taps oldest sample first (as ``sliding_window_view`` lays them out)."""
    n = np.arange(_TAPS)
    taps = np.sinc((n - (_TAPS - 1) / 2) / _PHASES) * np.kaiser(_TAPS, 6.0)
    phases = taps.reshape(-1, _PHASES).T  # phase p takes taps p, p + 4, …
    phases = phases / phases.sum(axis=1, keepdims=True)
    return np.ascontiguousarray(phases[:, ::-1], dtype=np.float32)


class LoudnessMeter:
    """Feed interleaved 16-bit PCM (``feed``, from a worker thread), then ``finish``."""

    def __init__(self, sample_rate: int, channels: int) -> None:
        self.rate = sample_rate
        self.channels = channels
        response = _k_weighting(sample_rate)
        self._overlap = len(response) - 1
        self._fft = max(_FFT_SIZE, 1 << (2 * len(response)).bit_length())
        self._step = self._fft - self._overlap
        self._spectrum = np.fft.rfft(response.astype(np.float32), self._fft)
        self._history: Float32Array = np.zeros((channels, self._overlap), np.float32)
        self._pending: list[Float32Array] = []
        self._pending_frames = 0
        self._frames = 0  # frames filtered so far
        self._hop_energy = 0.0
        self._hops = array("d")  # energy per 100 ms: 36,000 an hour, 0.3 MB (1.2 MB as floats)
        self._phases = _interpolator()
        self._peak_gain = float(np.abs(self._phases).sum(axis=1).max())
        self._peak_history: Float32Array = np.zeros((channels, _TAPS // _PHASES - 1), np.float32)
        self._peak = 0.0

    def feed(self, pcm: bytes) -> None:
        """Take whole frames of interleaved little-endian 16-bit PCM."""
        samples = np.frombuffer(pcm, dtype="<i2").reshape(-1, self.channels).T
        audio = samples.astype(np.float32) / 32768.0
        self._true_peak(audio)
        self._pending.append(audio)
        self._pending_frames += audio.shape[1]
        if self._pending_frames >= self._step:
            self._filter(final=False)

    def finish(self) -> Loudness:
        """The figures to 0.1 LU and dB, as ffmpeg's ``ebur128`` reports them on the other path."""
        self._filter(final=True)
        lufs = self._integrated()
        peak = 20 * math.log10(self._peak) if self._peak > 0 else None
        return Loudness(
            integrated_lufs=None if lufs is None else round(lufs, 1),
            true_peak_dbtp=None if peak is None else round(peak, 1),
        )

    def _filter(self, *, final: bool) -> None:
        audio = np.concatenate(self._pending, axis=1) if self._pending else self._history[:, :0]
        usable = audio.shape[1] if final else audio.shape[1] - audio.shape[1] % self._step
        for start in range(0, usable, self._step):
            block = audio[:, start : min(usable, start + self._step)]
            extended = np.concatenate([self._history, block], axis=1)
            filtered = np.fft.irfft(np.fft.rfft(extended, self._fft) * self._spectrum, self._fft)
            self._add_energy(np.square(filtered[:, self._overlap : extended.shape[1]]).sum(axis=0))
            self._history = extended[:, -self._overlap :] if self._overlap else extended[:, :0]
        rest = audio[:, usable:]
        self._pending = [rest] if rest.shape[1] else []
        self._pending_frames = rest.shape[1]

    def _add_energy(self, energy: Float64Array) -> None:
        """Sum ``energy`` (per frame, channels summed) into the 100 ms hops it falls in."""
        start, end = self._frames, self._frames + len(energy)
        self._frames = end
        first_hop = len(self._hops) + 1
        last_hop = end * 10 // self.rate
        bounds = [hop * self.rate // 10 - start for hop in range(first_hop, last_hop + 1)]
        position = 0
        for bound in bounds:
            self._hops.append(self._hop_energy + float(energy[position:bound].sum()))
            self._hop_energy = 0.0
            position = bound
        self._hop_energy += float(energy[position:].sum())

    def _integrated(self) -> float | None:
        hops = np.frombuffer(self._hops, dtype=np.float64)
        if len(hops) < _HOPS_PER_BLOCK:
            return None
        bounds = np.arange(len(hops) + 1) * self.rate // 10
        lengths = np.diff(bounds).astype(np.float64)
        window = np.ones(_HOPS_PER_BLOCK)
        blocks = np.convolve(hops, window, "valid") / np.convolve(lengths, window, "valid")
        with np.errstate(divide="ignore"):
            levels = -0.691 + 10 * np.log10(blocks)
        gated = blocks[levels > _ABSOLUTE_GATE_LUFS]
        if not len(gated):
            return None
        relative = -0.691 + 10 * math.log10(float(gated.mean())) + _RELATIVE_GATE_LU
        kept = blocks[(levels > _ABSOLUTE_GATE_LUFS) & (levels > relative)]
        return -0.691 + 10 * math.log10(float(kept.mean()))

    def _true_peak(self, audio: Float32Array) -> None:
        """The largest of the samples and of their 4x interpolation."""
        taps = self._phases.shape[1]
        extended = np.concatenate([self._peak_history, audio], axis=1)
        self._peak_history = extended[:, extended.shape[1] - (taps - 1) :]
        frames = audio.shape[1]
        if not frames:
            return
        blocks = -(-frames // _PEAK_BLOCK)
        magnitude = np.zeros((self.channels, blocks * _PEAK_BLOCK), np.float32)
        magnitude[:, :frames] = np.abs(audio)
        maxima = magnitude.reshape(self.channels, blocks, _PEAK_BLOCK).max(axis=2)
        self._peak = max(self._peak, float(maxima.max()))
        channel, block = np.nonzero(maxima * self._peak_gain > self._peak)
        if not len(block):
            return
        # Each candidate block with the taps - 1 samples before it, zeros past the end.
        padded = np.zeros((self.channels, blocks * _PEAK_BLOCK + taps - 1), np.float32)
        padded[:, : extended.shape[1]] = extended
        span = block[:, None] * _PEAK_BLOCK + np.arange(_PEAK_BLOCK + taps - 1)
        windows = padded[channel[:, None], span]
        for phase in self._phases:
            interpolated = phase[0] * windows[:, :_PEAK_BLOCK]
            for tap in range(1, taps):
                interpolated += phase[tap] * windows[:, tap : tap + _PEAK_BLOCK]
            interpolated[span[:, :_PEAK_BLOCK] >= frames] = 0.0  # past the end: not audio
            self._peak = max(self._peak, float(np.abs(interpolated).max()))
