"""WAVs that carry metadata (LIST/INFO, BWF bext, iXML) or a measured signal, and ways to read
an MP3's tags back: with mutagen, and as libavformat sees them (ffprobe when installed, else
``ffmpeg -f ffmetadata``, the same demuxer and ID3 reader).

    tagged_wav(seconds, info=..., bext=..., ixml=..., after_data=False)
    info_chunk({b"INAM": b"Title\\0", ...})   bext_chunk(description=..., originator=...)
    ixml_chunk(project=..., scene=..., take=..., note=...)
    lavfi_wav(source, seconds, rate, channels)  # a 16-bit WAV of an ffmpeg lavfi source
    mutagen_tags(path)  probe_tags(path)  ebur128_reference(wav_path)
"""

import json
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from mutagen.id3 import ID3

from testkit import wavcorpus


def info_chunk(entries: Mapping[bytes, bytes]) -> bytes:
    """A LIST/INFO chunk of raw (already encoded, NUL-terminated if wanted) values."""
    body = b"".join(wavcorpus.chunk(key, value) for key, value in entries.items())
    return wavcorpus.chunk(b"LIST", b"INFO" + body)


def bext_chunk(
    *,
    description: bytes = b"",
    originator: bytes = b"",
    date: bytes = b"",
    time: bytes = b"",
    coding_history: bytes = b"A=PCM,F=48000,W=24,M=stereo,T=Recorder\r\n",
) -> bytes:
    """A BWF bext chunk (EBU Tech 3285 v1): fixed fields NUL-padded, then the coding history."""
    fixed = struct.pack(
        "<256s32s32s10s8sQH64s190x",
        description,
        originator,
        b"REF0001",
        date,
        time,
        123456789,  # time reference: must never become a tag
        1,
        b"",
    )
    return wavcorpus.chunk(b"bext", fixed + coding_history)


def ixml_chunk(**fields: str) -> bytes:
    inner = "".join(f"<{name.upper()}>{value}</{name.upper()}>" for name, value in fields.items())
    xml = f'<?xml version="1.0" encoding="UTF-8"?><BWFXML>{inner}</BWFXML>'
    return wavcorpus.chunk(b"iXML", xml.encode())


def tagged_wav(
    seconds: float = 0.5,
    *chunks: bytes,
    rate: int = 44100,
    channels: int = 2,
    after_data: bool = False,
) -> bytes:
    """16-bit PCM with ``chunks`` before ``fmt`` (or after the data, as many recorders write)."""
    data = wavcorpus.chunk(
        b"data", wavcorpus.encode_pcm(wavcorpus.samples(seconds, rate, channels), 16)
    )
    fmt = wavcorpus.fmt_chunk(wavcorpus.WAVE_FORMAT_PCM, channels, rate, 16)
    if after_data:
        return wavcorpus.riff(fmt, data, *chunks)
    return wavcorpus.riff(*chunks, fmt, data)


def lavfi_wav(source: str, seconds: float, rate: int = 48000, channels: int = 2) -> bytes:
    """A 16-bit WAV of an ffmpeg lavfi source expression (e.g. ``sine=f=997``)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "signal.wav"
        subprocess.run(
            [
                *(wavcorpus.ffmpeg_exe(), "-v", "error", "-f", "lavfi"),
                *("-i", f"{source}", "-t", str(seconds), "-ac", str(channels)),
                *("-ar", str(rate), "-c:a", "pcm_s16le", "-map_metadata", "-1"),
                *("-fflags", "+bitexact", "-y", str(out)),
            ],
            check=True,
            timeout=60,
        )
        return out.read_bytes()


def mutagen_tags(path: Path) -> dict[str, list[str]]:
    """Every ID3 frame mutagen finds: frame id (COMM with its language) → text."""
    tag = ID3(path)  # type: ignore[no-untyped-call]
    frames = tag.items()  # type: ignore[no-untyped-call]
    found = {key: [str(text) for text in frame.text] for key, frame in frames}
    if "TDRC" in found:  # mutagen shows a timestamp with a space; the file has the "T"
        found["TDRC"] = [text.replace(" ", "T") for text in found["TDRC"]]
    return found


def probe_tags(path: Path) -> dict[str, str]:
    """The tags libavformat reads from ``path``, lower-cased keys."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe:
        shown = subprocess.run(
            [ffprobe, "-v", "error", "-show_entries", "format_tags", "-of", "json", str(path)],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        tags: dict[str, str] = json.loads(shown).get("format", {}).get("tags", {})
        return {key.lower(): value for key, value in tags.items()}
    printed = subprocess.run(
        # bitexact: the ffmetadata writer adds no "encoder" line of its own.
        [
            *(wavcorpus.ffmpeg_exe(), "-v", "error", "-i", str(path)),
            *("-fflags", "+bitexact", "-f", "ffmetadata", "-"),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    found: dict[str, str] = {}
    for line in printed.splitlines()[1:]:  # the first line is ";FFMETADATA1"
        key, _, value = line.partition("=")
        found[key.lower()] = value.replace("\\=", "=").replace("\\;", ";")
    return found


def ebur128_reference(wav: bytes) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of ffmpeg's ebur128 filter run on its own."""
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "in.wav"
        source.write_bytes(wav)
        log = subprocess.run(
            [
                *(wavcorpus.ffmpeg_exe(), "-nostats", "-hide_banner", "-i", str(source)),
                *("-af", "ebur128=peak=true", "-f", "null", "-"),
            ],
            capture_output=True,
            check=True,
            timeout=120,
        ).stderr.decode()
    summary = log[log.rindex("Summary:") :]
    integrated = re.search(r"I:\s+(-?[0-9.]+) LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[0-9.]+) dBFS", summary)
    assert integrated, summary
    assert peak, summary
    return float(integrated.group(1)), float(peak.group(1))
