"""OpenAPI pieces shared by the routers, and the final pass over the document: every error
response of every operation is documented as ``application/problem+json`` with the ``Problem``
schema (FastAPI's default ``HTTPValidationError`` for 422 included), every response names
``X-Request-ID``."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from gateway.errors import (
    InsufficientStorage,
    InvalidCredentials,
    JobNotFound,
    RangeNotSatisfiable,
    RecordNotFound,
    UploadExpired,
    UploadNotFound,
    UploadTimeout,
    UploadTooLarge,
    WebhookNotFound,
    WebhookTargetRefused,
)
from servicekit.errors import (
    PROBLEM_BASE,
    AudioTooLong,
    DependencyUnavailable,
    InvalidInput,
    NotAWav,
    ServiceError,
    TranscodeTimeout,
    UndecodableAudio,
)
from servicekit.problems import PROBLEM_JSON

DESCRIPTION = """\
Upload WAV recordings, get them back as MP3s by link.

* Identifiers are UUIDs; responses use the lower-case canonical form.
* Every error is `application/problem+json` (RFC 9457) with `type`, `title`, `status` and
  `detail`; validation errors add `errors`, a list of `{"loc": [...], "msg": "..."}`.
* Every response carries `X-Request-ID`: yours when you send a short printable one, else a new one.
* A `5xx` never comes from client input: `503` means a dependency is down (retry after
  `Retry-After` seconds), `504` that a transcode took too long.
"""

TAGS = [
    {"name": "users", "description": "Create a user; the answer holds its access token, once."},
    {
        "name": "records",
        "description": "Upload a WAV, download the MP3 by link, list and delete recordings.",
    },
    {
        "name": "uploads",
        "description": "tus 1.0.0 resumable uploads for large recordings and flaky networks: "
        "any stock tus client (tus-js-client, Uppy, tuspy, TUSKit) works.",
    },
    {
        "name": "jobs",
        "description": "Conversions that run after the upload: tus uploads and "
        "`POST /record` with `Prefer: respond-async`. Status, progress (SSE), outcome.",
    },
    {
        "name": "webhooks",
        "description": "Hear of new records and failed jobs without polling: signed "
        "(Standard Webhooks), retried for about a day, each attempt in the delivery log.",
    },
    {"name": "operations", "description": "Liveness, readiness and Prometheus metrics."},
]

BEARER_SCHEME = "bearer"
# Security requirement of the routes that take a token (header, or the query/form `token`).
TOKEN_SECURITY: dict[str, Any] = {"security": [{BEARER_SCHEME: []}]}


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(examples=[["body", "name"]])
    msg: str = Field(examples=["String should have at least 1 character"])


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(
        description="A URI naming the kind of problem.",
        examples=["https://riffle.dev/problems/not-a-wav"],
    )
    title: str = Field(examples=["The file is not a WAV file"])
    status: int = Field(examples=[415])
    detail: str = Field(examples=["The file has no RIFF/RF64 WAVE header."])
    errors: list[ValidationIssue] | None = Field(
        default=None, description="Validation errors only: what was wrong, and where."
    )


# A realistic ``detail`` for each problem type, for the examples.
_EXAMPLE_DETAILS: dict[type[ServiceError], str] = {
    InvalidInput: "user: not a valid UUID",
    InvalidCredentials: "The user id and token do not match a user.",
    UploadTooLarge: "The upload is larger than the limit of 1073741824 bytes.",
    UploadTimeout: "The upload did not arrive within 3600 s.",
    NotAWav: "The file has no RIFF/RF64 WAVE header.",
    UndecodableAudio: "The audio data is corrupt or empty.",
    RecordNotFound: "No record with this id exists for this user.",
    RangeNotSatisfiable: "The requested range is outside the 80661-byte recording.",
    DependencyUnavailable: "The transcoder is unavailable; nothing was stored. Retry later.",
    TranscodeTimeout: "Transcoding took longer than 600 s; nothing was stored.",
    AudioTooLong: "The audio lasts 11000.0 s; at most 10800 s are accepted.",
    InsufficientStorage: "The server has no disk space left for this upload; nothing was stored.",
    JobNotFound: "No job with this id exists for this user.",
    UploadNotFound: "No upload with this id exists for this user.",
    UploadExpired: "The upload expired before it was finished; start a new one.",
    WebhookTargetRefused: "The target localhost (127.0.0.1) is a loopback address; webhooks go "
    "to public addresses only.",
    WebhookNotFound: "This user has no webhook.",
}
_VALIDATION_EXAMPLE: dict[str, Any] = {
    "type": PROBLEM_BASE + InvalidInput.slug,
    "title": InvalidInput.title,
    "status": 422,
    "detail": "query.id: Input should be a valid UUID",
    "errors": [{"loc": ["query", "id"], "msg": "Input should be a valid UUID"}],
}
# Headers that come with particular problems.
_PROBLEM_HEADERS: dict[type[ServiceError], dict[str, Any]] = {
    InvalidCredentials: {
        "WWW-Authenticate": {
            "description": "Always `Bearer`.",
            "schema": {"type": "string", "example": 'Bearer realm="riffle"'},
        }
    },
    InsufficientStorage: {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "example": 30},
        }
    },
    DependencyUnavailable: {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "example": 5},
        }
    },
    RangeNotSatisfiable: {
        "Content-Range": {
            "description": "`bytes */<size>`.",
            "schema": {"type": "string", "example": "bytes */80661"},
        }
    },
}


def problem_example(error: type[ServiceError]) -> dict[str, Any]:
    example: dict[str, Any] = {
        "type": PROBLEM_BASE + error.slug,
        "title": error.title,
        "status": error.status,
        "detail": _EXAMPLE_DETAILS.get(error, error.title),
    }
    if error is InvalidInput:
        example["errors"] = [{"loc": ["body", "user"], "msg": "not a valid UUID"}]
    return example


def problem_content(*examples: dict[str, Any]) -> dict[str, Any]:
    """The ``content`` of an error response: problem+json with one example per problem type."""
    named = {str(example["type"]).rsplit("/", 1)[-1]: example for example in examples}
    return {
        PROBLEM_JSON: {
            "examples": {
                name: {"summary": example["title"], "value": example}
                for name, example in named.items()
            }
        }
    }


def problem_responses(*errors: type[ServiceError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each error's status, documented as problem+json, plus 503."""
    grouped: dict[int, list[type[ServiceError]]] = {}
    error: type[ServiceError]
    for error in (*errors, DependencyUnavailable):
        grouped.setdefault(error.status, []).append(error)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, group in grouped.items():
        headers: dict[str, Any] = {}
        for error in group:
            headers |= _PROBLEM_HEADERS.get(error, {})
        responses[status] = {
            "model": Problem,
            "description": "; ".join(dict.fromkeys(error.title for error in group)),
            "content": problem_content(*(problem_example(error) for error in group)),
            **({"headers": headers} if headers else {}),
        }
    return responses


def install_openapi(app: FastAPI) -> None:
    """Serve the post-processed document at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            app.openapi_schema = finish_document(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def finish_document(schema: dict[str, Any]) -> dict[str, Any]:
    """Problem+json on every error response, ``X-Request-ID`` on every response, bearer auth."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (Problem, ValidationIssue):
        _add_model(schemas, model)
    components.setdefault("securitySchemes", {})[BEARER_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "The user's access token (a UUID), as returned by `POST /users`.",
    }
    components.setdefault("headers", {})["X-Request-ID"] = {
        "description": "The request id: echoed when the client sent a short printable one.",
        "schema": {"type": "string", "example": "3f2a9c0e4b1d4e8f9a6b7c5d2e1f0a9b"},
    }
    for operation in _operations(schema):
        for status, response in operation.get("responses", {}).items():
            response.setdefault("headers", {})["X-Request-ID"] = {
                "$ref": "#/components/headers/X-Request-ID"
            }
            if str(status)[:1] in {"4", "5"}:
                _as_problem(response, int(status))
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return schema


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    return [
        operation
        for path_item in schema.get("paths", {}).values()
        for method, operation in path_item.items()
        if method in methods
    ]


def _as_problem(response: dict[str, Any], status: int) -> None:
    content = response.setdefault("content", {})
    # A route's own problem model (readiness's NotReady) keeps its schema; the rest use Problem.
    schema = content.pop("application/json", {}).get("schema", {})
    if schema.get("$ref", "").endswith("/HTTPValidationError") or not schema:
        schema = {"$ref": "#/components/schemas/Problem"}
    problem = content.setdefault(PROBLEM_JSON, {})
    problem["schema"] = schema
    if "example" not in problem and "examples" not in problem:
        problem["example"] = _VALIDATION_EXAMPLE if status == 422 else _generic_example(status)
    if status == 422 and response.get("description") == "Validation Error":
        response["description"] = InvalidInput.title
    for media_type in list(content):
        if media_type != PROBLEM_JSON:
            del content[media_type]


def _generic_example(status: int) -> dict[str, Any]:
    error = next(
        (e for e in _EXAMPLE_DETAILS if e.status == status),
        None,
    )
    if error is not None:
        return problem_example(error)
    return {"type": "about:blank", "title": "Error", "status": status, "detail": "What happened."}


def _add_model(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    json_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in json_schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas.setdefault(model.__name__, json_schema)
