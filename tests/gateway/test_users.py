import uuid

import httpx
import pytest

from testkit.problems import assert_problem


def test_create_user_returns_id_name_and_a_uuid4_token(client: httpx.Client) -> None:
    response = client.post("/users", json={"name": "  Alice  "})
    assert response.status_code == 201
    body = response.json()
    assert body.keys() == {"id", "name", "token"}
    assert body["name"] == "Alice"
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert uuid.UUID(body["token"]).version == 4
    assert body["token"] == body["token"].lower()


def test_names_need_not_be_unique_and_count_code_points(client: httpx.Client) -> None:
    first = client.post("/users", json={"name": "Bob"}).json()
    second = client.post("/users", json={"name": "Bob"}).json()
    assert first["id"] != second["id"]
    assert first["token"] != second["token"]
    name = "🎵" * 100
    assert client.post("/users", json={"name": name}).json()["name"] == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "x" * 101,
        "a\x00b",
        "tab\there",
        "del\x7f",
        "c1\x85in the middle",
        "\x9f",
        "new\nline",
    ],
)
def test_invalid_names_are_422_with_errors(client: httpx.Client, name: str) -> None:
    body = assert_problem(client.post("/users", json={"name": name}), 422)
    assert body["errors"]
    assert body["errors"][0]["loc"][-1] == "name"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"", "application/json"),
        (b"not json", "application/json"),
        (b'{"name": "Al', "application/json"),
        (b"[]", "application/json"),
        (b"{}", "application/json"),
        (b'{"name": 5}', "application/json"),
        (b'{"name": null}', "application/json"),
        (b"name=Alice", "application/x-www-form-urlencoded"),
        (b'{"name": "Alice"}', "text/plain"),
    ],
)
def test_malformed_bodies_are_422(client: httpx.Client, content: bytes, content_type: str) -> None:
    response = client.post("/users", content=content, headers={"Content-Type": content_type})
    body = assert_problem(response, 422)
    assert isinstance(body["errors"], list)


def test_request_id_is_echoed_or_generated(client: httpx.Client) -> None:
    echoed = client.post("/users", json={"name": "A"}, headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    generated = client.post("/users", json={"name": ""})
    assert len(generated.headers["X-Request-ID"]) >= 16
    forged = client.get("/healthz", headers={"X-Request-ID": "a\tb"})
    assert forged.headers["X-Request-ID"] != "a\tb"


def test_unknown_routes_and_methods_are_problems(client: httpx.Client) -> None:
    assert_problem(client.get("/nope"), 404)
    assert_problem(client.put("/users"), 405)
