"""The transcoder's answer as both services read it.

Asked with ``Accept: multipart/mixed``, ``POST /transcode`` answers three parts, in this order:
the facts (``application/json``, ``AudioFacts``), the waveform peaks (``PEAKS_TYPE``: an
audiowaveform ``.dat``, version 2, 8-bit) and the MP3 (``audio/mpeg``). Otherwise the body is the
MP3 alone and the facts are ``X-Audio-*`` headers (as before, for scripts and benchmarks).
"""

import json
import math
from dataclasses import dataclass, field
from typing import Any

from servicekit.audio_options import Mode

MULTIPART_MIXED = "multipart/mixed"
FACTS_TYPE = "application/json"
PEAKS_TYPE = "application/vnd.audiowaveform.dat"
MP3_TYPE = "audio/mpeg"


@dataclass(frozen=True, slots=True)
class AudioFacts:
    """What the transcoder knows of the MP3 it made and of the input it read."""

    duration_seconds: float
    channels: int
    sample_rate: int
    bitrate: int  # bits/s, as the stream's frames say (the average for VBR)
    bitrate_kbps: int  # the nominal CBR rate; the average for VBR
    mode: Mode
    tags: dict[str, str] = field(default_factory=dict)
    integrated_lufs: float | None = None
    true_peak_dbtp: float | None = None

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "duration_seconds": self.duration_seconds,
                "channels": self.channels,
                "sample_rate": self.sample_rate,
                "bitrate": self.bitrate,
                "bitrate_kbps": self.bitrate_kbps,
                "mode": self.mode,
                "tags": self.tags,
                "loudness": {
                    "integrated_lufs": self.integrated_lufs,
                    "true_peak_dbtp": self.true_peak_dbtp,
                },
            }
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "AudioFacts":
        """Raises ``ValueError`` for anything but what ``to_json`` writes."""
        document = json.loads(raw)
        loudness = document["loudness"]
        tags = document["tags"]
        if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
        ):
            raise ValueError("tags must be an object of strings")
        mode = document["mode"]
        if mode not in ("cbr", "vbr"):
            raise ValueError(f"unknown mode {mode!r}")
        return cls(
            duration_seconds=_number(document["duration_seconds"]),
            channels=int(document["channels"]),
            sample_rate=int(document["sample_rate"]),
            bitrate=int(document["bitrate"]),
            bitrate_kbps=int(document["bitrate_kbps"]),
            mode=mode,
            tags=tags,
            integrated_lufs=_optional(loudness["integrated_lufs"]),
            true_peak_dbtp=_optional(loudness["true_peak_dbtp"]),
        )


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def _optional(value: Any) -> float | None:
    return None if value is None else _number(value)


def part_head(boundary: str, content_type: str, *, first: bool = False) -> bytes:
    """The delimiter and headers that open a part."""
    return (
        ("" if first else "\r\n") + f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n"
    ).encode()


def closing(boundary: str) -> bytes:
    return f"\r\n--{boundary}--\r\n".encode()
