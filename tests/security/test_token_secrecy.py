"""Tokens never show up in logs, generated URLs or error bodies, wherever the client put them."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.live import free_port, wait_until
from testkit.s3 import S3_CREDENTIALS, S3Endpoint
from testkit.wavcorpus import pcm


@pytest.fixture(scope="module")
def logged_gateway(
    postgres_url: str,
    s3_endpoint: S3Endpoint,
    transcoder_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Path]]:
    """A gateway run as deployed (uvicorn's default log level, access log on); its output file."""
    log = tmp_path_factory.mktemp("logs") / "gateway.log"
    port = free_port()
    env = {
        **os.environ,
        **S3_CREDENTIALS,
        "DATABASE_URL": postgres_url,
        "STORAGE_URL": "s3://riffle-token-secrecy",
        "S3_ENDPOINT_URL": s3_endpoint.url,
        "TRANSCODER_URL": transcoder_url,
    }
    command = [sys.executable, "-m", "uvicorn", "gateway.main:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url), seconds=30, what="the gateway started")
        yield url, log
    finally:
        process.terminate()
        process.wait(10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_tokens_are_never_logged_nor_echoed_wherever_they_are_sent(
    logged_gateway: tuple[str, Path],
) -> None:
    url, log = logged_gateway
    secrets: list[str] = []
    with httpx.Client(base_url=url, timeout=60) as client:
        user = client.post("/users", json={"name": "secretive"}).json()
        token = user["token"]
        wrong = "0badc0de-0000-4000-8000-000000000000"
        secrets += [token, token.upper(), wrong]
        answers = [
            client.post(
                "/record",
                data={"user": user["id"], "token": token},
                files={"file": ("a.wav", pcm(0.2, 8000, 1), "audio/wav")},
            ),
            client.post(
                "/record",
                data={"user": user["id"], "token": wrong},
                files={"file": ("a.wav", pcm(0.2, 8000, 1), "audio/wav")},
            ),
            client.get(f"/users/{user['id']}/records", params={"token": token}),
            client.get(f"/users/{user['id']}/records", params={"token": wrong}),
            client.get(f"/users/{user['id']}/records", params={"token": f"{token}\x00'\""}),
            client.get(f"/users/{user['id']}/records?token={token}&limit=abc"),
            client.get(
                f"/users/{user['id']}/records", headers={"Authorization": f"Bearer {token}"}
            ),
            client.delete(
                "/record",
                params={"id": "not-a-uuid", "user": user["id"], "token": token},
            ),
            client.get("/no/such/path", params={"token": token}),
        ]
    assert answers[0].status_code == 201
    assert [answer.status_code for answer in answers[1:]] == [
        401,
        200,
        401,
        401,
        422,
        200,
        422,
        404,
    ]
    for answer in answers:
        for secret in secrets:
            assert secret not in answer.text
            assert secret not in str(answer.headers)
    wait_until(lambda: log.stat().st_size > 0, what="the gateway logged")
    logged = log.read_text(errors="replace")
    assert logged.count("/users/{user_id}/records") >= 5  # every request was logged
    for secret in secrets:
        assert secret not in logged
