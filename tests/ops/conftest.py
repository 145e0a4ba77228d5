"""Gateways started for operations tests: on the session's PostgreSQL, S3 endpoint and
transcoder unless told otherwise, with their output captured in a file."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from testkit.gateways import OpsGateway
from testkit.live import GATEWAY_APP, serve
from testkit.s3 import S3_CREDENTIALS, S3Endpoint


@pytest.fixture(scope="session")
def ops_gateway(postgres_url: str, s3_endpoint: S3Endpoint, transcoder_url: str) -> OpsGateway:
    """``with ops_gateway(output=path, TRANSCODER_URL=…) as url``: a gateway on PostgreSQL and S3
    (a fresh bucket), settings overridable, its stdout and stderr appended to ``output``."""

    @contextmanager
    def start(*, output: Path | None = None, **settings: str) -> Iterator[str]:
        env = {
            "DATABASE_URL": postgres_url,
            "STORAGE_URL": f"s3://riffle-ops-{uuid.uuid4().hex[:12]}",
            "S3_ENDPOINT_URL": s3_endpoint.url,
            "TRANSCODER_URL": transcoder_url,
            **S3_CREDENTIALS,
            **settings,
        }
        with serve(GATEWAY_APP, env, output=output) as url:
            yield url

    return start
