"""The gateway's one connection to the transcoder: WAV file and options in; MP3 file, audio facts
and waveform peaks out (a multipart/mixed answer, ``servicekit.transcoded``)."""

import hashlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import httpx
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from gateway.multipart import parser_for
from servicekit import wav
from servicekit.audio_options import AudioOptions, Mode
from servicekit.errors import (
    PROBLEM_BASE,
    DependencyUnavailable,
    NotAWav,
    ServiceError,
    TranscodeTimeout,
    UndecodableAudio,
    error_for_slug,
)
from servicekit.transcoded import FACTS_TYPE, MP3_TYPE, MULTIPART_MIXED, PEAKS_TYPE, AudioFacts

if TYPE_CHECKING:
    from gateway.conversion import WavSource

_CHUNK_BYTES = 1024 * 1024
_MAX_PROBLEM_BYTES = 64 * 1024
_MAX_SIDE_PART_BYTES = 8 * 1024 * 1024  # the facts and the peaks (at most ~1 MB stereo)
# The problems of the input the transcoder finds, answered to the client as they are.
_PASSED_THROUGH = (NotAWav, UndecodableAudio, TranscodeTimeout)
_CONNECT_SECONDS = 2.0
# Beyond the encode deadline: sending the WAV and receiving the MP3 (a slow link still passes).
_TRANSFER_MARGIN_SECONDS = 2.0
_TRANSFER_BYTES_PER_SECOND = 20e6


@dataclass(frozen=True, slots=True)
class Transcoded:
    """An MP3 the transcoder produced, written to ``path``, with what it measured."""

    path: Path
    size_bytes: int
    sha256: str
    duration_seconds: float
    channels: int
    sample_rate: int
    bitrate: int
    bitrate_kbps: int
    mode: Mode
    tags: dict[str, str]
    integrated_lufs: float | None
    true_peak_dbtp: float | None
    peaks: bytes  # audiowaveform .dat, version 2, 8-bit (servicekit.peaks)


class TranscoderUnavailable(DependencyUnavailable):
    def __init__(self, detail: str | None = None, retry_after: int | None = None) -> None:
        super().__init__("transcoder", detail=detail, retry_after=retry_after)


@dataclass(frozen=True, slots=True)
class Deadlines:
    """How long an encode may take: ``base + per_audio_second * duration``, at most ``longest``.

    The duration comes from the WAV header, so a hung transcoder on a 2-second clip is noticed
    after seconds, not after the ten minutes an hour-long file may need.
    """

    longest: float
    base: float = 10.0
    per_audio_second: float = 0.25

    def for_audio(self, duration_seconds: float | None) -> float:
        if duration_seconds is None:  # a streamed WAV whose header does not say
            return self.longest
        return min(self.longest, self.base + self.per_audio_second * duration_seconds)


class TranscoderClient:
    """One pooled HTTP client, built at start-up; each call bounded by its own deadline."""

    def __init__(
        self,
        base_url: str,
        *,
        deadlines: Deadlines,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.deadlines = deadlines
        self._http = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=httpx.Timeout(deadlines.longest, connect=_CONNECT_SECONDS),
        )

    async def transcode(
        self,
        source: "WavSource",
        *,
        destination: Path,
        max_duration_seconds: float,
        request_id: str,
        options: AudioOptions | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> Transcoded:
        """Send ``source``, write the MP3 to ``destination``; map every failure to an API error.
        ``on_progress(bytes)``: told how many of the WAV's bytes the transcoder has taken.

        The transcoder is told the deadline and keeps it (504, or 503 when no encoder is free
        in time); the same deadline, plus the time to move the bytes, bounds the call here, so
        a transcoder that hangs is answered 504 too.
        """
        deadline = self.deadlines.for_audio(_declared_duration(await source.head()))
        waited = deadline + _TRANSFER_MARGIN_SECONDS + source.size / _TRANSFER_BYTES_PER_SECOND
        # Closed whatever happens: a refusal from the header alone leaves the body unread.
        body = _counted(source.chunks(), on_progress)
        try:
            with anyio.fail_after(waited):
                async with (
                    aclosing(body),
                    self._http.stream(
                        "POST",
                        "/transcode",
                        params={
                            "max_duration_seconds": max_duration_seconds,
                            "deadline_seconds": round(deadline, 3),
                            **(options or AudioOptions()).as_fields(),
                        },
                        headers={
                            "Content-Type": "audio/wav",
                            "Accept": MULTIPART_MIXED,
                            "X-Request-ID": request_id,
                        },
                        content=body,
                        timeout=httpx.Timeout(waited, connect=_CONNECT_SECONDS),
                    ) as response,
                ):
                    if response.status_code != 200:
                        raise await _failure(response)
                    bundle = await _save_bundle(response, destination)
        except httpx.ConnectTimeout as error:
            raise TranscoderUnavailable() from error
        except (httpx.TimeoutException, TimeoutError) as error:
            raise TranscodeTimeout(
                f"Transcoding took longer than its deadline of {deadline:g} s; nothing was stored."
            ) from error
        except httpx.TransportError as error:
            raise TranscoderUnavailable() from error
        try:
            facts = AudioFacts.from_json(bundle.parts[FACTS_TYPE])
            peaks = bundle.parts[PEAKS_TYPE]
        except (KeyError, ValueError, TypeError) as error:
            raise TranscoderUnavailable() from error
        return Transcoded(
            path=destination,
            size_bytes=bundle.mp3_bytes,
            sha256=bundle.sha256,
            duration_seconds=facts.duration_seconds,
            channels=facts.channels,
            sample_rate=facts.sample_rate,
            bitrate=facts.bitrate,
            bitrate_kbps=facts.bitrate_kbps,
            mode=facts.mode,
            tags=facts.tags,
            integrated_lufs=facts.integrated_lufs,
            true_peak_dbtp=facts.true_peak_dbtp,
            peaks=peaks,
        )

    async def check(self) -> None:
        """Raise ``TranscoderUnavailable`` unless the transcoder answers its health check soon."""
        try:
            response = await self._http.get("/healthz", timeout=2.0)
        except httpx.HTTPError as error:
            raise TranscoderUnavailable() from error
        if response.status_code != 200:
            raise TranscoderUnavailable()

    async def aclose(self) -> None:
        await self._http.aclose()


@dataclass(slots=True)
class _Bundle:
    """The transcoder's multipart/mixed answer: small parts in memory, the MP3 on disk."""

    parts: dict[str, bytes] = field(default_factory=dict)
    mp3_bytes: int = 0
    sha256: str = ""


class _BundleReader:
    """python-multipart callbacks; MP3 bytes collect in ``pending`` until written out."""

    def __init__(self) -> None:
        self.parts: dict[str, bytearray] = {}
        self.digest = hashlib.sha256()
        self.mp3_bytes = 0
        self.pending = bytearray()
        self.finished = False
        self._type = ""
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[str, str] = {}

    def on_part_begin(self) -> None:
        self._headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value.decode("latin-1")
        self._field.clear()
        self._value.clear()

    def on_headers_finished(self) -> None:
        self._type = self._headers.get("content-type", "").strip()
        if self._type != MP3_TYPE:
            self.parts[self._type] = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        piece = data[start:end]
        if self._type == MP3_TYPE:
            self.digest.update(piece)
            self.mp3_bytes += len(piece)
            self.pending += piece
            return
        part = self.parts[self._type]
        part += piece
        if len(part) > _MAX_SIDE_PART_BYTES:
            raise ValueError(f"the transcoder's {self._type} part is too large")

    def on_end(self) -> None:
        self.finished = True


async def _save_bundle(response: httpx.Response, destination: Path) -> _Bundle:
    """Parse the multipart/mixed body as it streams; the MP3 part goes to ``destination``."""
    _, options = parse_options_header(response.headers.get("Content-Type", ""))
    boundary = options.get(b"boundary")
    if not boundary:
        raise TranscoderUnavailable("The transcoder answered without a multipart boundary.")
    reader = _BundleReader()
    parser = parser_for(boundary, reader)
    try:
        async with await anyio.open_file(destination, "wb") as out:
            async for chunk in response.aiter_bytes(_CHUNK_BYTES):
                parser.write(chunk)
                if reader.pending:
                    await out.write(bytes(reader.pending))
                    reader.pending.clear()
            parser.finalize()
    except (MultipartParseError, ValueError) as error:
        raise TranscoderUnavailable() from error
    if not reader.finished or reader.mp3_bytes == 0:
        raise TranscoderUnavailable()
    parts = {name: bytes(value) for name, value in reader.parts.items()}
    return _Bundle(parts, reader.mp3_bytes, reader.digest.hexdigest())


def _declared_duration(head: bytes) -> float | None:
    """The duration the WAV header declares, if it declares one (and parses)."""
    try:
        header = wav.parse_header(head, complete=True)
    except ServiceError:
        return None  # the transcoder says what is wrong with it
    return header.duration_seconds if header is not None else None


async def _counted(
    chunks: AsyncIterator[bytes], on_progress: Callable[[int], None] | None
) -> AsyncGenerator[bytes, None]:
    sent = 0
    async for chunk in chunks:
        yield chunk
        # The transcoder reads as it encodes: what it took is how far the encode got.
        sent += len(chunk)
        if on_progress is not None:
            on_progress(sent)


async def _failure(response: httpx.Response) -> Exception:
    """The API error for a transcoder answer other than 200: its own problem type when the
    contract knows it (``audio-too-long`` stays ``audio-too-long``), else 503."""
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > _MAX_PROBLEM_BYTES:
            break
    try:
        problem = json.loads(body)
        slug = str(problem.get("type", "")).removeprefix(PROBLEM_BASE)
        detail = str(problem.get("detail", ""))
    except (ValueError, AttributeError):
        slug = detail = ""
    if response.status_code == 503:
        retry_after = response.headers.get("Retry-After", "")
        return TranscoderUnavailable(
            detail or None, int(retry_after) if retry_after.isdigit() else None
        )
    error = error_for_slug(slug)
    if (error is not None and 400 <= error.status < 500) or error is TranscodeTimeout:
        assert error is not None
        return error(detail or error.title)
    return TranscoderUnavailable()
