"""The gateway's one connection to the transcoder: WAV file in, MP3 file and audio facts out."""

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from servicekit.errors import DependencyUnavailable, NotAWav, TranscodeTimeout, UndecodableAudio

_CHUNK_BYTES = 1024 * 1024
_MAX_PROBLEM_BYTES = 64 * 1024


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
    def __init__(self) -> None:
        super().__init__("transcoder")


class TranscoderClient:
    """One pooled HTTP client, built at start-up; a long encode is normal, so reads wait long."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self._http = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            # The transcoder enforces the encode deadline itself (504); this margin covers transfer.
            timeout=httpx.Timeout(timeout_seconds + 30, connect=5.0, pool=30.0),
        )

    async def transcode(
        self, wav: Path, *, destination: Path, max_duration_seconds: float, request_id: str
    ) -> Transcoded:
        """Send ``wav``, write the MP3 to ``destination``; map every failure to an API error."""
        try:
            async with self._http.stream(
                "POST",
                "/transcode",
                params={"max_duration_seconds": max_duration_seconds},
                headers={"Content-Type": "audio/wav", "X-Request-ID": request_id},
                content=_read_chunks(wav),
            ) as response:
                if response.status_code != 200:
                    raise await _failure(response)
                size, digest = await _save(response.aiter_bytes(_CHUNK_BYTES), destination)
                facts = response.headers
        except httpx.ConnectTimeout as error:
            raise TranscoderUnavailable() from error
        except httpx.TimeoutException as error:
            raise TranscodeTimeout(
                f"Transcoding took longer than {self.timeout_seconds:g} s; nothing was stored."
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


async def _read_chunks(path: Path) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as source:
        while chunk := await source.read(_CHUNK_BYTES):
            yield chunk


async def _save(chunks: AsyncIterator[bytes], destination: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    async with await anyio.open_file(destination, "wb") as out:
        async for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            await out.write(chunk)
    return size, digest.hexdigest()


async def _failure(response: httpx.Response) -> Exception:
    """The API error for a transcoder answer other than 200."""
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > _MAX_PROBLEM_BYTES:
            break
    try:
        detail = str(json.loads(body).get("detail", ""))
    except (ValueError, AttributeError):
        detail = ""
    if response.status_code == 415:
        return NotAWav(detail or "The file is not a WAV file.")
    if response.status_code == 422:
        return UndecodableAudio(detail or "The WAV file cannot be decoded.")
    if response.status_code == 504:
        return TranscodeTimeout(detail or "Transcoding took too long; nothing was stored.")
    return TranscoderUnavailable()
