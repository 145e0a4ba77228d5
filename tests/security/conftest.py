"""A live gateway for hostile-input tests (its own TMPDIR), and a canary HTTP server that
counts every request it gets: anything that makes a service fetch a URL shows up there."""

from collections.abc import Iterator

import pytest

from testkit.gateways import GatewayFactory
from tests.security.targets import MAX_UPLOAD_BYTES, Canary, Hardened


@pytest.fixture(scope="module")
def hardened(
    start_gateway: GatewayFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hardened]:
    tmp = tmp_path_factory.mktemp("gateway-tmp")
    with start_gateway(MAX_UPLOAD_BYTES=str(MAX_UPLOAD_BYTES), TMPDIR=str(tmp)) as gateway:
        yield Hardened(gateway, tmp)


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    with Canary() as server:
        yield server
