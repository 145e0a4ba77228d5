"""The transcoder's HTTP face: ``POST /transcode``, ``POST /segment`` (another transcoder's
segment of a long recording) and ``GET /healthz``.

Run with ``uvicorn transcoder.main:create_app --factory --port 8001``.
"""

import asyncio
import logging
import math
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from servicekit import __version__
from servicekit.audio_options import CBR_KBPS, TEXT_FIELDS, AudioOptions
from servicekit.errors import ServiceError
from servicekit.logs import configure_logging
from servicekit.malloc import tune_malloc
from servicekit.problems import PROBLEM_JSON, install_problem_handlers, problem_response
from servicekit.scratch import claim_scratch
from servicekit.transcoded import (
    FACTS_TYPE,
    MP3_TYPE,
    MULTIPART_MIXED,
    PEAKS_TYPE,
    AudioFacts,
    closing,
    part_head,
)
from transcoder.admission import EncodeSlots
from transcoder.config import Settings
from transcoder.encoder import Encoder
from transcoder.observability import Metrics, install_middleware

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Resources:
    """Everything a request may use, built once per app by its lifespan."""

    settings: Settings
    encoder: Encoder
    metrics: Metrics

    @classmethod
    def build(cls, settings: Settings, metrics: Metrics | None = None) -> "Resources":
        peers = None
        if urls := settings.peer_urls():
            from transcoder.peers import Peers  # httpx, only where there are peers

            peers = Peers(urls, timeout_seconds=settings.segment_timeout_seconds)
        return cls(
            settings=settings,
            encoder=Encoder(
                ffmpeg=settings.ffmpeg_executable(),
                bitrate=settings.mp3_bitrate,
                timeout_seconds=settings.transcode_timeout_seconds,
                parallel_min_seconds=settings.parallel_encode_min_seconds or None,
                in_process=settings.encode_in_process,
                # Bounds the ffmpeg processes (and their memory) however many requests arrive.
                slots=EncodeSlots(
                    settings.max_concurrent_encodes, max_waiting=settings.max_queued_encodes
                ),
                peers=peers,
            ),
            metrics=metrics or Metrics.create(),
        )


def create_app(settings: Settings | None = None, *, resources: Resources | None = None) -> FastAPI:
    """Build the app; settings come from the environment unless given (or ``resources``)."""
    tune_malloc()  # before any thread allocates: servicekit.malloc says why
    # httpx (the peers' client) logs every call at INFO; the peers' access lines say it.
    configure_logging(quiet=["httpx"])
    owned = resources is None  # built here, so closed here; else its owner closes it
    if resources is None:
        resources = Resources.build(settings or Settings())
    prebuilt = resources

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Resources]]:
        await asyncio.to_thread(claim_scratch)
        try:
            yield {"resources": prebuilt}
        finally:
            if owned and prebuilt.encoder.peers is not None:
                await prebuilt.encoder.peers.aclose()

    app = FastAPI(title="riffle transcoder", version=__version__, lifespan=lifespan)
    app.include_router(router)
    install_problem_handlers(app, on_problem=_count_failure)
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
    install_middleware(app, resources.metrics)
    return app


def get_resources(request: Request) -> Resources:
    """The lifespan's resources (Starlette copies lifespan state into every request's state)."""
    resources: Resources = request.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]

router = APIRouter()

_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}


_OPTION_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "bitrate",
        "in": "query",
        "required": False,
        "description": "CBR kbit/s (32-320, MPEG-1 rates; at most 160 below 32 kHz output).",
        "schema": {"type": "integer", "enum": list(CBR_KBPS)},
    },
    {
        "name": "quality",
        "in": "query",
        "required": False,
        "description": "VBR, LAME -V 0 (best) to 9; not with bitrate.",
        "schema": {"type": "integer", "minimum": 0, "maximum": 9},
    },
    *(
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": f"ID3 {name} (at most 255 characters); else the WAV's own.",
            "schema": {"type": "string", "maxLength": 255},
        }
        for name in TEXT_FIELDS
    ),
]


@router.post(
    "/transcode",
    response_class=FileResponse,
    openapi_extra={"parameters": _OPTION_PARAMETERS},
    responses={
        200: {
            "content": {"audio/mpeg": {}, MULTIPART_MIXED: {}},
            "description": "The MP3; X-Audio-Duration-Seconds, -Channels, -Sample-Rate, -Bitrate, "
            "-Mode, -Bitrate-Kbps, -Integrated-LUFS, -True-Peak-dBTP. With Accept: "
            "multipart/mixed: the facts (JSON), the peaks (audiowaveform .dat) and the MP3.",
        },
        415: {"description": "Not a WAV file", **_PROBLEM},
        503: {"description": "No encoder free (Retry-After)", **_PROBLEM},
        422: {
            "description": "Bad options, or a WAV whose audio is unusable or too long",
            **_PROBLEM,
        },
        504: {"description": "The encode passed TRANSCODE_TIMEOUT_SECONDS", **_PROBLEM},
    },
)
async def transcode(
    request: Request,
    resources: ResourcesDep,
    max_duration_seconds: Annotated[float | None, Query(gt=0, allow_inf_nan=False)] = None,
    deadline_seconds: Annotated[float | None, Query(gt=0, allow_inf_nan=False)] = None,
) -> Response:
    """Convert the WAV request body (streamed, any Content-Type) to a tagged MP3.

    ``deadline_seconds``: the caller's deadline, waiting for an encoder included (at most
    ``TRANSCODE_TIMEOUT_SECONDS``); past it the answer is 504, or 503 if no encoder was free.
    The options (``bitrate`` or ``quality``, ``title``, ``artist``, ``album``, ``comment``) are
    checked again here, as the gateway checks them: this is a service of its own.
    """
    options = AudioOptions.from_fields(request.query_params, loc=("query",))
    settings, metrics = resources.settings, resources.metrics
    limit = min(max_duration_seconds or math.inf, settings.max_duration_seconds)
    output = await asyncio.to_thread(_new_temporary_mp3)
    started = time.perf_counter()
    try:
        encoded = await resources.encoder.encode(
            request.stream(),
            output=output,
            max_duration_seconds=limit,
            deadline_seconds=deadline_seconds,
            options=options,
            arrived_on=_server_address(request),
        )
    except BaseException:
        await asyncio.to_thread(output.unlink, missing_ok=True)
        raise
    info = encoded.info
    metrics.encode_seconds.observe(time.perf_counter() - started)
    metrics.audio_seconds.inc(info.duration_seconds)
    loudness = encoded.loudness
    facts = AudioFacts(
        duration_seconds=info.duration_seconds,
        channels=info.channels,
        sample_rate=info.sample_rate,
        bitrate=info.bitrate,
        bitrate_kbps=encoded.bitrate_kbps,
        mode=encoded.mode,
        tags=encoded.tags,
        integrated_lufs=loudness.integrated_lufs if loudness else None,
        true_peak_dbtp=loudness.true_peak_dbtp if loudness else None,
    )
    if MULTIPART_MIXED in request.headers.get("Accept", ""):
        return BundleResponse(output, facts.to_json(), encoded.peaks.to_dat())
    headers = {
        "X-Audio-Duration-Seconds": repr(info.duration_seconds),
        "X-Audio-Channels": str(info.channels),
        "X-Audio-Sample-Rate": str(info.sample_rate),
        "X-Audio-Bitrate": str(info.bitrate),
        "X-Audio-Mode": encoded.mode,
        "X-Audio-Bitrate-Kbps": str(encoded.bitrate_kbps),
        "X-Audio-Integrated-LUFS": str(facts.integrated_lufs),
        "X-Audio-True-Peak-dBTP": str(facts.true_peak_dbtp),
    }
    return TemporaryFileResponse(output, media_type="audio/mpeg", headers=headers)


@router.post(
    "/segment",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"audio/mpeg": {}},
            "description": "The segment's frames behind an Info frame, no tags.",
        },
        415: {"description": "Not a WAV file", **_PROBLEM},
        422: {"description": "Not 16-bit PCM of known size, or a bad bitrate", **_PROBLEM},
        503: {"description": "No encoder free (Retry-After)", **_PROBLEM},
        504: {"description": "The encode passed its deadline", **_PROBLEM},
    },
)
async def segment(
    request: Request,
    resources: ResourcesDep,
    bitrate: Annotated[int, Query(description="CBR kbit/s, as /transcode takes it.")],
    deadline_seconds: Annotated[float | None, Query(gt=0, allow_inf_nan=False)] = None,
) -> Response:
    """Encode one segment of another transcoder's split encode (``SEGMENT_PEERS``,
    transcoder/peers.py): a 16-bit PCM WAV, as CBR with LAME's bit reservoir on, no loudness,
    peaks or tags. The caller joins it with its own segments; this transcoder never passes it
    on."""
    kbps = AudioOptions.from_fields(request.query_params, loc=("query",)).bitrate_kbps
    assert kbps is not None  # the query requires it
    settings = resources.settings
    output = await asyncio.to_thread(_new_temporary_mp3)
    try:
        await resources.encoder.encode_segment(
            request.stream(),
            output=output,
            kbps=kbps,
            max_duration_seconds=settings.max_duration_seconds,
            deadline_seconds=deadline_seconds,
        )
    except BaseException:
        await asyncio.to_thread(output.unlink, missing_ok=True)
        raise
    resources.metrics.segments.inc()
    return TemporaryFileResponse(output, media_type="audio/mpeg")


def _server_address(request: Request) -> tuple[str, int] | None:
    server = request.scope.get("server")
    return (str(server[0]), int(server[1])) if server and server[1] is not None else None


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", response_class=Response)
async def metrics(resources: ResourcesDep) -> Response:
    """Prometheus metrics: requests, encode time, audio seconds, bytes in and out, failures."""
    return Response(generate_latest(resources.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _new_temporary_mp3() -> Path:
    descriptor, name = tempfile.mkstemp(prefix="riffle-transcode-", suffix=".mp3")
    os.close(descriptor)
    return Path(name)


class TemporaryFileResponse(FileResponse):
    """A FileResponse whose file is deleted once sent, or once sending failed."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await asyncio.to_thread(Path(self.path).unlink, missing_ok=True)


class BundleResponse(Response):
    """multipart/mixed: facts, peaks, then the MP3 streamed from its temporary file, which is
    deleted once sent, or once sending failed (``servicekit.transcoded``)."""

    def __init__(self, mp3: Path, facts: bytes, peaks: bytes) -> None:
        self.mp3 = mp3
        self.boundary = secrets.token_hex(16)
        self.head = (
            part_head(self.boundary, FACTS_TYPE, first=True)
            + facts
            + part_head(self.boundary, PEAKS_TYPE)
            + peaks
            + part_head(self.boundary, MP3_TYPE)
        )
        super().__init__(media_type=f'{MULTIPART_MIXED}; boundary="{self.boundary}"')

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            size = (await asyncio.to_thread(self.mp3.stat)).st_size
            tail = closing(self.boundary)
            self.headers["Content-Length"] = str(len(self.head) + size + len(tail))
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": self.head, "more_body": True})
            with await asyncio.to_thread(self.mp3.open, "rb") as source:
                while chunk := await asyncio.to_thread(source.read, _SEND_CHUNK_BYTES):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": tail})
        finally:
            await asyncio.to_thread(self.mp3.unlink, missing_ok=True)


_SEND_CHUNK_BYTES = 256 * 1024


def _count_failure(request: Request, status: int, slug: str, error: Exception) -> None:
    if isinstance(error, ServiceError):
        get_resources(request).metrics.failures.labels(str(status), slug).inc()


async def _client_disconnect(request: Request, error: Exception) -> Response:
    # Nobody reads this answer; it only ends the request without logging a stack.
    logger.info("client disconnected during %s %s", request.method, request.url.path)
    return problem_response(
        400, detail="The client disconnected before the request body was complete."
    )
