"""The gateway's one connection to the transcoder: WAV file in, MP3 file and audio facts out."""

import hashlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import httpx

from servicekit import wav
from servicekit.errors import (
    PROBLEM_BASE,
    DependencyUnavailable,
    NotAWav,
    ServiceError,
    TranscodeTimeout,
    UndecodableAudio,
    error_for_slug,
)

if TYPE_CHECKING:
    from gateway.conversion import WavSource

_CHUNK_BYTES = 1024 * 1024
_MAX_PROBLEM_BYTES = 64 * 1024
# The problems of the input the transcoder finds, answered to the client as they are.
_PASSED_THROUGH = (NotAWav, UndecodableAudio, TranscodeTimeout)
_CONNECT_SECONDS = 2.0
# Beyond the encode deadline: sending the WAV and receiving the MP3 (a slow link still passes).
_TRANSFER_MARGIN_SECONDS = 2.0
_TRANSFER_BYTES_PER_SECOND = 20e6


@dataclass(frozen=True, slots=True)
class Transcoded:
    """An MP3 the transcoder produced, written to ``path``."""

    path: Path
    size_bytes: int
    sha256: str
    duration_seconds: float
    channels: int
    sample_rate: int
    bitrate: int


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
                        },
                        headers={"Content-Type": "audio/wav", "X-Request-ID": request_id},
                        content=body,
                        timeout=httpx.Timeout(waited, connect=_CONNECT_SECONDS),
                    ) as response,
                ):
                    if response.status_code != 200:
                        raise await _failure(response)
                    size, digest = await _save(response.aiter_bytes(_CHUNK_BYTES), destination)
                    facts = response.headers
        except httpx.ConnectTimeout as error:
            raise TranscoderUnavailable() from error
        except (httpx.TimeoutException, TimeoutError) as error:
            raise TranscodeTimeout(
                f"Transcoding took longer than its deadline of {deadline:g} s; nothing was stored."
            ) from error
        except httpx.TransportError as error:
            raise TranscoderUnavailable() from error
        try:
            return Transcoded(
                path=destination,
                size_bytes=size,
                sha256=digest,
                duration_seconds=float(facts["X-Audio-Duration-Seconds"]),
                channels=int(facts["X-Audio-Channels"]),
                sample_rate=int(facts["X-Audio-Sample-Rate"]),
                bitrate=int(facts["X-Audio-Bitrate"]),
            )
        except (KeyError, ValueError) as error:
            raise TranscoderUnavailable() from error

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


async def _save(chunks: AsyncIterator[bytes], destination: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    async with await anyio.open_file(destination, "wb") as out:
        async for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            await out.write(chunk)
    return size, digest.hexdigest()


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
