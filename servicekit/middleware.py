"""Request ids on responses and log lines, one access line and the HTTP metrics per request.

Both are pure ASGI middleware: they never buffer a body. Add ``AccessMiddleware`` first and
``RequestIdMiddleware`` last (the last added runs first), so the access line has the request id.
"""

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.logs import request_id_var
from servicekit.metrics import HttpMetrics, route_template
from servicekit.zerocopy import BODY_MESSAGES, body_bytes

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is used only when it is short and printable, so it cannot forge log lines.
ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

# Extra access-line fields from the finished request's scope (its ``state`` holds request.state).
AccessFields = Callable[[Scope], Mapping[str, Any]]


class RequestIdMiddleware:
    """Take the caller's ``X-Request-ID`` for the request's log lines and echo it on the response.

    With ``mint``, a missing or unacceptable id is replaced by a new one (the public edge);
    without, such a request goes without an id (an internal service keeps its caller's ids).
    """

    def __init__(self, app: ASGIApp, *, mint: bool) -> None:
        self.app = app
        self.mint = mint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        if ACCEPTABLE_REQUEST_ID.fullmatch(sent):
            request_id = sent
        elif self.mint:
            request_id = uuid.uuid4().hex
        else:
            request_id = ""
        token = request_id_var.set(request_id or "-")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start" and request_id:
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class AccessMiddleware:
    """Per request: the HTTP metrics and one access line on ``logger_name``, with ``method``,
    ``route``, ``status``, ``duration_ms`` and whatever ``fields`` adds.

    The line names the route template, never the path or query string: a token may ride in
    ``?token=``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: HttpMetrics,
        logger_name: str,
        fields: AccessFields | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.logger = logging.getLogger(logger_name)
        self.fields = fields

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # Created here, so what a route puts in request.state is in this scope for ``fields``.
        scope.setdefault("state", {})
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
            self.metrics.observe(method, route, status, seconds, received, sent)
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
                    **(self.fields(scope) if self.fields else {}),
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
            elif message["type"] in BODY_MESSAGES:
                sent += body_bytes(message)
                if not message.get("more_body", False):
                    # Before the last chunk leaves: whoever saw the answer can see it counted.
                    finish()
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            # No complete answer: an exception escaping here becomes a 500 further out.
            finish()
