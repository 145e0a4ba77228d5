"""Two gateway replicas sharing one PostgreSQL database and one S3 bucket, browsers allowed from
``ORIGIN`` (CORS): what a production deployment behind a load balancer looks like."""

import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from testkit.gateways import BACKENDS, Backend, Gateway, GatewayFactory
from testkit.live import serve
from testkit.s3 import S3_CREDENTIALS, S3Endpoint
from tests.uploads.tus import ORIGIN


@pytest.fixture(scope="package")
def replicas(
    postgres_url: str, s3_endpoint: S3Endpoint, transcoder_url: str
) -> Iterator[tuple[Gateway, Gateway]]:
    bucket = f"riffle-{uuid.uuid4().hex[:12]}"
    env = {
        "TRANSCODER_URL": transcoder_url,
        "DATABASE_URL": postgres_url,
        "STORAGE_URL": f"s3://{bucket}",
        "S3_ENDPOINT_URL": s3_endpoint.url,
        **S3_CREDENTIALS,
        "CORS_ALLOW_ORIGINS": ORIGIN,
    }
    with ExitStack() as stack:

        def replica() -> Gateway:
            url = stack.enter_context(serve("gateway.main:create_app", env))
            shared = Backend(env, postgres_url, lambda: s3_endpoint.keys(bucket))
            return Gateway(url, shared)

        yield replica(), replica()


@pytest.fixture(scope="package", params=BACKENDS)
def gateway(request: pytest.FixtureRequest, start_gateway: GatewayFactory) -> Iterator[Gateway]:
    """Live gateways here (not the in-process one): stock tus clients and relays need a socket."""
    with start_gateway(request.param) as running:
        yield running
