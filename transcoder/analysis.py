"""What the encode's own ffmpeg run measures of the input besides the MP3: loudness (ITU-R
BS.1770 via the ``ebur128`` filter, true peak 4x oversampled) and the PCM for waveform peaks.

The filter graph splits the decoded input three ways: the encoder, ``ebur128=peak=true`` (its
summary is logged at the end of the run and parsed here) and 16-bit PCM on ffmpeg's stdout for
``servicekit.peaks``. One read of the input serves all three.
"""

import math
import re
from dataclasses import dataclass

ENCODE_LABEL = "[mp3]"
PEAKS_LABEL = "[wave]"
MEASURED_LABEL = "[measured]"
# ebur128 integrates nothing below its absolute gate: it then reports -70 LUFS.
_ABSOLUTE_GATE_LUFS = -70.0
_INTEGRATED = re.compile(r"Integrated loudness:\s*I:\s*(-?(?:inf|[0-9.]+)) LUFS")
_TRUE_PEAK = re.compile(r"True peak:\s*Peak:\s*(-?(?:inf|[0-9.]+)) dBFS")


@dataclass(frozen=True, slots=True)
class Loudness:
    """``None``: not measurable (silence, or shorter than one 400 ms gating block)."""

    integrated_lufs: float | None
    true_peak_dbtp: float | None

    def as_json(self) -> dict[str, float | None]:
        return {"integrated_lufs": self.integrated_lufs, "true_peak_dbtp": self.true_peak_dbtp}


def filter_graph(encode_end_sample: int | None = None) -> str:
    """The input split three ways; ``encode_end_sample`` ends the encoder's branch early (the
    first segment of a split encode measures the whole input but encodes its part)."""
    split = f"[0:a:0]asplit=3{ENCODE_LABEL if encode_end_sample is None else '[full]'}"
    graph = f"{split}[loud]{PEAKS_LABEL};[loud]ebur128=peak=true:framelog=quiet{MEASURED_LABEL}"
    if encode_end_sample is not None:
        graph += f";[full]atrim=end_sample={encode_end_sample}{ENCODE_LABEL}"
    return graph


def parse_loudness(stderr: str) -> Loudness | None:
    """The ebur128 summary's integrated loudness and true peak; None if it is not there."""
    integrated = _INTEGRATED.search(stderr)
    peak = _TRUE_PEAK.search(stderr)
    if integrated is None or peak is None:
        return None
    lufs = _number(integrated.group(1))
    if lufs is not None and lufs <= _ABSOLUTE_GATE_LUFS:
        lufs = None
    return Loudness(integrated_lufs=lufs, true_peak_dbtp=_number(peak.group(1)))


def _number(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None
