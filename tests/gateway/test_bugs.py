"""A bug (an exception nothing maps) is a 500 problem with the request id, and tells nothing."""

import asyncio

import httpx

from gateway.config import Settings
from gateway.main import create_app


def test_an_unhandled_exception_is_a_500_problem_carrying_the_request_id() -> None:
    app = create_app(Settings())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://riffle.test") as client:
            return await client.get("/boom", headers={"X-Request-ID": "bug-42"})

    response = asyncio.run(call())
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["X-Request-ID"] == "bug-42"
    body = response.json()
    assert body["status"] == 500
    assert body["title"]
    assert "secret internals" not in response.text
