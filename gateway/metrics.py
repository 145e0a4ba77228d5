"""The gateway's Prometheus metrics: one registry per app, so each app (and test) counts alone.

The HTTP metrics (``riffle_http_*``) are recorded by ``servicekit.middleware.AccessMiddleware``; the
domain metrics by the error handlers (rejected uploads, dependency errors), the upload route (bytes
stored) and ``MeteredTranscoderClient`` (transcode time, audio seconds).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from fastapi import Request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway.transcoder_client import Deadlines, Transcoded, TranscoderClient
from servicekit.audio_options import AudioOptions
from servicekit.errors import DependencyUnavailable
from servicekit.metrics import HttpMetrics, new_registry, route_template

if TYPE_CHECKING:
    from gateway.conversion import WavSource

TRANSCODE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
UPLOAD_ROUTE = ("POST", "/record")
# Problem type -> the fair-use limit it reports (gateway.fair_use).
FAIR_USE_LIMITS = {"too-many-uploads": "in_flight", "quota-exceeded": "quota"}


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry
    http: HttpMetrics
    transcode_seconds: Histogram
    audio_seconds: Counter
    stored_bytes: Counter
    uploads_rejected: Counter
    dependency_errors: Counter
    dependency_up: Gauge
    fair_use_refusals: Counter

    @classmethod
    def create(cls) -> "Metrics":
        registry = new_registry()
        return cls(
            registry=registry,
            http=HttpMetrics.create(registry, prefix="riffle_http"),
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
            fair_use_refusals=Counter(
                "riffle_fair_use_refusals",
                "Uploads refused by fair use: too many in flight (429) or the quota (413).",
                ["limit"],
                registry=registry,
            ),
        )

    def observe_problem(self, request: Request, status: int, slug: str, error: Exception) -> None:
        """Count a problem answer: a rejected upload, a dependency that failed (``ProblemHook``)."""
        if isinstance(error, DependencyUnavailable):
            self.dependency_errors.labels(error.kind).inc()
        if slug in FAIR_USE_LIMITS:
            self.fair_use_refusals.labels(FAIR_USE_LIMITS[slug]).inc()
        if (request.method, route_template(request.scope)) == UPLOAD_ROUTE:
            self.uploads_rejected.labels(str(status), slug).inc()


class MeteredTranscoderClient(TranscoderClient):
    """The transcoder client, timing each successful transcode and counting its audio."""

    def __init__(
        self,
        base_url: str,
        *,
        deadlines: Deadlines,
        metrics: Metrics,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, deadlines=deadlines, transport=transport)
        self._metrics = metrics

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
        started = time.perf_counter()
        transcoded = await super().transcode(
            source,
            destination=destination,
            max_duration_seconds=max_duration_seconds,
            request_id=request_id,
            options=options,
            on_progress=on_progress,
        )
        self._metrics.transcode_seconds.observe(time.perf_counter() - started)
        self._metrics.audio_seconds.inc(transcoded.duration_seconds)
        return transcoded
