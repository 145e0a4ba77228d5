"""The gateway's API as the tests call it: a user, an upload."""

import httpx


def new_user(client: httpx.Client) -> dict[str, str]:
    """A new user: ``{"id", "name", "token"}``."""
    response = client.post("/users", json={"name": "Uploader"})
    assert response.status_code == 201
    user: dict[str, str] = response.json()
    return user


def upload(
    client: httpx.Client,
    user: dict[str, str],
    content: bytes,
    *,
    filename: str = "take.wav",
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """``POST /record`` of ``content`` as ``filename`` for ``user``, with ``token`` in the form."""
    data = {"user": user["id"]}
    if token is not None:
        data["token"] = token
    return client.post(
        "/record", data=data, files={"file": (filename, content, "audio/wav")}, headers=headers
    )
