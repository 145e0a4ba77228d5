"""WAV header sniffing and parsing: pure functions over the first bytes of a file, no I/O.

Handles RIFF and RF64 (``ds64`` sizes), word-aligned chunks (odd sizes carry a pad byte), any
chunks before ``fmt ``, WAVE_FORMAT_EXTENSIBLE (the sub-format GUID names the codec) and the sizes
streaming recorders write (0 or 0xFFFFFFFF: the data runs to the end of the stream).
"""

import struct
from dataclasses import dataclass

from servicekit.errors import AudioTooLong, NotAWav, UndecodableAudio

MAGIC_BYTES = 12
MIN_CHANNELS, MAX_CHANNELS = 1, 8
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192000

FORMAT_PCM = 0x0001
FORMAT_IEEE_FLOAT = 0x0003
FORMAT_EXTENSIBLE = 0xFFFE
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
# KSDATAFORMAT_SUBTYPE_*: the format tag in the first two bytes, then this fixed tail.
_SUBFORMAT_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")


@dataclass(frozen=True, slots=True)
class WavHeader:
    """What the header says, up to the start of the audio data."""

    container: str  # "RIFF" or "RF64"
    format_tag: int  # the codec; for WAVE_FORMAT_EXTENSIBLE, the sub-format's
    channels: int
    sample_rate: int
    bits_per_sample: int
    block_align: int
    channel_mask: int | None
    data_offset: int  # where the audio bytes start
    data_size: int | None  # None: unknown (streamed), read to the end of the stream
    sample_frames: int | None  # from ``fact`` or ``ds64``, when the file says

    @property
    def duration_seconds(self) -> float | None:
        """The duration the header declares, when it declares one (the file may be shorter)."""
        if self.format_tag in (FORMAT_PCM, FORMAT_IEEE_FLOAT) and self.block_align > 0:
            if self.data_size is not None:
                return self.data_size // self.block_align / self.sample_rate
        elif self.sample_frames:
            return self.sample_frames / self.sample_rate
        return None

    @property
    def declared_frames(self) -> int | None:
        """The sample frames the header declares, when it declares a duration."""
        seconds = self.duration_seconds
        return round(seconds * self.sample_rate) if seconds is not None else None


def sniff(prefix: bytes | bytearray) -> bool | None:
    """True for RIFF/RF64 … WAVE magic, False if it cannot be there, None if more bytes needed."""
    if len(prefix) < MAGIC_BYTES:
        if _could_start_magic(prefix):
            return None
        return False
    return prefix[:4] in (b"RIFF", b"RF64") and prefix[8:12] == b"WAVE"


def _could_start_magic(prefix: bytes | bytearray) -> bool:
    if not prefix:
        return True
    head = prefix[:4]
    if not (b"RIFF".startswith(head) or b"RF64".startswith(head)):
        return False
    return len(prefix) <= 8 or b"WAVE".startswith(prefix[8:12])


def parse_header(buffer: bytes | bytearray, *, complete: bool = False) -> WavHeader | None:
    """Parse up to the ``data`` chunk's header.

    Returns None while ``buffer`` ends before that (unless ``complete``: the stream ended, and that
    is an error). Raises ``NotAWav`` without the magic, ``UndecodableAudio`` for a broken header.
    """
    magic = sniff(buffer)
    if magic is None and not complete:
        return None
    if not magic:
        raise NotAWav("The file is not a WAV file (no RIFF/RF64 … WAVE header).")
    container = buffer[:4].decode("ascii")
    fmt: _Format | None = None
    ds64: tuple[int, int] | None = None  # (data size, sample frames)
    fact_frames: int | None = None
    position = MAGIC_BYTES
    while True:
        if len(buffer) < position + 8:
            _fail_if(complete, "The WAV file ends before its audio data.")
            return None
        chunk_id = buffer[position : position + 4]
        (size,) = struct.unpack_from("<I", buffer, position + 4)
        payload_start = position + 8
        if chunk_id == b"data":
            if fmt is None:
                raise UndecodableAudio("The WAV file has no 'fmt ' chunk before its audio data.")
            data_size: int | None = size
            if container == "RF64" and size == 0xFFFFFFFF and ds64 is not None:
                data_size = ds64[0]
            if data_size in _UNKNOWN_SIZES:
                data_size = None
            frames = fact_frames if fact_frames else (ds64[1] if ds64 else None)
            return fmt.header(container, payload_start, data_size, frames or None)
        if container == "RF64" and chunk_id == b"ds64" and size >= 24 and size != 0xFFFFFFFF:
            needed = payload_start + 24
        elif chunk_id in (b"fmt ", b"fact"):
            needed = payload_start + size
        else:
            needed = payload_start
        if len(buffer) < needed:
            _fail_if(complete, "The WAV file ends inside its header.")
            return None
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(buffer[payload_start : payload_start + size])
        elif chunk_id == b"fact" and size >= 4:
            (fact_frames,) = struct.unpack_from("<I", buffer, payload_start)
        elif chunk_id == b"ds64" and container == "RF64" and needed > payload_start:
            _, ds64_data, ds64_frames = struct.unpack_from("<QQQ", buffer, payload_start)
            ds64 = (ds64_data, ds64_frames)
        position = payload_start + size + (size % 2)


def _fail_if(complete: bool, message: str) -> None:
    if complete:
        raise UndecodableAudio(message)


@dataclass(frozen=True, slots=True)
class _Format:
    format_tag: int
    channels: int
    sample_rate: int
    bits_per_sample: int
    block_align: int
    channel_mask: int | None

    def header(
        self, container: str, data_offset: int, data_size: int | None, frames: int | None
    ) -> WavHeader:
        return WavHeader(
            container=container,
            format_tag=self.format_tag,
            channels=self.channels,
            sample_rate=self.sample_rate,
            bits_per_sample=self.bits_per_sample,
            block_align=self.block_align,
            channel_mask=self.channel_mask,
            data_offset=data_offset,
            data_size=data_size,
            sample_frames=frames,
        )


def _parse_fmt(payload: bytes | bytearray) -> _Format:
    if len(payload) < 16:
        raise UndecodableAudio(f"The WAV 'fmt ' chunk is too short ({len(payload)} bytes).")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", payload)
    mask = None
    if tag == FORMAT_EXTENSIBLE:
        if len(payload) < 40:
            raise UndecodableAudio("The WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk is too short.")
        (mask,) = struct.unpack_from("<I", payload, 20)
        sub_format = payload[24:40]
        if sub_format[2:] == _SUBFORMAT_GUID_TAIL:
            (tag,) = struct.unpack_from("<H", sub_format)
    return _Format(tag, channels, rate, bits, block_align, mask)


def check_supported(header: WavHeader, *, max_duration_seconds: float) -> None:
    """Raise ``UndecodableAudio`` for what we refuse before spending CPU on it."""
    if not MIN_CHANNELS <= header.channels <= MAX_CHANNELS:
        raise UndecodableAudio(
            f"{header.channels} channels: only {MIN_CHANNELS} to {MAX_CHANNELS} are supported."
        )
    if not MIN_SAMPLE_RATE <= header.sample_rate <= MAX_SAMPLE_RATE:
        raise UndecodableAudio(
            f"Sample rate {header.sample_rate} Hz: only {MIN_SAMPLE_RATE} to "
            f"{MAX_SAMPLE_RATE} Hz are supported."
        )
    duration = header.duration_seconds
    if duration is not None and duration > max_duration_seconds:
        raise too_long(duration, max_duration_seconds)


NO_AUDIO = "The WAV file contains no audio (it is empty or ends right after its header)."


def too_long(duration_seconds: float, limit_seconds: float) -> AudioTooLong:
    return AudioTooLong(
        f"The audio lasts {duration_seconds:.1f} s; at most {limit_seconds:g} s are accepted."
    )
