"""WAV files for tests: deterministic, short, built in memory.

Good inputs (every one decodes, and an MP3 of ``Case.seconds`` and ``Case.channels`` is expected):

    pcm(seconds, rate=44100, channels=2, bits=16)   # integer PCM, 8 (unsigned), 16, 24 or 32 bits
    ieee_float(seconds, rate, channels, bits=32)    # IEEE float, 32 or 64 bits
    extensible(seconds, rate, channels, bits=16, is_float=False, channel_mask=None)
    rf64(seconds, rate, channels, bits=16)          # RF64 with a ds64 chunk
    list_before_fmt(seconds, ...)                   # a LIST/INFO chunk before ``fmt ``
    odd_chunk_before_data(seconds, ...)             # an odd-sized chunk plus its pad byte
    streamed(seconds, ..., size=0 | 0xFFFFFFFF)     # RIFF and data sizes as a recorder writes them
    ffmpeg_encoded(codec, seconds, rate, channels)  # pcm_alaw, pcm_mulaw, adpcm_ima_wav, adpcm_ms
    good_cases()                                    # all of the above as named ``Case``s

Bad inputs, as named ``BadCase``s with the status the transcoder answers (415 not a WAV at all,
422 a WAV header whose audio is unusable): ``bad_cases()``; the pieces are module-level
functions (``empty()``, ``text()``, ``random_bytes()``, ``truncated_after_header()``, ...).

Low-level builders for anything else: ``fmt_chunk``, ``chunk``, ``riff``, ``samples``.
The signal is a sine of a different pitch on each channel (a downmix never cancels out).
"""

from __future__ import annotations

import array
import math
import random
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_ALAW = 0x0006
WAVE_FORMAT_MULAW = 0x0007
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
STREAMED_SIZES = (0, 0xFFFFFFFF)
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


@dataclass(frozen=True, slots=True)
class Case:
    """A valid WAV file and the MP3 it should become."""

    name: str
    wav: bytes
    seconds: float
    channels: int  # of the MP3: 1 for mono input, 2 otherwise
    rate: int  # of the input


@dataclass(frozen=True, slots=True)
class BadCase:
    """An input the transcoder must refuse with ``status``."""

    name: str
    wav: bytes
    status: int


# --- signal -----------------------------------------------------------------------------------


def samples(seconds: float, rate: int, channels: int) -> array.array[int]:
    """Interleaved 16-bit samples: channel ``c`` carries a sine with a period of 40 + 7c samples."""
    frames = round(seconds * rate)
    periods = [
        [round(12000 * math.sin(2 * math.pi * i / (40 + 7 * c))) for i in range(40 + 7 * c)]
        for c in range(channels)
    ]
    interleaved = array.array("h", bytes(2 * frames * channels))
    for c, period in enumerate(periods):
        repeated = period * (frames // len(period) + 1)
        interleaved[c::channels] = array.array("h", repeated[:frames])
    return interleaved


def encode_pcm(values: array.array[int], bits: int) -> bytes:
    """16-bit samples as little-endian PCM of ``bits`` (8 is unsigned, as WAV wants)."""
    if bits == 8:
        return bytes((v >> 8) + 128 for v in values)
    if bits == 16:
        return values.tobytes() if sys.byteorder == "little" else _swapped(values)
    wide = array.array("i", (v << 16 for v in values))
    raw = wide.tobytes() if sys.byteorder == "little" else _swapped(wide)
    if bits == 32:
        return raw
    if bits == 24:
        out = bytearray(len(raw) // 4 * 3)
        out[0::3], out[1::3], out[2::3] = raw[1::4], raw[2::4], raw[3::4]
        return bytes(out)
    raise ValueError(f"unsupported bits: {bits}")


def encode_float(values: array.array[int], bits: int) -> bytes:
    wide = array.array("f" if bits == 32 else "d", (v / 32768 for v in values))
    return wide.tobytes() if sys.byteorder == "little" else _swapped(wide)


def _swapped(values: array.array[int] | array.array[float]) -> bytes:
    copy = array.array(values.typecode, values)
    copy.byteswap()
    return copy.tobytes()


# --- chunks -----------------------------------------------------------------------------------


def chunk(chunk_id: bytes, payload: bytes, *, size: int | None = None) -> bytes:
    """A RIFF chunk, with the pad byte an odd-sized payload needs; ``size`` overrides the field."""
    assert len(chunk_id) == 4
    declared = len(payload) if size is None else size
    return chunk_id + struct.pack("<I", declared) + payload + (b"\x00" * (len(payload) % 2))


def fmt_chunk(
    format_tag: int, channels: int, rate: int, bits: int, *, extra: bytes | None = None
) -> bytes:
    """A ``fmt `` chunk; ``extra`` is the cbSize-prefixed extension (none for plain PCM)."""
    block_align = channels * bits // 8
    payload = struct.pack(
        "<HHIIHH", format_tag, channels, rate, rate * block_align, block_align, bits
    )
    return chunk(b"fmt ", payload + (extra or b""))


def extensible_fmt(
    channels: int, rate: int, bits: int, *, is_float: bool = False, channel_mask: int | None = None
) -> bytes:
    """A WAVE_FORMAT_EXTENSIBLE ``fmt `` chunk (mask: the usual layout unless given, 0 allowed)."""
    mask = (1 << channels) - 1 if channel_mask is None else channel_mask
    sub_format = struct.pack("<H", WAVE_FORMAT_IEEE_FLOAT if is_float else WAVE_FORMAT_PCM)
    extra = struct.pack("<HHI", 22, bits, mask) + sub_format + _GUID_TAIL
    return fmt_chunk(WAVE_FORMAT_EXTENSIBLE, channels, rate, bits, extra=extra)


def riff(*chunks: bytes, size: int | None = None) -> bytes:
    """``RIFF <size> WAVE`` followed by ``chunks``; ``size`` overrides the computed one."""
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body) if size is None else size) + body


def info_list(title: str = "riffle test") -> bytes:
    encoded = title.encode() + b"\x00"
    return chunk(b"LIST", b"INFO" + chunk(b"INAM", encoded))


# --- good inputs ------------------------------------------------------------------------------


def pcm(seconds: float, rate: int = 44100, channels: int = 2, bits: int = 16) -> bytes:
    """Integer PCM: 8-bit unsigned, 16, 24 or 32-bit signed."""
    data = encode_pcm(samples(seconds, rate, channels), bits)
    return riff(fmt_chunk(WAVE_FORMAT_PCM, channels, rate, bits), chunk(b"data", data))


def ieee_float(seconds: float, rate: int = 44100, channels: int = 2, bits: int = 32) -> bytes:
    """IEEE float, 32 or 64-bit, with the ``fact`` chunk the format asks for."""
    data = encode_float(samples(seconds, rate, channels), bits)
    fact = chunk(b"fact", struct.pack("<I", round(seconds * rate)))
    fmt = fmt_chunk(WAVE_FORMAT_IEEE_FLOAT, channels, rate, bits, extra=b"\x00\x00")
    return riff(fmt, fact, chunk(b"data", data))


def extensible(
    seconds: float,
    rate: int = 44100,
    channels: int = 2,
    bits: int = 16,
    *,
    is_float: bool = False,
    channel_mask: int | None = None,
) -> bytes:
    """WAVE_FORMAT_EXTENSIBLE with a PCM or float sub-format."""
    values = samples(seconds, rate, channels)
    data = encode_float(values, bits) if is_float else encode_pcm(values, bits)
    fmt = extensible_fmt(channels, rate, bits, is_float=is_float, channel_mask=channel_mask)
    return riff(fmt, chunk(b"data", data))


def rf64(seconds: float, rate: int = 44100, channels: int = 2, bits: int = 16) -> bytes:
    """RF64: 32-bit sizes are 0xFFFFFFFF, the real ones sit in the ``ds64`` chunk."""
    data = encode_pcm(samples(seconds, rate, channels), bits)
    fmt = fmt_chunk(WAVE_FORMAT_PCM, channels, rate, bits)
    frames = round(seconds * rate)
    riff_size = 4 + 8 + 28 + len(fmt) + 8 + len(data) + len(data) % 2
    ds64 = chunk(b"ds64", struct.pack("<QQQI", riff_size, len(data), frames, 0))
    body = b"WAVE" + ds64 + fmt + chunk(b"data", data, size=0xFFFFFFFF)
    return b"RF64" + struct.pack("<I", 0xFFFFFFFF) + body


def list_before_fmt(seconds: float, rate: int = 44100, channels: int = 2, bits: int = 16) -> bytes:
    data = encode_pcm(samples(seconds, rate, channels), bits)
    fmt = fmt_chunk(WAVE_FORMAT_PCM, channels, rate, bits)
    return riff(info_list(), fmt, chunk(b"data", data))


def odd_chunk_before_data(
    seconds: float, rate: int = 44100, channels: int = 2, bits: int = 16
) -> bytes:
    """A 3-byte ``junk`` chunk between ``fmt `` and ``data``: its pad byte must be skipped."""
    data = encode_pcm(samples(seconds, rate, channels), bits)
    fmt = fmt_chunk(WAVE_FORMAT_PCM, channels, rate, bits)
    return riff(fmt, chunk(b"junk", b"odd"), info_list("x"), chunk(b"data", data))


def streamed(
    seconds: float, rate: int = 44100, channels: int = 2, bits: int = 16, *, size: int = 0
) -> bytes:
    """RIFF and data sizes both ``size`` (0 or 0xFFFFFFFF), as recorders that cannot seek write."""
    data = encode_pcm(samples(seconds, rate, channels), bits)
    fmt = fmt_chunk(WAVE_FORMAT_PCM, channels, rate, bits)
    return riff(fmt, chunk(b"data", data, size=size), size=size)


def odd_data_size(seconds: float, rate: int = 8000) -> bytes:
    """8-bit mono with an odd number of samples: a pad byte, then a LIST chunk after ``data``."""
    data = encode_pcm(samples(seconds, rate, 1), 8)
    if len(data) % 2 == 0:
        data = data[:-1]
    fmt = fmt_chunk(WAVE_FORMAT_PCM, 1, rate, 8)
    return riff(fmt, chunk(b"data", data), info_list("after"))


def truncated_data(seconds: float) -> bytes:
    """A 16-bit stereo file declaring ``seconds`` of audio and cut off after half of it."""
    wav = pcm(seconds)
    return wav[: len(wav) - len(wav[wav.index(b"data") + 8 :]) // 2]


FFMPEG_CODECS = ("pcm_alaw", "pcm_mulaw", "adpcm_ima_wav", "adpcm_ms")


@cache
def ffmpeg_encoded(codec: str, seconds: float, rate: int = 44100, channels: int = 2) -> bytes:
    """A WAV of ``codec`` (one of ``FFMPEG_CODECS``) written by ffmpeg from our signal."""
    source = pcm(seconds, rate, channels)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.wav"
        command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error"]
        command += ["-f", "wav", "-i", "pipe:0", "-c:a", codec, "-f", "wav", "-y", str(out)]
        subprocess.run(command, input=source, check=True, timeout=60)
        return out.read_bytes()


def ffmpeg_exe() -> str:
    """The ffmpeg the transcoder uses by default: one on PATH, else imageio-ffmpeg's."""
    import shutil

    import imageio_ffmpeg

    return shutil.which("ffmpeg") or str(imageio_ffmpeg.get_ffmpeg_exe())


def good_cases(seconds: float = 0.5) -> list[Case]:
    """Every supported shape of WAV, each ``seconds`` long."""
    s = seconds

    def case(name: str, wav: bytes, channels: int, rate: int = 44100) -> Case:
        return Case(name, wav, s, 1 if channels == 1 else 2, rate)

    cases = [case(f"pcm{bits}", pcm(s, bits=bits), 2) for bits in (8, 16, 24, 32)]
    cases += [case(f"float{bits}", ieee_float(s, bits=bits), 2) for bits in (32, 64)]
    cases += [case(f"pcm16_{n}ch", pcm(s, channels=n), n) for n in range(1, 9)]
    cases += [case(f"pcm16_{r}hz", pcm(s, rate=r, channels=2), 2, r) for r in _RATES]
    cases += [
        case("mono_8bit_8khz", pcm(s, rate=8000, channels=1, bits=8), 1, 8000),
        case("mono_192khz_24bit", pcm(s, rate=192000, channels=1, bits=24), 1, 192000),
        case("extensible_pcm24_stereo", extensible(s, bits=24), 2),
        case("extensible_float32_6ch", extensible(s, 48000, 6, 32, is_float=True), 6, 48000),
        case("extensible_5ch_mask0", extensible(s, channels=5, channel_mask=0), 5),
        case("extensible_mono", extensible(s, channels=1), 1),
        case("rf64_stereo", rf64(s), 2),
        case("rf64_mono_24bit", rf64(s, channels=1, bits=24), 1),
        case("list_info_before_fmt", list_before_fmt(s), 2),
        case("odd_chunk_with_pad_byte", odd_chunk_before_data(s), 2),
        case("mono_8bit_odd_data_size", odd_data_size(s), 1, 8000),
        Case("truncated_data", truncated_data(s), s / 2, 2, 44100),
        case("streamed_size_0", streamed(s, size=0), 2),
        case("streamed_size_ffffffff", streamed(s, size=0xFFFFFFFF), 2),
        case("streamed_mono_size_0", streamed(s, channels=1, size=0), 1),
    ]
    cases += [case(codec, ffmpeg_encoded(codec, s), 2) for codec in FFMPEG_CODECS]
    cases += [
        case(f"{codec}_mono", ffmpeg_encoded(codec, s, 8000, 1), 1, 8000)
        for codec in ("pcm_alaw", "pcm_mulaw")
    ]
    return cases


_RATES = (8000, 11025, 16000, 22050, 32000, 37800, 48000, 88200, 96000, 176400, 192000)


# --- bad inputs -------------------------------------------------------------------------------


def empty() -> bytes:
    return b""


def one_byte() -> bytes:
    return b"R"


def text() -> bytes:
    return b"Hello, this is not audio at all.\n" * 20


def random_bytes(size: int = 4096, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def hls_playlist() -> bytes:
    """An HLS playlist (a disguised ``.wav``) pointing at a local file and the network."""
    return (
        b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n"
        b"#EXTINF:10,\nhttp://169.254.169.254/latest/meta-data/\n#EXT-X-ENDLIST\n"
    )


def riff_then_hls() -> bytes:
    """A RIFF/WAVE header whose first chunk is an HLS playlist: no ``fmt `` chunk at all."""
    return riff(chunk(b"LIST", hls_playlist()))


def truncated_after_header(rate: int = 44100, channels: int = 2) -> bytes:
    """A header declaring one second of audio, and no audio bytes after it."""
    wav = pcm(1.0, rate, channels)
    return wav[: wav.index(b"data") + 8]


def empty_data_chunk() -> bytes:
    return riff(fmt_chunk(WAVE_FORMAT_PCM, 2, 44100, 16), chunk(b"data", b""))


def zero_channels() -> bytes:
    return riff(fmt_chunk(WAVE_FORMAT_PCM, 0, 44100, 16), chunk(b"data", bytes(4000)))


def too_many_channels() -> bytes:
    return riff(fmt_chunk(WAVE_FORMAT_PCM, 9, 44100, 16), chunk(b"data", bytes(9 * 2 * 1000)))


def rate_out_of_range(rate: int) -> bytes:
    return riff(fmt_chunk(WAVE_FORMAT_PCM, 1, rate, 16), chunk(b"data", bytes(2 * 4000)))


def no_fmt_chunk() -> bytes:
    return riff(chunk(b"data", bytes(4000)))


def short_fmt_chunk() -> bytes:
    return riff(chunk(b"fmt ", b"\x01\x00\x02\x00"), chunk(b"data", bytes(4000)))


def riff_header_only() -> bytes:
    return b"RIFF\x24\x00\x00\x00WAVE"


def unknown_codec() -> bytes:
    """A format tag nobody decodes (0x7777): the header is fine, the audio is not."""
    return riff(fmt_chunk(0x7777, 2, 44100, 16), chunk(b"data", random_bytes(8000)))


def garbage_adpcm() -> bytes:
    """IMA ADPCM header with a block align that cannot hold a block."""
    fmt = fmt_chunk(0x0011, 2, 44100, 4, extra=struct.pack("<HH", 2, 1))
    return riff(fmt, chunk(b"data", random_bytes(8000)))


def bad_cases() -> list[BadCase]:
    """Every input the transcoder must refuse, with its status."""
    return [
        BadCase("empty", empty(), 415),
        BadCase("one_byte", one_byte(), 415),
        BadCase("text", text(), 415),
        BadCase("random_bytes", random_bytes(), 415),
        BadCase("hls_playlist", hls_playlist(), 415),
        BadCase("riff_not_wave", b"RIFF\x04\x00\x00\x00AVI " + bytes(100), 415),
        BadCase("riff_header_only", riff_header_only(), 422),
        BadCase("riff_then_hls", riff_then_hls(), 422),
        BadCase("truncated_after_header", truncated_after_header(), 422),
        BadCase("empty_data_chunk", empty_data_chunk(), 422),
        BadCase("zero_channels", zero_channels(), 422),
        BadCase("nine_channels", too_many_channels(), 422),
        BadCase("rate_4000", rate_out_of_range(4000), 422),
        BadCase("rate_384000", rate_out_of_range(384000), 422),
        BadCase("no_fmt_chunk", no_fmt_chunk(), 422),
        BadCase("short_fmt_chunk", short_fmt_chunk(), 422),
        BadCase("unknown_codec", unknown_codec(), 422),
        BadCase("garbage_adpcm", garbage_adpcm(), 422),
    ]
