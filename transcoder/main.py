"""The transcoder's HTTP face: ``POST /transcode`` and ``GET /healthz``.

Run with ``uvicorn transcoder.main:create_app --factory --port 8001``.
"""

import asyncio
import logging
import math
import os
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
from servicekit.errors import ServiceError
from servicekit.logs import configure_logging
from servicekit.problems import PROBLEM_JSON, install_problem_handlers, problem_response
from servicekit.scratch import claim_scratch
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
        return cls(
            settings=settings,
            encoder=Encoder(
                ffmpeg=settings.ffmpeg_executable(),
                bitrate=settings.mp3_bitrate,
                timeout_seconds=settings.transcode_timeout_seconds,
                parallel_min_seconds=settings.parallel_encode_min_seconds or None,
                # Bounds the ffmpeg processes (and their memory) however many requests arrive.
                slots=EncodeSlots(
                    settings.max_concurrent_encodes, max_waiting=settings.max_queued_encodes
                ),
            ),
            metrics=metrics or Metrics.create(),
        )


def create_app(settings: Settings | None = None, *, resources: Resources | None = None) -> FastAPI:
    """Build the app; settings come from the environment unless given (or ``resources``)."""
    configure_logging()
    if resources is None:
        resources = Resources.build(settings or Settings())
    prebuilt = resources

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Resources]]:
        await asyncio.to_thread(claim_scratch)
        yield {"resources": prebuilt}

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


@router.post(
    "/transcode",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"audio/mpeg": {}},
            "description": "The MP3; X-Audio-Duration-Seconds, -Channels, -Sample-Rate, -Bitrate.",
        },
        415: {"description": "Not a WAV file", **_PROBLEM},
        503: {"description": "No encoder free (Retry-After)", **_PROBLEM},
        422: {"description": "A WAV whose audio is unusable or too long", **_PROBLEM},
        504: {"description": "The encode passed TRANSCODE_TIMEOUT_SECONDS", **_PROBLEM},
    },
)
async def transcode(
    request: Request,
    resources: ResourcesDep,
    max_duration_seconds: Annotated[float | None, Query(gt=0, allow_inf_nan=False)] = None,
    deadline_seconds: Annotated[float | None, Query(gt=0, allow_inf_nan=False)] = None,
) -> Response:
    """Convert the WAV request body (streamed, any Content-Type) to an MP3.

    ``deadline_seconds``: the caller's deadline, waiting for an encoder included (at most
    ``TRANSCODE_TIMEOUT_SECONDS``); past it the answer is 504, or 503 if no encoder was free.
    """
    settings, metrics = resources.settings, resources.metrics
    limit = min(max_duration_seconds or math.inf, settings.max_duration_seconds)
    output = await asyncio.to_thread(_new_temporary_mp3)
    started = time.perf_counter()
    try:
        info = await resources.encoder.encode(
            request.stream(),
            output=output,
            max_duration_seconds=limit,
            deadline_seconds=deadline_seconds,
        )
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


def _count_failure(request: Request, status: int, slug: str, error: Exception) -> None:
    if isinstance(error, ServiceError):
        get_resources(request).metrics.failures.labels(str(status), slug).inc()


async def _client_disconnect(request: Request, error: Exception) -> Response:
    # Nobody reads this answer; it only ends the request without logging a stack.
    logger.info("client disconnected during %s %s", request.method, request.url.path)
    return problem_response(
        400, detail="The client disconnected before the request body was complete."
    )
