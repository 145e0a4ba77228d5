"""Request ids on every response, one access line and the HTTP metrics per request, and the
last-resort 500 for bugs. Both are pure ASGI middleware: they never buffer a body."""

import logging
import re
import time
import uuid
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import problem_response
from gateway.logs import ACCESS_LOGGER, request_id_var
from gateway.metrics import Metrics, route_template

__all__ = ["AccessMiddleware", "RequestIdMiddleware", "request_id_var"]

logger = logging.getLogger(__name__)
access_logger = logging.getLogger(ACCESS_LOGGER)

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is echoed only when it is short and printable, so it cannot forge log lines.
_ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
# A route that knows the user from the body (the upload) sets ``request.state.user_id``.
USER_ID_STATE = "user_id"


class RequestIdMiddleware:
    """Echo or mint ``X-Request-ID``; turn an unhandled exception into a 500 problem that has it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = sent if _ACCEPTABLE_REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("Unhandled error in request %s", request_id)
            if response_started:
                raise
            response = problem_response(500, detail="An unexpected error occurred.")
            await response(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class AccessMiddleware:
    """Per request: the request counters, latency histogram and byte counters, labelled by route
    template (never the raw path: ids would explode the label space), and one access log line.

    The line names the route, not the path or query string: a token may ride in ``?token=``.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
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
            access_logger.info(
                "%s %s %s",
                method,
                route,
                status,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                    "user_id": _user_id(scope, state),
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
                    # Before the last chunk leaves: whoever saw the answer can see it counted.
                    finish()
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            # No complete answer: an exception escaping here becomes the outer middleware's 500.
            finish()


def _user_id(scope: Scope, state: MutableMapping[str, Any]) -> str | None:
    """The user the request names (path, ``user`` query parameter or form), if a valid UUID."""
    candidate = state.get(USER_ID_STATE) or scope.get("path_params", {}).get("user_id")
    if candidate is None:
        query = scope.get("query_string", b"").decode("latin-1")
        candidate = next((value for key, value in parse_qsl(query) if key == "user"), None)
    try:
        return str(uuid.UUID(str(candidate))) if candidate is not None else None
    except ValueError:
        return None
