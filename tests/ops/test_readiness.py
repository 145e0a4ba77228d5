"""/readyz follows each dependency: 503 naming it while it is stopped, 200 again once it returns."""

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from moto.server import ThreadedMotoServer

from testkit.databases import postgres_address, through_port
from testkit.gateways import OpsGateway
from testkit.live import TRANSCODER_APP, free_port, serve, wait_until
from testkit.tcp_proxy import TcpProxy

DEPENDENCIES = {"database", "storage", "transcoder"}
FLIP_SECONDS = 20.0


def wait_for_readiness(client: httpx.Client, status: int) -> httpx.Response:
    """Poll /readyz until it answers ``status``; the last answer."""
    last: list[httpx.Response] = []

    def answered() -> bool:
        last[:] = [client.get("/readyz")]
        return last[0].status_code == status

    wait_until(answered, seconds=FLIP_SECONDS, what=f"/readyz answering {status}")
    return last[0]


def assert_ready(client: httpx.Client) -> None:
    response = wait_for_readiness(client, 200)
    assert response.json() == {"status": "ok", "checks": dict.fromkeys(DEPENDENCIES, "ok")}


def assert_not_ready(client: httpx.Client, failed: str) -> None:
    response = wait_for_readiness(client, 503)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"]
    body: dict[str, Any] = response.json()
    assert body["status"] == 503
    assert body["failed"] == [failed]
    assert failed in body["detail"]
    assert body["checks"][failed] in {"unavailable", "timeout"}
    assert {name for name, state in body["checks"].items() if state == "ok"} == (
        DEPENDENCIES - {failed}
    )


@pytest.fixture
def moto_port() -> int:
    return free_port()


@pytest.fixture
def own_s3(moto_port: int) -> Iterator[Callable[[], ThreadedMotoServer]]:
    """Start S3 endpoints on one port (``start()``); any still running are stopped at the end."""
    servers: list[ThreadedMotoServer] = []

    def start() -> ThreadedMotoServer:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_readiness_names_the_transcoder_while_it_is_stopped_and_recovers(
    ops_gateway: OpsGateway,
) -> None:
    port = free_port()
    with (
        ops_gateway(TRANSCODER_URL=f"http://127.0.0.1:{port}") as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        assert_not_ready(client, "transcoder")  # nothing listens there yet
        with serve(TRANSCODER_APP, {}, port=port):
            assert_ready(client)
        assert_not_ready(client, "transcoder")
        with serve(TRANSCODER_APP, {}, port=port):
            assert_ready(client)


def test_readiness_names_storage_while_the_s3_endpoint_is_stopped_and_recovers(
    ops_gateway: OpsGateway, own_s3: Callable[[], ThreadedMotoServer], moto_port: int
) -> None:
    first = own_s3()
    with (
        ops_gateway(S3_ENDPOINT_URL=f"http://127.0.0.1:{moto_port}") as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        assert_ready(client)
        first.stop()
        assert_not_ready(client, "storage")
        own_s3()  # the same port; moto keeps its buckets in the test process
        assert_ready(client)


def test_readiness_names_the_database_while_it_is_unreachable_and_recovers(
    ops_gateway: OpsGateway, postgres_url: str
) -> None:
    # The session's PostgreSQL, reached through a port that can go dark: the gateway sees a
    # stopped server (connections refused, open ones cut), the suite's server keeps running.
    proxy = TcpProxy(postgres_address(postgres_url), free_port())
    with (
        proxy,
        ops_gateway(DATABASE_URL=through_port(postgres_url, proxy.port)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        assert_ready(client)
        proxy.stop()
        assert_not_ready(client, "database")
        proxy.start()
        assert_ready(client)
