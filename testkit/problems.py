"""Assertions on RFC 9457 problem responses, for both services."""

from typing import Any

import httpx


def assert_problem(
    response: httpx.Response, status: int, *, request_id: bool = True
) -> dict[str, Any]:
    """The answer is a problem document of ``status``; with ``request_id``, it carries one (the
    gateway always does; the transcoder only echoes the gateway's)."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    if request_id:
        assert response.headers["X-Request-ID"]
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    assert body["detail"]
    return body
