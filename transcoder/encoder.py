"""A streamed WAV in, a complete MP3 file with a LAME tag out, tagged, with the input's loudness
and waveform peaks measured on the way: 16-bit PCM to CBR in this process (``transcoder.lame``),
everything else by ffmpeg — this is the one place that knows ffmpeg."""

import asyncio
import contextlib
import logging
import math
import re
import signal
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from servicekit import wav, wavtags
from servicekit.audio_options import AudioOptions, Mode, effective_cbr_kbps
from servicekit.errors import TranscodeTimeout, UndecodableAudio
from servicekit.peaks import Peaks, PeaksBuilder
from transcoder import analysis, lame, mp3, parallel, tagging
from transcoder.admission import EncodeSlots
from transcoder.errors import EncoderUnavailable

if TYPE_CHECKING:  # imported by the app only when it has peers (httpx)
    from transcoder.peers import Peers

logger = logging.getLogger(__name__)

MAX_HEADER_BYTES = 1024 * 1024
_STDIN_CHUNK_BYTES = 256 * 1024
_STDERR_TAIL_BYTES = 16384  # the ebur128 summary is near the end of an info-level log
_PEAKS_BATCH_BYTES = 1024 * 1024
_DURATION_MARGIN_SECONDS = 1.0  # -t stops a runaway input just past the limit; the check is exact
_TERMINATE_GRACE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Choice:
    """How LAME is run: CBR at ``kbps`` or VBR at ``-V quality``."""

    mode: Mode
    kbps: int = 0
    quality: int = 0

    def arguments(self) -> list[str]:
        if self.mode == "vbr":
            return ["-q:a", str(self.quality)]
        return ["-b:a", f"{self.kbps}k"]


@dataclass(frozen=True, slots=True)
class Encoded:
    """A finished, tagged MP3 and what was measured on the way."""

    info: mp3.Mp3Info
    mode: Mode
    bitrate_kbps: int  # CBR: the nominal rate; VBR: the stream's average
    tags: dict[str, str]
    loudness: analysis.Loudness | None
    peaks: Peaks


@dataclass(frozen=True, slots=True)
class _Run:
    stderr: bytes
    audio_bytes: int
    peaks: Peaks | None
    loudness: analysis.Loudness | None


@dataclass(frozen=True, slots=True)
class Encoder:
    """Runs ffmpeg/LAME with a deadline; nothing of a failed run survives it."""

    ffmpeg: str
    bitrate: str
    timeout_seconds: float
    # PCM at least this long is encoded as two segments at once, joined keeping LAME's bit
    # reservoir (transcoder/parallel.py); None: never (the service sets it from its settings).
    parallel_min_seconds: float | None = None
    # 16-bit PCM to CBR is encoded in this process (transcoder/lame.py); False: always ffmpeg.
    in_process: bool = True
    # The encoder processes this encoder may run at once (None: no bound, for direct use).
    slots: EncodeSlots | None = None
    # Other transcoders that encode segments of a long PCM recording (transcoder/peers.py).
    peers: "Peers | None" = None

    async def encode(
        self,
        body: AsyncIterator[bytes],
        *,
        output: Path,
        max_duration_seconds: float,
        deadline_seconds: float | None = None,
        options: AudioOptions | None = None,
        arrived_on: tuple[str, int] | None = None,
    ) -> Encoded:
        """Read the WAV from ``body`` and write the tagged MP3 to ``output`` (an existing,
        seekable file), as ``options`` ask (else CBR at ``bitrate``).

        ``arrived_on``: this server's address the request came in on, which is not a peer.

        ``deadline_seconds``: the caller's deadline for the whole encode, waiting for an encoder
        included (at most ``timeout_seconds``). Raises ``NotAWav``/``UndecodableAudio`` for bad
        input, ``EncodersBusy`` when no encoder is free in time, ``TranscodeTimeout`` past the
        deadline. Client disconnects (``ClientDisconnect`` from ``body``) and cancellation
        propagate; in every case ffmpeg is stopped and reaped before this returns.
        """
        options = options or AudioOptions()
        timeout = min(self.timeout_seconds, deadline_seconds or math.inf)
        deadline = time.monotonic() + timeout
        try:
            header, buffered = await _read_supported(body, timeout, max_duration_seconds)
            choice = self.choice(header, options)
            trailing = tagging.TrailingChunks(header, buffered, body)
            split = parallel.plan(header, self.parallel_min_seconds)
            in_process = self.in_process and choice.mode == "cbr" and lame.handles(header)
            if choice.mode != "cbr":
                split = None  # VBR halves cannot be joined into the single pass
            peers: list[str] = []
            if split is not None and in_process and self.peers is not None:
                peers = await self.peers.resolve(arrived_on)
                spread = _spread(header, self.parallel_min_seconds, len(peers))
                split, peers = (spread, peers) if spread else (split, [])
            if not peers and parallel.local_cpus() < 2:
                split = None  # one CPU: segments here would only take turns on it
            # With peers, this transcoder runs one encoder of its own.
            wanted = 1 if peers else len(split.ranges) if split else 1
            async with self._slots(wanted, deadline) as processes:
                async with asyncio.timeout(deadline - time.monotonic()):
                    run = await self._encode(
                        header,
                        buffered,
                        trailing.stream(),
                        output,
                        max_duration_seconds,
                        choice,
                        split if split and processes >= wanted else None,
                        in_process=in_process,
                        peers=peers,
                        deadline=deadline,
                    )
        except TimeoutError:
            raise TranscodeTimeout(f"Transcoding took longer than {timeout:g} seconds.") from None
        info = await _check_output(output, run.stderr, run.audio_bytes, max_duration_seconds)
        from_wav = tagging.wav_tags(buffered, header, bytes(trailing.tail))
        tags = tagging.writable(wavtags.merge_tags(options.tags(), from_wav))
        await asyncio.to_thread(tagging.finish_mp3, output, tags)
        # The finished file, read back: its Info frame (CRC included) still parses.
        info = mp3.parse(await asyncio.to_thread(_read_head, output))
        if run.peaks is None:
            raise UndecodableAudio("No waveform could be computed from the WAV file.")
        return Encoded(
            info=info,
            mode=choice.mode,
            bitrate_kbps=choice.kbps if choice.mode == "cbr" else round(info.bitrate / 1000),
            tags=tags,
            loudness=run.loudness,
            peaks=run.peaks,
        )

    async def encode_segment(
        self,
        body: AsyncIterator[bytes],
        *,
        output: Path,
        kbps: int,
        max_duration_seconds: float,
        deadline_seconds: float | None = None,
    ) -> None:
        """Encode a peer's segment (``transcoder.peers``): 16-bit PCM of known size as CBR at
        ``kbps``, as segments 2 and on of a split are encoded (no analysis, no tags), behind an
        Info frame. Raises as ``encode`` does; ``UndecodableAudio`` for any other audio."""
        timeout = min(self.timeout_seconds, deadline_seconds or math.inf)
        deadline = time.monotonic() + timeout
        try:
            header, buffered = await _read_supported(body, timeout, max_duration_seconds)
            if not lame.handles(header) or header.data_size is None:
                raise UndecodableAudio(
                    "A segment is 16-bit PCM, mono or stereo, at an MP3 sample rate, with the "
                    "size of its data chunk given."
                )
            async with self._slots(1, deadline):
                async with asyncio.timeout(deadline - time.monotonic()):
                    await lame.encode(
                        header,
                        buffered,
                        body,
                        output,
                        kbps=effective_cbr_kbps(kbps, header.sample_rate),
                        max_duration_seconds=max_duration_seconds,
                        analysed=False,
                    )
        except TimeoutError:
            raise TranscodeTimeout(f"Encoding took longer than {timeout:g} seconds.") from None

    def choice(self, header: wav.WavHeader, options: AudioOptions) -> Choice:
        """The options' mode, else the default CBR rate; CBR capped where MPEG-2 rates are."""
        if options.quality is not None:
            return Choice("vbr", quality=options.quality)
        kbps = options.bitrate_kbps or int(self.bitrate.removesuffix("k"))
        rate = output_sample_rate(header.sample_rate)
        return Choice("cbr", kbps=effective_cbr_kbps(kbps, rate))

    def _slots(self, wanted: int, deadline: float) -> AbstractAsyncContextManager[int]:
        if self.slots is None:
            return contextlib.nullcontext(wanted)
        return self.slots.hold(wanted, deadline=deadline)

    async def _encode(
        self,
        header: wav.WavHeader,
        buffered: bytes,
        body: AsyncIterator[bytes],
        output: Path,
        max_duration_seconds: float,
        choice: Choice,
        split: parallel.Plan | None,
        *,
        in_process: bool,
        peers: Sequence[str] = (),
        deadline: float = math.inf,
    ) -> _Run:
        if in_process:
            remote = _Remote(self.peers, peers, deadline) if self.peers and peers else None
            return await _encode_in_process(
                header, buffered, body, output, max_duration_seconds, choice, split, remote
            )
        command = self.command(header, output, max_duration_seconds, choice)
        if split is None:
            return await self._run(command, buffered, body, header)

        async def segment(
            index: int,
            wav_header: bytes,
            audio: AsyncIterator[bytes],
            path: Path,
            end_sample: int | None,
        ) -> _Run:
            argv = self.command(
                header,
                path,
                max_duration_seconds,
                choice,
                parallel.SEGMENT_OPTIONS,
                analysed=end_sample is not None,
                encode_end_sample=end_sample,
            )
            return await self._run(argv, wav_header, audio, header)

        async def single(wav_header: bytes, audio: AsyncIterator[bytes]) -> _Run:
            return await self._run(command, wav_header, audio, header)

        return await parallel.encode(
            split, buffered, body, output, run_segment=segment, run_single=single
        )

    def command(
        self,
        header: wav.WavHeader,
        output: Path,
        max_duration_seconds: float,
        choice: Choice,
        options: Sequence[str] = (),
        *,
        analysed: bool = True,
        encode_end_sample: int | None = None,
    ) -> list[str]:
        """The ffmpeg argument list: input format forced, pipe-only input, seekable file output,
        no metadata of ffmpeg's own; ``analysed`` adds the loudness and waveform branches (the
        PCM on stdout, the loudness summary in the info-level log)."""
        channels = "1" if header.channels == 1 else "2"
        limit = f"{max_duration_seconds + _DURATION_MARGIN_SECONDS:.3f}"
        argv = [
            self.ffmpeg,
            *("-nostdin", "-hide_banner", "-nostats"),
            *("-loglevel", "level+info" if analysed else "level+error"),
            *("-protocol_whitelist", "pipe", "-f", "wav", "-t", limit, "-i", "pipe:0"),
        ]
        if analysed:
            graph = analysis.filter_graph(encode_end_sample)
            argv += ["-filter_complex", graph, "-map", analysis.ENCODE_LABEL]
        else:
            argv += ["-map", "0:a:0"]
        argv += [
            *("-vn", "-c:a", "libmp3lame", *choice.arguments(), *options),
            *("-ac", channels, "-ar", str(output_sample_rate(header.sample_rate))),
            # No tags, no encoder strings: tagging.finish_mp3 writes what the file carries.
            *("-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"),
            *("-id3v2_version", "0", "-write_id3v1", "0", "-f", "mp3", "-y", str(output)),
        ]
        if analysed:
            argv += [
                *("-map", analysis.PEAKS_LABEL, "-ac", channels, "-c:a", "pcm_s16le"),
                *("-f", "s16le", "pipe:1"),
                *("-map", analysis.MEASURED_LABEL, "-f", "null", "-"),
            ]
        return argv

    async def _run(
        self, command: list[str], buffered: bytes, body: AsyncIterator[bytes], header: wav.WavHeader
    ) -> _Run:
        """Run ffmpeg to its end; returns its stderr tail, the audio bytes sent and the peaks
        (when the command makes them) once it exits 0."""
        analysed = "pipe:1" in command
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE if analysed else asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as error:
            logger.exception("cannot start ffmpeg at %s", self.ffmpeg)
            raise EncoderUnavailable("The encoder could not be started.") from error
        assert process.stdin is not None
        assert process.stderr is not None
        stderr_tail = asyncio.create_task(_tail(process.stderr))
        builder = PeaksBuilder(
            1 if header.channels == 1 else 2, header.sample_rate, header.declared_frames
        )
        waveform = None
        if process.stdout is not None:
            waveform = asyncio.create_task(_read_pcm(process.stdout, builder))
        try:
            sent = await _feed(process.stdin, buffered, body)
            returncode = await process.wait()
            if waveform is not None:
                await waveform
            stderr = await stderr_tail
        finally:
            await _stop(process)
            stderr_tail.cancel()
            if waveform is not None:
                waveform.cancel()
        audio_bytes = max(0, sent - header.data_offset)
        if returncode != 0:
            if audio_bytes == 0:
                raise UndecodableAudio(wav.NO_AUDIO)
            raise UndecodableAudio(f"The audio could not be decoded: {_summary(stderr)}")
        if waveform is None:
            return _Run(stderr, audio_bytes, None, None)
        loudness = analysis.parse_loudness(stderr.decode("utf-8", "replace"))
        return _Run(stderr, audio_bytes, await asyncio.to_thread(builder.finish), loudness)


@dataclass(frozen=True, slots=True)
class _Remote:
    """The peers that encode segments 2 and on of one split, and its deadline."""

    peers: "Peers"
    urls: Sequence[str]
    deadline: float  # time.monotonic()


def _spread(header: wav.WavHeader, min_seconds: float | None, peers: int) -> parallel.Plan | None:
    """A split into one segment for this transcoder and one for each of ``peers``."""
    if not peers:
        return None
    from transcoder.peers import shares

    segments = 1 + peers
    return parallel.plan(header, min_seconds, segments, shares(segments, parallel.local_cpus()))


async def _encode_in_process(
    header: wav.WavHeader,
    buffered: bytes,
    body: AsyncIterator[bytes],
    output: Path,
    max_duration_seconds: float,
    choice: Choice,
    split: parallel.Plan | None,
    remote: "_Remote | None" = None,
) -> _Run:
    """LAME in this process (``transcoder.lame``), in one pass or as ``split``'s segments; with
    ``remote``, segments 2 and on are the peers' (segment 1 is always this process's)."""

    async def run(
        parsed: wav.WavHeader,
        wav_header: bytes,
        audio: AsyncIterator[bytes],
        path: Path,
        encode_frames: int | None = None,
        *,
        analysed: bool = True,
    ) -> _Run:
        measured = await lame.encode(
            parsed,
            wav_header,
            audio,
            path,
            kbps=choice.kbps,
            max_duration_seconds=max_duration_seconds,
            encode_frames=encode_frames,
            analysed=analysed,
        )
        return _Run(b"", measured.audio_bytes, measured.peaks, measured.loudness)

    if split is None:
        return await run(header, buffered, body, output)

    def canonical(wav_header: bytes) -> wav.WavHeader:
        parsed = wav.parse_header(wav_header)
        assert parsed is not None  # parallel.segment_header's own
        return parsed

    async def segment(
        index: int,
        wav_header: bytes,
        audio: AsyncIterator[bytes],
        path: Path,
        end_sample: int | None,
    ) -> _Run:
        # Segment 1 (given its end) measures the whole input; the others only encode.
        parsed = canonical(wav_header)
        if remote is not None and index > 0:
            seconds = (parsed.data_size or 0) / parsed.block_align / parsed.sample_rate
            await remote.peers.encode(
                remote.urls[index - 1],
                wav_header,
                audio,
                path,
                kbps=choice.kbps,
                seconds=seconds,
                deadline=remote.deadline,
            )
            return _Run(b"", parsed.data_size or 0, None, None)
        return await run(
            parsed, wav_header, audio, path, end_sample, analysed=end_sample is not None
        )

    async def single(wav_header: bytes, audio: AsyncIterator[bytes]) -> _Run:
        # The fallback: the original header (and its chunks before the data), then the spool.
        return await run(header, wav_header, audio, output)

    return await parallel.encode(
        split, buffered, body, output, run_segment=segment, run_single=single
    )


async def _read_pcm(stdout: asyncio.StreamReader, builder: PeaksBuilder) -> None:
    """Drain ffmpeg's PCM into ``builder``, a batch at a time in a worker thread."""
    batch = bytearray()
    while chunk := await stdout.read(_PEAKS_BATCH_BYTES):
        batch += chunk
        if len(batch) >= _PEAKS_BATCH_BYTES:
            await asyncio.to_thread(builder.feed, bytes(batch))
            batch.clear()
    if batch:
        await asyncio.to_thread(builder.feed, bytes(batch))


def output_sample_rate(rate: int) -> int:
    """The input's rate if MP3 has it, else 48/44.1 kHz if one divides it, else the next lower."""
    if rate in mp3.SAMPLE_RATES:
        return rate
    for candidate in (48000, 44100):
        if rate % candidate == 0:
            return candidate
    return max((r for r in mp3.SAMPLE_RATES if r < rate), default=mp3.SAMPLE_RATES[0])


async def _read_supported(
    body: AsyncIterator[bytes], timeout: float, max_duration_seconds: float
) -> tuple[wav.WavHeader, bytes]:
    """``read_header`` within ``timeout`` seconds, its audio checked as the service takes it."""
    async with asyncio.timeout(timeout):
        header, buffered = await read_header(body)
    wav.check_supported(header, max_duration_seconds=max_duration_seconds)
    return header, buffered


async def read_header(body: AsyncIterator[bytes]) -> tuple[wav.WavHeader, bytes]:
    """Buffer the body up to the ``data`` chunk; returns the header and every byte read so far."""
    buffer = bytearray()
    async for chunk in body:
        buffer += chunk
        header = wav.parse_header(buffer)
        if header is not None:
            return header, bytes(buffer)
        if len(buffer) > MAX_HEADER_BYTES:
            raise UndecodableAudio(
                f"No audio data chunk within the first {MAX_HEADER_BYTES // 1024} KiB."
            )
    header = wav.parse_header(bytes(buffer), complete=True)
    assert header is not None  # complete=True raises instead of returning None
    return header, bytes(buffer)


async def _feed(stdin: asyncio.StreamWriter, buffered: bytes, body: AsyncIterator[bytes]) -> int:
    """Write the buffered bytes and the rest of the body to ffmpeg; returns the bytes it took.

    ffmpeg may stop reading early (end of the data chunk, ``-t``, an error): the rest of the body is
    then read and dropped, so the client can finish sending and read our answer.
    """
    sent = 0
    accepting = True

    async def write(chunk: bytes) -> None:
        nonlocal sent, accepting
        if not accepting:
            return
        try:
            for start in range(0, len(chunk), _STDIN_CHUNK_BYTES):
                piece = chunk[start : start + _STDIN_CHUNK_BYTES]
                stdin.write(piece)
                await stdin.drain()
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            accepting = False

    await write(buffered)
    async for chunk in body:
        await write(chunk)
    # No wait_closed(): ffmpeg's exit says it read all. (Cancelling an await of wait_closed()
    # cancels the protocol's own future, and asyncio then logs InvalidStateError on 3.11.)
    stdin.close()
    return sent


async def _tail(stream: asyncio.StreamReader) -> bytes:
    """Drain ``stream`` to its end, keeping only the last few KB."""
    kept = bytearray()
    while chunk := await stream.read(65536):
        kept += chunk
        del kept[:-_STDERR_TAIL_BYTES]
    return bytes(kept)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, a short grace, then SIGKILL; always reaped. Safe to call on an exited process."""
    if process.returncode is None:
        # ffmpeg blocked in a read of stdin only sees SIGTERM once the read returns: give it EOF.
        if process.stdin is not None:
            process.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), _TERMINATE_GRACE_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    await process.wait()


def _summary(stderr: bytes) -> str:
    """ffmpeg's first error line about the input, short and printable (not its follow-up noise;
    the log is at info level with ``[level]`` tags, for the loudness summary)."""
    for raw_line in stderr.decode("utf-8", "replace").splitlines():
        if not _ERROR_LEVEL.search(raw_line):
            continue
        line = _LOG_PREFIX.sub("", raw_line).strip()
        if line and not line.startswith(_FOLLOW_UP_LINES):
            return re.sub(r"[^\x20-\x7e]", "?", line)[:200]
    return "the decoder failed."


_ERROR_LEVEL = re.compile(r"\[(error|fatal|panic)\]")
_LOG_PREFIX = re.compile(r"^(\[[^\]]*\]\s*)+")  # "[aist#0:0/pcm @ 0x55…] [dec:pcm @ 0x…] "
_FOLLOW_UP_LINES = (
    "Error opening output",
    "Conversion failed",
    "Terminating thread",
    "Task finished",
)


async def _check_output(
    output: Path, stderr: bytes, audio_bytes: int, max_duration_seconds: float
) -> mp3.Mp3Info:
    """Success only for an MP3 with a LAME tag and at least one decoded sample, within the limit."""
    try:
        info = mp3.parse(await asyncio.to_thread(_read_head, output))
    except mp3.Mp3Error as error:
        if audio_bytes == 0:
            raise UndecodableAudio(wav.NO_AUDIO) from error
        logger.info("ffmpeg exited 0 without a usable MP3 (%s): %s", error, _summary(stderr))
        raise UndecodableAudio("No audio could be decoded from the WAV file.") from error
    if info.sample_count <= 0:
        raise UndecodableAudio(
            wav.NO_AUDIO if audio_bytes == 0 else "No audio samples were decoded."
        )
    if info.duration_seconds > max_duration_seconds:
        raise wav.too_long(info.duration_seconds, max_duration_seconds)
    return info


def _read_head(path: Path) -> bytes:
    with path.open("rb") as mp3_file:
        head = mp3_file.read(10)
        return head + mp3_file.read(mp3.id3v2_size(head) + mp3.HEAD_BYTES)
