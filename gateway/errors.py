"""The error base every service raises, and the one mapping of errors to problem+json (RFC 9457)."""

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from servicekit.problems import problem_response

logger = logging.getLogger(__name__)


class RiffleError(Exception):
    """A failure with a place in the API contract: its status, problem type and title."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = list(errors) if errors is not None else None


class InvalidInput(RiffleError):
    status, slug, title = 422, "validation-error", "Request is not valid"


class InvalidCredentials(RiffleError):
    status, slug, title = 401, "invalid-credentials", "Invalid credentials"

    def __init__(self) -> None:
        # One answer for every credential failure, so none of them tells which part was wrong.
        super().__init__(
            "The user id and token do not match a user.",
            headers={"WWW-Authenticate": 'Bearer realm="riffle"'},
        )


class UploadTooLarge(RiffleError):
    status, slug, title = 413, "upload-too-large", "Upload too large"


class UploadTimeout(RiffleError):
    status, slug, title = 408, "upload-timeout", "Upload took too long"


class NotAWav(RiffleError):
    status, slug, title = 415, "not-a-wav", "The file is not a WAV file"


class UndecodableAudio(RiffleError):
    status, slug, title = 422, "undecodable-audio", "The WAV file cannot be converted"


class RecordNotFound(RiffleError):
    status, slug, title = 404, "record-not-found", "Record not found"

    def __init__(self) -> None:
        super().__init__("No record with this id exists for this user.")


class RangeNotSatisfiable(RiffleError):
    status, slug, title = 416, "range-not-satisfiable", "Range not satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(
            f"The requested range is outside the {size}-byte recording.",
            headers={"Content-Range": f"bytes */{size}"},
        )


_DEPENDENCY_NAMES = {"storage": "object storage"}


class DependencyUnavailable(RiffleError):
    status, slug, title = 503, "dependency-unavailable", "Service temporarily unavailable"
    retry_after_seconds: ClassVar[int] = 5

    def __init__(self, kind: str) -> None:
        """``kind``: ``database``, ``storage`` or ``transcoder`` (also the metrics label)."""
        super().__init__(
            f"The {_DEPENDENCY_NAMES.get(kind, kind)} is unavailable; nothing was stored. "
            "Retry later.",
            headers={"Retry-After": str(self.retry_after_seconds)},
        )
        self.kind = kind


class TranscodeTimeout(RiffleError):
    status, slug, title = 504, "transcode-timeout", "Transcoding took too long"


async def _riffle_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RiffleError)
    if error.status >= 500:
        logger.error("%s: %s", error.title, error.detail, exc_info=error)
    return problem_response(
        error.status,
        title=error.title,
        detail=error.detail,
        slug=error.slug,
        headers=error.headers,
        # "errors" is a member only of validation problems.
        **({"errors": error.errors} if error.errors is not None else {}),
    )


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [
        {"loc": list(item.get("loc", ())), "msg": str(item.get("msg", ""))}
        for item in error.errors()
    ]
    return problem_response(
        422,
        title=InvalidInput.title,
        slug=InvalidInput.slug,
        detail="; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors),
        errors=errors,
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    return problem_response(error.status_code, detail=str(error.detail), headers=error.headers)


ProblemHook = Callable[[Request, int, str, Exception], None]
"""Told of every problem answered: the request, the status, the problem slug and the error."""

_Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]


def _slug(error: Exception) -> str:
    if isinstance(error, RiffleError):
        return error.slug
    if isinstance(error, RequestValidationError):
        return InvalidInput.slug
    return "http-error"


def _observed(handler: _Handler, on_problem: ProblemHook | None) -> _Handler:
    if on_problem is None:
        return handler

    async def handle(request: Request, error: Exception) -> JSONResponse:
        response = await handler(request, error)
        on_problem(request, response.status_code, _slug(error), error)
        return response

    return handle


def install_error_handlers(app: FastAPI, *, on_problem: ProblemHook | None = None) -> None:
    """Route every error, ours and the framework's, through problem+json (and ``on_problem``)."""
    app.add_exception_handler(RiffleError, _observed(_riffle_error, on_problem))
    app.add_exception_handler(RequestValidationError, _observed(_validation_error, on_problem))
    app.add_exception_handler(StarletteHTTPException, _observed(_http_error, on_problem))
    # Anything else is a bug: gateway.middleware answers it with a 500 problem and the request id.
