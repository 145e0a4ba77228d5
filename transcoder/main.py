"""The transcoder's HTTP face: ``POST /transcode`` and ``GET /healthz``.

Run with ``uvicorn transcoder.main:create_app --factory --port 8001``.
"""

import asyncio
import logging
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from servicekit.logs import configure_logging
from servicekit.problems import PROBLEM_JSON, problem_response
from transcoder.config import Settings
from transcoder.encoder import Encoder
from transcoder.errors import TranscodeError
from transcoder.observability import Metrics, install_middleware

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; settings come from the environment unless given."""
    settings = settings or Settings()
    configure_logging()
    app = FastAPI(title="riffle transcoder", version="1")
    app.state.settings = settings
    app.state.metrics = metrics = Metrics.create()
    app.state.encoder = Encoder(
        ffmpeg=settings.ffmpeg_executable(),
        bitrate=settings.mp3_bitrate,
        timeout_seconds=settings.transcode_timeout_seconds,
        parallel_min_seconds=settings.parallel_encode_min_seconds or None,
    )
    # Bounds the ffmpeg processes (and their memory) however many requests arrive; the rest wait.
    app.state.encode_slots = asyncio.Semaphore(settings.max_concurrent_encodes)
    app.include_router(router)
    app.add_exception_handler(TranscodeError, _transcode_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
    install_middleware(app, metrics)
    return app


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _encoder(request: Request) -> Encoder:
    encoder: Encoder = request.app.state.encoder
    return encoder


def _encode_slots(request: Request) -> asyncio.Semaphore:
    slots: asyncio.Semaphore = request.app.state.encode_slots
    return slots


def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(_settings)]
EncoderDep = Annotated[Encoder, Depends(_encoder)]
EncodeSlotsDep = Annotated[asyncio.Semaphore, Depends(_encode_slots)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]

router = APIRouter()

_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}


@router.post(
    "/transcode",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"audio/mpeg": {}},
            "description": "The MP3; X-Audio-Duration-Seconds, -Channels, -Sample-Rate, -Bitrate.",
        },
        415: {"description": "Not a WAV file", **_PROBLEM},
        422: {"description": "A WAV whose audio is unusable or too long", **_PROBLEM},
        504: {"description": "The encode passed TRANSCODE_TIMEOUT_SECONDS", **_PROBLEM},
    },
)
async def transcode(
    request: Request,
    settings: SettingsDep,
    encoder: EncoderDep,
    encode_slots: EncodeSlotsDep,
    metrics: MetricsDep,
    max_duration_seconds: Annotated[float | None, Query(gt=0, allow_inf_nan=False)] = None,
) -> Response:
    """Convert the WAV request body (streamed, any Content-Type) to an MP3."""
    limit = min(max_duration_seconds or math.inf, settings.max_duration_seconds)
    output = await asyncio.to_thread(_new_temporary_mp3)
    started = time.perf_counter()
    try:
        async with encode_slots:
            info = await encoder.encode(request.stream(), output=output, max_duration_seconds=limit)
    except BaseException:
        await asyncio.to_thread(output.unlink, missing_ok=True)
        raise
    metrics.encode_seconds.observe(time.perf_counter() - started)
    metrics.audio_seconds.inc(info.duration_seconds)
    headers = {
        "X-Audio-Duration-Seconds": repr(info.duration_seconds),
        "X-Audio-Channels": str(info.channels),
        "X-Audio-Sample-Rate": str(info.sample_rate),
        "X-Audio-Bitrate": str(info.bitrate),
    }
    return TemporaryFileResponse(output, media_type="audio/mpeg", headers=headers)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    """Prometheus metrics: requests, encode time, audio seconds, bytes in and out, failures."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


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


async def _transcode_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, TranscodeError)
    metrics: Metrics = request.app.state.metrics
    metrics.failures.labels(str(error.status), error.slug).inc()
    if error.status >= 500 and error.status != 504:
        logger.error("transcode failed: %s", error.detail, exc_info=error)
    return problem_response(error.status, detail=error.detail, slug=error.slug, title=error.title)


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()]
    return problem_response(
        422, detail="The request is not valid.", slug="validation-error", errors=errors
    )


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    return problem_response(error.status_code, detail=str(error.detail), headers=error.headers)


async def _client_disconnect(request: Request, error: Exception) -> Response:
    # Nobody reads this answer; it only ends the request without logging a stack.
    logger.info("client disconnected during %s %s", request.method, request.url.path)
    return problem_response(
        400, detail="The client disconnected before the request body was complete."
    )
