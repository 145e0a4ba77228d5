"""Calling the webhook API of a live gateway, and waiting on its delivery log."""

from typing import Any

import httpx

from testkit.live import wait_until


def auth(user: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['token']}"}


def put_webhook(base_url: str, user: dict[str, str], target: str) -> httpx.Response:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        return client.put(f"/users/{user['id']}/webhook", json={"url": target}, headers=auth(user))


def set_webhook(base_url: str, user: dict[str, str], target: str) -> str:
    """Set the webhook; its secret."""
    response = put_webhook(base_url, user, target)
    assert response.status_code == 200, response.text
    secret: str = response.json()["secret"]
    return secret


def deliveries(base_url: str, user: dict[str, str]) -> list[dict[str, Any]]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        response = client.get(f"/users/{user['id']}/webhook/deliveries", headers=auth(user))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def upload(base_url: str, user: dict[str, str], wav: bytes) -> dict[str, Any]:
    """The synchronous ``POST /record``: the record."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        response = client.post(
            "/record",
            data={"user": user["id"]},
            files={"file": ("take.wav", wav, "audio/wav")},
            headers=auth(user),
        )
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


def wait_for_deliveries(
    base_url: str, user: dict[str, str], count: int, *, done: bool = True, seconds: float = 20
) -> list[dict[str, Any]]:
    """The log once it holds ``count`` deliveries (all finished, unless ``done`` is False)."""
    seen: list[dict[str, Any]] = []

    def ready() -> bool:
        seen[:] = deliveries(base_url, user)
        finished = all(item["status"] != "pending" for item in seen)
        return len(seen) >= count and (finished or not done)

    wait_until(ready, seconds=seconds, what=f"{count} webhook deliveries")
    return seen
