"""The transcoder's logs and metrics: JSON lines (readable on a terminal), one access line per
request carrying the gateway's ``X-Request-ID``, and Prometheus metrics in a per-app registry.

The transcoder image holds only this package, so this mirrors ``gateway.logs`` rather than
importing it; the line format is the same, so both services' logs read as one stream.
"""

import json
import logging
import re
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
ACCESS_LOGGER = "transcoder.access"
request_id_var: ContextVar[str] = ContextVar("transcoder_request_id", default="-")

_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName", "color_message"}  # uvicorn's ANSI-coloured copy
)
# The access line's message reads "GET /record 201": a terminal need not see these twice.
_SAID_IN_THE_ACCESS_MESSAGE = frozenset({"method", "route", "status"})
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
ENCODE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


# --- logs ---------------------------------------------------------------------------------------


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = {key: value for key, value in vars(record).items() if key not in _STANDARD_ATTRIBUTES}
    request_id = request_id_var.get()
    if request_id != "-":
        fields.setdefault("request_id", request_id)
    return fields


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(
            f"{key}={value}"
            for key, value in _fields(record).items()
            if key not in _SAID_IN_THE_ACCESS_MESSAGE
        )
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if fields:
            line += f"  {fields}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(level: int = logging.INFO) -> None:
    """One stderr handler for every logger, uvicorn's included; uvicorn's access log off."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, StderrHandler)), None)
    if handler is None:
        handler = StderrHandler()
        root.addHandler(handler)
    handler.setFormatter(TextFormatter() if sys.stderr.isatty() else JsonFormatter())
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True


# --- metrics ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    request_seconds: Histogram
    received_bytes: Counter
    sent_bytes: Counter
    encode_seconds: Histogram
    audio_seconds: Counter
    failures: Counter

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
                "riffle_transcoder_http_requests",
                "HTTP requests answered, by route template and status.",
                [*route, "status"],
                registry=registry,
            ),
            request_seconds=Histogram(
                "riffle_transcoder_http_request_duration_seconds",
                "Time from request start to the end of the response, by route and status.",
                [*route, "status"],
                buckets=REQUEST_BUCKETS,
                registry=registry,
            ),
            received_bytes=Counter(
                "riffle_transcoder_http_received_bytes",
                "Request body bytes read (the WAVs), by route.",
                route,
                registry=registry,
            ),
            sent_bytes=Counter(
                "riffle_transcoder_http_sent_bytes",
                "Response body bytes sent (the MP3s), by route.",
                route,
                registry=registry,
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
        )


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if template:
        return str(template)
    if "endpoint" in scope and not scope.get("path_params"):
        # A plain route FastAPI adds itself (/openapi.json, /docs): fixed paths, no parameters.
        return str(scope["path"])
    return "unmatched"


class AccessMiddleware:
    """Request metrics and one access line per request, with the caller's request id.

    Pure ASGI: bodies pass through unbuffered. The line names the route template, never the query.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.logger = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        sent_id = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        token = request_id_var.set(sent_id if ACCEPTABLE_REQUEST_ID.fullmatch(sent_id) else "-")
        status = 500
        received = sent = 0
        finished = False

        def finish() -> None:
            nonlocal finished
            if finished:
                return
            finished = True
            seconds = time.perf_counter() - started
            method, route = scope["method"], route_template(scope)
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.request_seconds.labels(method, route, str(status)).observe(seconds)
            self.metrics.received_bytes.labels(method, route).inc(received)
            self.metrics.sent_bytes.labels(method, route).inc(sent)
            self.logger.info(
                "%s %s %s",
                method,
                route,
                status,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                if not message.get("more_body", False):
                    finish()  # before the last chunk leaves: a client that saw it sees it counted
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            finish()
            request_id_var.reset(token)
