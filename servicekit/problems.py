"""RFC 9457 problem documents: the one shape every error of both services takes."""

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://riffle.dev/problems/"


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
