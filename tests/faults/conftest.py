"""One real stack per fault-test module: see ``tests.faults.stack``."""

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from testkit.databases import migrated_database, postgres_address, through_port
from testkit.fake_ffmpeg import fake_ffmpeg
from testkit.live import running
from testkit.s3 import S3_CREDENTIALS, S3Endpoint
from testkit.tcp_proxy import Address, TcpProxy
from tests.faults.stack import (
    GATED_FFMPEG,
    GATEWAY_APP,
    QUICK_SETTINGS,
    Gate,
    Proxies,
    Stack,
    start_transcoder,
    unique_bucket,
)


@pytest.fixture(scope="module")
def stack(
    postgres_admin_url: str, s3_endpoint: S3Endpoint, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("faults")
    gate = Gate(root / "gate")
    gate.folder.mkdir()
    fake_ffmpeg(root / "ffmpeg", GATED_FFMPEG)
    with contextlib.ExitStack() as cleanup:
        # A database of its own: faults may add triggers to it.
        database_url = cleanup.enter_context(
            migrated_database(postgres_admin_url, prefix="riffle_faults")
        )
        proxies = Proxies(
            database=cleanup.enter_context(TcpProxy(postgres_address(database_url))),
            s3=cleanup.enter_context(TcpProxy(_http_address(s3_endpoint.url))),
            transcoder=cleanup.enter_context(TcpProxy(("127.0.0.1", 9))),  # retargeted below
        )
        bucket = unique_bucket()
        gateway_env = {
            "DATABASE_URL": through_port(database_url, proxies.database.port),
            "STORAGE_URL": f"s3://{bucket}",
            "S3_ENDPOINT_URL": proxies.s3.url,
            "TRANSCODER_URL": proxies.transcoder.url,
            **S3_CREDENTIALS,
        }
        transcoder_tmp, gateway_tmp = root / "transcoder-tmp", root / "gateway-tmp"
        gateway_tmp.mkdir()
        transcoder = start_transcoder(cleanup, gate, proxies.transcoder, transcoder_tmp)
        gateway = cleanup.enter_context(
            running(GATEWAY_APP, {**gateway_env, "TMPDIR": str(gateway_tmp)})
        )
        stack = Stack(
            gateway=gateway,
            transcoder=transcoder,
            transcoder_tmp=transcoder_tmp,
            gateway_tmp=gateway_tmp,
            gate=gate,
            proxies=proxies,
            database_url=database_url,
            gateway_env=gateway_env,
            s3=s3_endpoint,
            bucket=bucket,
        )
        cleanup.callback(stack.close)
        yield stack


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as executor:
        yield executor


@pytest.fixture(autouse=True)
def healthy(stack: Stack) -> Iterator[None]:
    """Every test starts and ends with every dependency up and the gate open."""
    stack.gate.reset()
    yield
    stack.gate.reset()
    stack.proxies.database.resume()
    stack.proxies.s3.resume()


@pytest.fixture(scope="module")
def quick(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The module's stack through a second gateway with short waits (``QUICK_SETTINGS``)."""
    tmp = tmp_path_factory.mktemp("quick-gateway-tmp")
    with stack.start_gateway(tmp, **QUICK_SETTINGS) as gateway:
        yield stack.through(gateway, tmp)


def _http_address(url: str) -> Address:
    parts = urlsplit(url)
    return (parts.hostname or "127.0.0.1", parts.port or 80)
