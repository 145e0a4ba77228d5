"""RFC 9457 problem documents: the one shape every error of both services takes, and the handlers
that render ``servicekit.errors`` and the framework's own errors in it."""

import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.errors import PROBLEM_BASE, InvalidInput, ServiceError
from servicekit.logs import request_id_var

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem_response(
    status: int,
    *,
    detail: str,
    title: str | None = None,
    slug: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """``type`` from ``slug`` (else ``about:blank``), ``title`` (else the status phrase),
    ``status``, ``detail``, then any extension members (``errors``, ``checks``, ...)."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug if slug else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


ProblemHook = Callable[[Request, int, str, Exception], None]
"""Told of every problem answered: the request, the status, the problem slug and the error."""

_Handler = Callable[[Request, Exception], Awaitable[Response]]


def error_response(error: ServiceError) -> JSONResponse:
    """The problem document of ``error``, with its headers (``Retry-After``, ...)."""
    return JSONResponse(
        error.problem(), status_code=error.status, headers=error.headers, media_type=PROBLEM_JSON
    )


async def _service_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ServiceError)
    if error.status >= 500:
        logger.error("%s: %s", error.title, error.detail, exc_info=error)
    return error_response(error)


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors = [
        {"loc": list(item.get("loc", ())), "msg": str(item.get("msg", ""))}
        for item in error.errors()
    ]
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    return error_response(InvalidInput(detail, errors=errors))


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    return problem_response(error.status_code, detail=str(error.detail), headers=error.headers)


def _slug(error: Exception) -> str:
    if isinstance(error, ServiceError):
        return error.slug
    if isinstance(error, RequestValidationError):
        return InvalidInput.slug
    return "http-error"


def _observed(handler: _Handler, on_problem: ProblemHook | None) -> _Handler:
    if on_problem is None:
        return handler

    async def handle(request: Request, error: Exception) -> Response:
        response = await handler(request, error)
        on_problem(request, response.status_code, _slug(error), error)
        return response

    return handle


def install_problem_handlers(app: Starlette, *, on_problem: ProblemHook | None = None) -> None:
    """Route every error, ours and the framework's, through problem+json (and ``on_problem``);
    anything else is a bug, for ``UnhandledErrorMiddleware`` to answer."""
    app.add_exception_handler(ServiceError, _observed(_service_error, on_problem))
    app.add_exception_handler(RequestValidationError, _observed(_validation_error, on_problem))
    app.add_exception_handler(StarletteHTTPException, _observed(_http_error, on_problem))


class UnhandledErrorMiddleware:
    """Turn an unhandled exception into a 500 problem, logged once with its stack."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def watching_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except Exception:
            logger.exception("Unhandled error in request %s", request_id_var.get())
            if response_started:
                raise
            response = problem_response(500, detail="An unexpected error occurred.")
            await response(scope, receive, send)
