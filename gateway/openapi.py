"""OpenAPI pieces shared by the routers: the problem+json schema on every error response."""

from typing import Any

from pydantic import BaseModel, Field

from gateway.errors import PROBLEM_JSON, DependencyUnavailable, RiffleError


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(examples=["https://riffle.dev/problems/not-a-wav"])
    title: str
    status: int
    detail: str
    errors: list[ValidationIssue] | None = None


def problem_responses(*errors: type[RiffleError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each error's status, documented as problem+json."""
    responses: dict[int | str, dict[str, Any]] = {}
    error: type[RiffleError]
    for error in (*errors, DependencyUnavailable):
        entry = responses.setdefault(
            error.status,
            {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": error.title},
        )
        if error.title not in entry["description"]:
            entry["description"] += f"; {error.title}"
    return responses
