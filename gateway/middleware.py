"""The gateway's request middleware: servicekit's request ids, access line and HTTP metrics, plus
what only the gateway knows: the user a request names, and the last-resort 500 for bugs."""

import uuid
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.types import Scope

from gateway.metrics import Metrics
from servicekit.logs import request_id_var
from servicekit.middleware import AccessMiddleware, RequestIdMiddleware
from servicekit.problems import UnhandledErrorMiddleware

__all__ = [
    "ACCESS_LOGGER",
    "USER_ID_STATE",
    "access_fields",
    "install_middleware",
    "request_id_var",
]

ACCESS_LOGGER = "riffle.access"
# A route that knows the user from the body (the upload) sets ``request.state.user_id``.
USER_ID_STATE = "user_id"


def install_middleware(app: FastAPI, metrics: Metrics) -> None:
    """The last added runs first: request ids wrap the 500, which wraps the access log."""
    app.add_middleware(
        AccessMiddleware, metrics=metrics.http, logger_name=ACCESS_LOGGER, fields=access_fields
    )
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(RequestIdMiddleware, mint=True)


def access_fields(scope: Scope) -> dict[str, Any]:
    """The access line's ``user_id``: the user the request names, if a valid UUID."""
    return {"user_id": _user_id(scope)}


def _user_id(scope: Scope) -> str | None:
    """From the upload's form (``request.state``), the path, or the ``user`` query parameter."""
    state, path_params = scope.get("state", {}), scope.get("path_params", {})
    candidate = state.get(USER_ID_STATE) or path_params.get("user_id")
    if candidate is None:
        query = scope.get("query_string", b"").decode("latin-1")
        candidate = next((value for key, value in parse_qsl(query) if key == "user"), None)
    try:
        return str(uuid.UUID(str(candidate))) if candidate is not None else None
    except ValueError:
        return None
