"""Logs of live servers: JSON lines, one access line per request with its request id and user,
the request id on the transcoder's lines too, and never a token, whichever way it was sent."""

import contextlib
import json
import uuid
from pathlib import Path
from typing import Any

import httpx

from testkit.api import new_user
from testkit.gateways import OpsGateway
from testkit.live import TRANSCODER_APP, free_port, serve, wait_until
from testkit.wavcorpus import pcm

MALFORMED_TOKEN = "not-a-uuid-but-secret-7f3a9c"


def log_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the file, parsed: each one must be a JSON object."""
    lines = path.read_text().splitlines()
    parsed = [json.loads(line) for line in lines if line.strip()]
    assert all(isinstance(line, dict) for line in parsed)
    return parsed


def access_line(path: Path, request_id: str, logger: str) -> dict[str, Any]:
    """The access line of the request ``request_id``, once it is written."""
    found: list[dict[str, Any]] = []

    def written() -> bool:
        found[:] = [
            line
            for line in log_lines(path)
            if line.get("request_id") == request_id and line["logger"] == logger
        ]
        return bool(found)

    wait_until(written, what=f"an access line for {request_id} in {path}")
    assert len(found) == 1, found
    return found[0]


def spellings(token: str) -> list[str]:
    """The token as sent, and the forms a careless log might print it in."""
    forms = [token, token.upper(), token.lower()]
    with contextlib.suppress(ValueError):
        forms.append(uuid.UUID(token).hex)
    return forms


def test_logs_are_json_with_an_access_line_per_request_and_no_token_anywhere(
    ops_gateway: OpsGateway, tmp_path: Path
) -> None:
    gateway_log, transcoder_log = tmp_path / "gateway.log", tmp_path / "transcoder.log"
    with (
        serve(TRANSCODER_APP, {}, output=transcoder_log) as transcoder_url,
        ops_gateway(output=gateway_log, TRANSCODER_URL=transcoder_url) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        user = new_user(client)
        token, uid = user["token"], user["id"]
        bearer = {"Authorization": f"Bearer {token}"}
        calls: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", "/record", {"data": {"user": uid, "token": token}}),
            ("POST", "/record", {"data": {"user": uid}, "headers": bearer}),
            ("POST", "/record", {"data": {"user": uid, "token": MALFORMED_TOKEN}}),
            ("GET", f"/users/{uid}/records", {"params": {"token": token}}),
            ("GET", f"/users/{uid}/records", {"headers": bearer}),
            ("GET", f"/users/{uid}/records", {"params": {"token": MALFORMED_TOKEN}}),
            ("GET", f"/users/{uid}/records", {"params": {"token": token, "limit": 0}}),
            (
                "DELETE",
                "/record",
                {"params": {"id": str(uuid.uuid4()), "user": uid, "token": token}},
            ),
            ("GET", "/record", {"params": {"id": str(uuid.uuid4()), "user": uid, "token": token}}),
            ("GET", "/healthz", {"params": {"token": token}}),
            ("GET", "/readyz", {"params": {"token": token}}),
            ("GET", "/metrics", {"params": {"token": token}}),
            ("GET", "/openapi.json", {"params": {"token": token}}),
            ("GET", f"/nowhere/{token}", {"params": {"token": token}}),
        ]
        answers = []
        for index, (method, path, options) in enumerate(calls):
            request_id = f"logs-test-{index}"
            headers = {"X-Request-ID": request_id, **options.pop("headers", {})}
            if method == "POST":
                options["files"] = {"file": ("take.wav", pcm(0.2, channels=1), "audio/wav")}
            answers.append(client.request(method, path, headers=headers, **options))
        # The upload's delete, and a download by the link: the capability URL carries no token.
        record = answers[0].json()
        download = client.get(record["url"], headers={"X-Request-ID": "logs-test-download"})
        assert download.status_code == 200
        deleted = client.delete(
            "/record",
            params={"id": record["id"], "user": uid, "token": token},
            headers={"X-Request-ID": "logs-test-delete"},
        )
        assert deleted.status_code == 204

        assert [answer.status_code for answer in answers] == [
            201, 201, 401, 200, 200, 401, 422, 404, 404, 200, 200, 200, 200, 404
        ]  # fmt: skip
        upload = access_line(gateway_log, "logs-test-0", "riffle.access")
        assert upload["method"] == "POST"
        assert upload["route"] == "/record"
        assert upload["status"] == 201
        assert upload["user_id"] == uid
        assert upload["duration_ms"] > 0
        assert upload["level"] == "INFO"
        assert upload["ts"].endswith("Z")
        listing = access_line(gateway_log, "logs-test-3", "riffle.access")
        assert (listing["route"], listing["status"], listing["user_id"]) == (
            "/users/{user_id}/records",
            200,
            uid,
        )
        removal = access_line(gateway_log, "logs-test-delete", "riffle.access")
        assert (removal["method"], removal["status"], removal["user_id"]) == ("DELETE", 204, uid)
        unmatched = access_line(gateway_log, "logs-test-13", "riffle.access")
        assert unmatched["route"] == "unmatched"
        # The gateway passed the request id on: the transcoder's line for the same upload has it.
        encoded = access_line(transcoder_log, "logs-test-0", "transcoder.access")
        assert (encoded["method"], encoded["route"], encoded["status"]) == (
            "POST",
            "/transcode",
            200,
        )

    for log in (gateway_log, transcoder_log):
        text = log.read_text()
        for secret in (token, MALFORMED_TOKEN):
            for form in spellings(secret):
                assert form not in text, f"{log.name} holds a token"
        assert "?" not in "".join(line.get("route", "") for line in log_lines(log))


def test_server_errors_are_logged_once_with_the_request_id_and_without_the_token(
    ops_gateway: OpsGateway, tmp_path: Path
) -> None:
    log = tmp_path / "gateway.log"
    dead = f"http://127.0.0.1:{free_port()}"
    with (
        ops_gateway(output=log, TRANSCODER_URL=dead) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        user = new_user(client)
        response = client.post(
            "/record",
            data={"user": user["id"], "token": user["token"]},
            files={"file": ("take.wav", pcm(0.1), "audio/wav")},
            headers={"X-Request-ID": "logs-test-503"},
        )
        assert response.status_code == 503
        access = access_line(log, "logs-test-503", "riffle.access")
        assert access["status"] == 503
    errors = [
        line
        for line in log_lines(log)
        if line.get("request_id") == "logs-test-503" and line["level"] == "ERROR"
    ]
    assert len(errors) == 1
    assert "exception" in errors[0]
    assert all(form not in log.read_text() for form in spellings(user["token"]))
