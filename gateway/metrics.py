"""The gateway's Prometheus metrics: one registry per app, so each app (and test) counts alone.

HTTP metrics are recorded by ``gateway.middleware.AccessMiddleware``; the domain metrics by the
error handlers (rejected uploads, dependency errors), the upload route (bytes stored) and
``MeteredTranscoderClient`` (transcode time, audio seconds).
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from starlette.types import Scope

from gateway.errors import DependencyUnavailable
from gateway.transcoder_client import Transcoded, TranscoderClient

# Uploads of long recordings take minutes: the default buckets stop at 10 s.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
TRANSCODE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# DependencyUnavailable names the dependency in prose; metrics use one short kind for each.
DEPENDENCY_KINDS = {"database": "database", "object storage": "storage", "transcoder": "transcoder"}
UPLOAD_ROUTE = ("POST", "/record")
UNMATCHED_ROUTE = "unmatched"


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/users/{user_id}/records``), or ``unmatched``."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if template:
        return str(template)
    if "endpoint" in scope and not scope.get("path_params"):
        # A plain route FastAPI adds itself (/openapi.json, /docs): fixed paths, no parameters.
        return str(scope["path"])
    return UNMATCHED_ROUTE


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    request_seconds: Histogram
    received_bytes: Counter
    sent_bytes: Counter
    transcode_seconds: Histogram
    audio_seconds: Counter
    stored_bytes: Counter
    uploads_rejected: Counter
    dependency_errors: Counter
    dependency_up: Gauge

    @classmethod
    def create(cls) -> "Metrics":
        # The client's per-series `_created` timestamps double the output for no reader's gain.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=registry)  # CPU, memory, open files of this process
        route = ["method", "route"]
        return cls(
            registry=registry,
            requests=Counter(
                "riffle_http_requests",
                "HTTP requests answered, by route template and status.",
                [*route, "status"],
                registry=registry,
            ),
            request_seconds=Histogram(
                "riffle_http_request_duration_seconds",
                "Time from request start to the end of the response, by route and status.",
                [*route, "status"],
                buckets=REQUEST_BUCKETS,
                registry=registry,
            ),
            received_bytes=Counter(
                "riffle_http_received_bytes",
                "Request body bytes read, by route.",
                route,
                registry=registry,
            ),
            sent_bytes=Counter(
                "riffle_http_sent_bytes",
                "Response body bytes sent, by route.",
                route,
                registry=registry,
            ),
            transcode_seconds=Histogram(
                "riffle_transcode_duration_seconds",
                "Wall time of successful transcoder calls: from sending the WAV to the whole MP3.",
                buckets=TRANSCODE_BUCKETS,
                registry=registry,
            ),
            audio_seconds=Counter(
                "riffle_audio_transcoded_seconds",
                "Seconds of audio converted to MP3.",
                registry=registry,
            ),
            stored_bytes=Counter(
                "riffle_stored_bytes",
                "MP3 bytes stored for recordings that were added.",
                registry=registry,
            ),
            uploads_rejected=Counter(
                "riffle_uploads_rejected",
                "Uploads answered with an error, by status and problem type.",
                ["status", "reason"],
                registry=registry,
            ),
            dependency_errors=Counter(
                "riffle_dependency_errors",
                "Requests that failed because a dependency was unavailable, by dependency.",
                ["dependency"],
                registry=registry,
            ),
            dependency_up=Gauge(
                "riffle_dependency_up",
                "1 when the dependency answered the last readiness check, else 0.",
                ["dependency"],
                registry=registry,
            ),
        )

    def observe_problem(self, request: Request, status: int, slug: str, error: Exception) -> None:
        """Count a problem answer: a rejected upload, a dependency that failed (``ProblemHook``)."""
        if isinstance(error, DependencyUnavailable):
            kind = DEPENDENCY_KINDS.get(error.dependency, error.dependency)
            self.dependency_errors.labels(kind).inc()
        if (request.method, route_template(request.scope)) == UPLOAD_ROUTE:
            self.uploads_rejected.labels(str(status), slug).inc()


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]


class MeteredTranscoderClient(TranscoderClient):
    """The transcoder client, timing each successful transcode and counting its audio."""

    def __init__(self, base_url: str, *, timeout_seconds: float, metrics: Metrics) -> None:
        super().__init__(base_url, timeout_seconds=timeout_seconds)
        self._metrics = metrics

    async def transcode(
        self, wav: Path, *, destination: Path, max_duration_seconds: float, request_id: str
    ) -> Transcoded:
        started = time.perf_counter()
        transcoded = await super().transcode(
            wav,
            destination=destination,
            max_duration_seconds=max_duration_seconds,
            request_id=request_id,
        )
        self._metrics.transcode_seconds.observe(time.perf_counter() - started)
        self._metrics.audio_seconds.inc(transcoded.duration_seconds)
        return transcoded
