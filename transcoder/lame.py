"""16-bit PCM to MP3 in this process: LAME through the ``lameenc`` wheel, with the loudness
(``transcoder.loudness``) and the waveform peaks measured from the same PCM; no process starts.

Each batch of PCM is encoded in one worker thread and measured in another (lameenc and numpy
release the GIL) while the next batch arrives, so a long upload streams into the encoder and
its analysis runs on the other core. lameenc writes no Info frame: ````_Stream.finish`` puts one in
front (``mp3.cbr_info_frame``) with LAME's encoder delay and the padding, so a gapless decoder
yields exactly the input's samples. The encode is LAME's default one, as ffmpeg's libmp3lame
runs it (quality 3, bit reservoir on); what this path does not take (other sample formats,
more channels, rates MP3 has not, VBR) goes to ffmpeg (``transcoder.encoder``).
"""

import asyncio
import contextlib
from array import array
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

import lameenc

from servicekit import wav
from servicekit.errors import UndecodableAudio
from servicekit.peaks import Peaks, PeaksBuilder
from transcoder import analysis, mp3
from transcoder.crc16 import crc16_of_large
from transcoder.loudness import LoudnessMeter

ENCODER_DELAY = 576  # samples LAME puts before the audio, whatever the rate
QUALITY = 3  # LAME's default algorithm quality, which ffmpeg's libmp3lame keeps
_BATCH_BYTES = 256 * 1024
# The MP3 is read back a MiB at a time: crc16_of_large holds about three copies of each block.
_SCAN_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Measured:
    audio_bytes: int
    frames: int  # PCM frames (samples per channel) encoded
    loudness: analysis.Loudness | None
    peaks: Peaks | None


def handles(header: wav.WavHeader) -> bool:
    """Whether this path encodes ``header``'s audio (CBR is the caller's to check)."""
    return (
        header.format_tag == wav.FORMAT_PCM
        and header.bits_per_sample == 16
        and header.channels in (1, 2)
        and header.block_align == 2 * header.channels
        and header.sample_rate in mp3.SAMPLE_RATES
    )


def new_encoder(sample_rate: int, channels: int, kbps: int) -> Any:
    """A lameenc encoder as this path runs LAME: CBR at ``kbps``, the input's own rate out (LAME
    would otherwise pick a lower one for low bitrates), LAME's default quality."""
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(sample_rate)
    encoder.set_out_sample_rate(sample_rate)
    encoder.set_channels(channels)
    encoder.set_quality(QUALITY)
    return encoder


async def encode(
    header: wav.WavHeader,
    buffered: bytes,
    body: AsyncIterator[bytes],
    output: Path,
    *,
    kbps: int,
    max_duration_seconds: float,
    encode_frames: int | None = None,
    analysed: bool = True,
) -> Measured:
    """Encode the PCM after ``header`` (``buffered`` then ``body``, read to its end) to
    ``output`` as CBR at ``kbps``. Raises ``UndecodableAudio`` for no audio, ``AudioTooLong``
    past ``max_duration_seconds`` (the rest of the audio is then read but not encoded).

    For a segment of a split encode (``transcoder.parallel``): ``encode_frames`` stops the
    encode after that many frames while the analysis goes on to the end; ``analysed=False``
    measures nothing (``loudness`` and ``peaks`` are then None)."""
    encoder = new_encoder(header.sample_rate, header.channels, kbps)
    meter = LoudnessMeter(header.sample_rate, header.channels) if analysed else None
    builder = PeaksBuilder(header.channels, header.sample_rate, header.declared_frames)
    limit = int(max_duration_seconds * header.sample_rate) * header.block_align
    encode_limit = limit if encode_frames is None else encode_frames * header.block_align
    audio_bytes = 0
    with output.open("r+b") as out:
        out.truncate(0)
        stream = _Stream(out)

        def encode_batch(pcm: bytes, start: int) -> None:
            if start < encode_limit:
                stream.write(encoder.encode(pcm[: encode_limit - start]))

        def measure_batch(pcm: bytes, meter: LoudnessMeter) -> None:
            meter.feed(pcm)
            builder.feed(pcm)

        in_flight: Awaitable[Any] | None = None
        try:
            async for pcm in _batches(header, buffered, body):
                start = audio_bytes
                audio_bytes += len(pcm)
                if audio_bytes > limit:
                    continue  # read to the end for the length and the trailing chunks
                if in_flight is not None:
                    await in_flight
                work = [asyncio.to_thread(encode_batch, pcm, start)]
                if meter is not None:
                    work.append(asyncio.to_thread(measure_batch, pcm, meter))
                in_flight = asyncio.gather(*work)
            if in_flight is not None:
                await in_flight
        finally:
            await _settled(in_flight)
        frames = audio_bytes // header.block_align
        if audio_bytes > limit:
            raise wav.too_long(frames / header.sample_rate, max_duration_seconds)
        if frames == 0:
            raise UndecodableAudio(wav.NO_AUDIO)
        encoded = min(frames, encode_limit // header.block_align)
        finished = asyncio.to_thread(lambda: stream.finish(encoder.flush(), encoded))
        if meter is None:
            await finished
            return Measured(audio_bytes, encoded, None, None)
        loudness, peaks, _ = await asyncio.gather(
            asyncio.to_thread(meter.finish), asyncio.to_thread(builder.finish), finished
        )
    return Measured(audio_bytes, encoded, loudness, peaks)


class _Stream:
    """LAME's frames written behind room for the Info frame, which ``finish`` writes."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._head = bytearray()  # until the first frame header is known
        self._start: int | None = None  # where the audio frames start

    def write(self, frames: bytes) -> None:
        if self._start is None:
            self._head += frames
            if len(self._head) < 4:
                return
            self._start = mp3.info_frame_length(bytes(self._head[:4]))
            self._out.seek(self._start)
            frames, self._head = bytes(self._head), bytearray()
        self._out.write(frames)

    def finish(self, last: bytes, samples: int) -> None:
        self.write(last)
        if self._start is None:
            raise UndecodableAudio("The encoder wrote no audio frame.")
        out, start = self._out, self._start
        out.flush()
        end = out.seek(0, 2)
        out.seek(start)
        first = out.read(4)
        lengths, music_crc = scan(out, start, end)
        coded = len(lengths) * mp3.parse_frame_header(first).samples_per_frame
        info = mp3.cbr_info_frame(
            first,
            lengths,
            encoder_delay=ENCODER_DELAY,
            padding=coded - ENCODER_DELAY - samples,
            music_crc=music_crc,
        )
        out.seek(0)
        out.write(info)
        out.flush()


def scan(out: IO[bytes], start: int, end: int) -> tuple["array[int]", int]:
    """The frame lengths and the CRC of the audio frames in ``out[start:end]`` (``end``: the
    end of the file), read a MiB at a time. The lengths are an array of 16-bit counts: an hour
    holds 138,000 frames, 4 MB as a list of ints."""
    lengths = array("H")
    crc = 0
    position = start  # the next frame's start
    data, data_start = b"", start  # bytes not walked yet, and where they start in the file
    out.seek(start)
    while block := out.read(_SCAN_BYTES):
        crc = crc16_of_large(block, crc)
        data += block
        while position + 4 <= data_start + len(data):
            at = position - data_start
            length = mp3.parse_frame_header(data[at : at + 4]).length
            lengths.append(length)
            position += length
        walked = min(position - data_start, len(data))
        data, data_start = data[walked:], data_start + walked
    if position != end:
        raise UndecodableAudio("The encoder's last frame is cut short.")
    return lengths, crc


async def _batches(
    header: wav.WavHeader, buffered: bytes, body: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    """The audio bytes in whole frames, about ``_BATCH_BYTES`` at a time, up to the end of the
    ``data`` chunk; the body is read to its end (trailing chunks carry tags)."""
    remaining = header.data_size  # audio bytes not yet in ``pending`` (None: to the end)
    pending = bytearray()

    def add(chunk: bytes) -> None:
        nonlocal remaining
        if remaining is not None:
            chunk = chunk[:remaining]
            remaining -= len(chunk)
        pending.extend(chunk)

    def take() -> bytes:
        whole = len(pending) - len(pending) % header.block_align
        batch = bytes(pending[:whole])
        del pending[:whole]
        return batch

    add(buffered[header.data_offset :])
    async for chunk in body:
        if remaining == 0:
            continue
        add(chunk)
        if len(pending) >= _BATCH_BYTES:
            yield take()
    if batch := take():
        yield batch


async def _settled(in_flight: Awaitable[Any] | None) -> None:
    """Let the batch in the worker threads end before the file closes (on errors and
    cancellation; a batch is a few milliseconds of work)."""
    if in_flight is not None:
        with contextlib.suppress(BaseException):
            await asyncio.shield(in_flight)
