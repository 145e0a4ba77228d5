"""The transcoder's logs and metrics: servicekit's log lines, access line and HTTP metrics (as
``transcoder.access`` and ``riffle_transcoder_http_*``), keeping the gateway's ``X-Request-ID``,
plus the encode metrics, in a per-app registry."""

from dataclasses import dataclass

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram

from servicekit.metrics import HttpMetrics, new_registry
from servicekit.middleware import AccessMiddleware, RequestIdMiddleware
from servicekit.problems import UnhandledErrorMiddleware

ACCESS_LOGGER = "transcoder.access"
ENCODE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry
    http: HttpMetrics
    encode_seconds: Histogram
    audio_seconds: Counter
    failures: Counter
    segments: Counter

    @classmethod
    def create(cls) -> "Metrics":
        registry = new_registry()
        return cls(
            registry=registry,
            http=HttpMetrics.create(
                registry,
                prefix="riffle_transcoder_http",
                received_help="Request body bytes read (the WAVs), by route.",
                sent_help="Response body bytes sent (the MP3s), by route.",
            ),
            encode_seconds=Histogram(
                "riffle_transcoder_encode_duration_seconds",
                "Wall time of successful encodes, from the first WAV byte to the finished MP3.",
                buckets=ENCODE_BUCKETS,
                registry=registry,
            ),
            audio_seconds=Counter(
                "riffle_transcoder_audio_seconds",
                "Seconds of audio encoded to MP3.",
                registry=registry,
            ),
            failures=Counter(
                "riffle_transcoder_failures",
                "Transcodes that failed, by status and problem type.",
                ["status", "reason"],
                registry=registry,
            ),
            segments=Counter(
                "riffle_transcoder_segments",
                "Segments encoded for another transcoder's split encode (POST /segment).",
                registry=registry,
            ),
        )


def install_middleware(app: FastAPI, metrics: Metrics) -> None:
    """The access line and HTTP metrics, inside the caller's request id (never minted here)."""
    app.add_middleware(AccessMiddleware, metrics=metrics.http, logger_name=ACCESS_LOGGER)
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(RequestIdMiddleware, mint=False)
