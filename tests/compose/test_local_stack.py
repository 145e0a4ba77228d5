"""The compose services' own commands, run here with the compose environment, serve the API.

What stands in for what: PostgreSQL is the test server (a fresh database per module, migrated by
the ``migrate`` service's command), MinIO is moto's S3 server, and ``transcoder`` and ``gateway``
are their compose commands on 127.0.0.1 and free ports. Every other value (bucket, credentials,
limits, bitrate) is the compose file's with .env.example, unchanged.
"""

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url

from testkit import compose as stack
from testkit.databases import empty_database
from testkit.live import free_port
from testkit.s3 import S3Endpoint
from testkit.wavcorpus import pcm
from tests.compose import launcher


@dataclass(frozen=True)
class LocalStack:
    gateway: launcher.Running
    transcoder: launcher.Running
    gateway_env: dict[str, str]
    services: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = stack.load()["services"]
    return found


@pytest.fixture(scope="module")
def database_url(postgres_admin_url: str, services: dict[str, dict[str, Any]]) -> Iterator[str]:
    """An empty database on the test server, addressed with the compose URL's driver."""
    compose_url = make_url(stack.environment(services["migrate"])["DATABASE_URL"])
    with empty_database(postgres_admin_url, prefix="riffle_compose") as url:
        local = make_url(url).set(drivername=compose_url.drivername)
        yield local.render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def endpoints(database_url: str, s3_endpoint: S3Endpoint) -> dict[str, str]:
    """Compose ``host:port`` -> the local stand-in; the transcoder is added once it runs."""
    return {"postgres:5432": database_url, "minio:9000": s3_endpoint.url}


@pytest.fixture(scope="module")
def migrated(services: dict[str, dict[str, Any]], endpoints: dict[str, str]) -> None:
    migrate = services["migrate"]
    env = launcher.localize(stack.environment(migrate), endpoints)
    result = launcher.run_once(stack.command(migrate), env)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def local_stack(
    migrated: None, services: dict[str, dict[str, Any]], endpoints: dict[str, str]
) -> Iterator[LocalStack]:
    transcoder_service, gateway_service = services["transcoder"], services["gateway"]
    transcoder_env = launcher.localize(stack.environment(transcoder_service), endpoints)
    with launcher.serve(stack.command(transcoder_service), transcoder_env) as transcoder:
        endpoints = {**endpoints, "transcoder:8001": transcoder.url}
        gateway_env = launcher.localize(stack.environment(gateway_service), endpoints)
        with launcher.serve(stack.command(gateway_service), gateway_env) as gateway:
            yield LocalStack(gateway, transcoder, gateway_env, services)


def test_migrate_command_is_idempotent(
    migrated: None, services: dict[str, dict[str, Any]], endpoints: dict[str, str]
) -> None:
    # `docker compose up` runs it on every start, on an already migrated database.
    migrate = services["migrate"]
    env = launcher.localize(stack.environment(migrate), endpoints)
    result = launcher.run_once(stack.command(migrate), env)
    assert result.returncode == 0, result.stderr


def test_gateway_environment_points_only_at_stand_ins(local_stack: LocalStack) -> None:
    hosts = {url.hostname for url in stack.urls(local_stack.gateway_env).values()}
    assert hosts <= {"127.0.0.1", None} | {""}, hosts
    assert local_stack.gateway_env["STORAGE_URL"] == "s3://recordings"


def test_gateway_is_ready_with_every_dependency_reached(local_stack: LocalStack) -> None:
    response = httpx.get(f"{local_stack.gateway.url}/readyz", timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {
        "database": "ok",
        "storage": "ok",
        "transcoder": "ok",
    }


@pytest.mark.parametrize("name", ["transcoder", "gateway"])
def test_compose_healthcheck_one_liner_passes_on_the_running_server(
    local_stack: LocalStack, name: str
) -> None:
    server = getattr(local_stack, name)
    code = _healthcheck_code(local_stack.services[name], server.port)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr


def test_compose_healthcheck_one_liner_fails_when_nothing_answers(
    services: dict[str, dict[str, Any]],
) -> None:
    code = _healthcheck_code(services["gateway"], free_port())
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=30, check=False
    )
    assert result.returncode != 0


def test_create_upload_download_through_the_compose_commands(
    local_stack: LocalStack, s3_endpoint: S3Endpoint
) -> None:
    wav = pcm(1.0)
    with httpx.Client(base_url=local_stack.gateway.url, timeout=60) as client:
        user = client.post("/users", json={"name": "Compose"})
        assert user.status_code == 201, user.text
        user_id, token = user.json()["id"], user.json()["token"]

        upload = client.post(
            "/record",
            data={"user": user_id, "token": token},
            files={"file": ("take 1.wav", wav, "audio/wav")},
        )
        assert upload.status_code == 201, upload.text
        record = upload.json()
        assert record["url"].startswith(local_stack.gateway.url + "/record?")
        assert record["duration_seconds"] == pytest.approx(1.0, abs=0.1)

        download = client.get(record["url"])
        assert download.status_code == 200, download.text
        assert download.headers["content-type"] == "audio/mpeg"
        assert len(download.content) == record["size_bytes"]
        assert download.content[:3] == b"ID3" or download.content[0] == 0xFF

    # Where the README says the MP3s are: bucket `recordings`, recordings/<user>/<record>.mp3
    key = f"recordings/{user_id}/{record['id']}.mp3"
    assert key in s3_endpoint.keys("recordings")


def _healthcheck_code(service: dict[str, Any], port: int) -> str:
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    compose_port = stack.option(stack.command(service), "--port")
    return str(test[3]).replace(f"127.0.0.1:{compose_port}/", f"127.0.0.1:{port}/")
