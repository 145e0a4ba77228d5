"""One real stack per fault-test module: see ``tests.faults.stack``."""

import contextlib
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, make_url, text

from tests.faults.proxy import Address, TcpProxy
from tests.faults.stack import (
    GATED_FFMPEG,
    GATEWAY_APP,
    Gate,
    Stack,
    start_transcoder,
    unique_bucket,
)
from tests.fixtures.database import migrate
from tests.fixtures.storage import S3_CREDENTIALS, S3Endpoint
from tests.fixtures.transcoder import fake_ffmpeg
from tests.live import running


def postgres_address(url: str) -> Address:
    """Where the server at ``url`` listens: TCP, or the Unix socket of a ``?host=/dir`` URL."""
    parsed = make_url(url)
    port = parsed.port or 5432
    socket_dir = parsed.query.get("host")
    if isinstance(socket_dir, str) and socket_dir.startswith("/"):
        return f"{socket_dir}/.s.PGSQL.{port}"
    return (parsed.host or "127.0.0.1", port)


@contextlib.contextmanager
def dedicated_database(admin_url: str) -> Iterator[str]:
    """A fresh, migrated database of its own (faults may add triggers to it)."""
    name = f"riffle_faults_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def stack(
    postgres_admin_url: str, s3_endpoint: S3Endpoint, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("faults")
    gate = Gate(root / "gate")
    gate.folder.mkdir()
    fake_ffmpeg(root / "ffmpeg", GATED_FFMPEG)
    with contextlib.ExitStack() as cleanup:
        database_url = cleanup.enter_context(dedicated_database(postgres_admin_url))
        proxies = []
        for target in (
            postgres_address(database_url),
            _http_address(s3_endpoint.url),
            ("127.0.0.1", 9),  # retargeted at the transcoder below
        ):
            proxy = TcpProxy(target)
            proxy.start()
            cleanup.callback(proxy.stop)
            proxies.append(proxy)
        db_proxy, s3_proxy, transcoder_proxy = proxies
        proxied_db = (
            make_url(database_url)
            .set(host="127.0.0.1", port=db_proxy.port, query={})
            .render_as_string(hide_password=False)
        )
        bucket = unique_bucket()
        gateway_env = {
            "DATABASE_URL": proxied_db,
            "STORAGE_URL": f"s3://{bucket}",
            "S3_ENDPOINT_URL": s3_proxy.url,
            "TRANSCODER_URL": transcoder_proxy.url,
            **S3_CREDENTIALS,
        }
        transcoder_tmp, gateway_tmp = root / "transcoder-tmp", root / "gateway-tmp"
        gateway_tmp.mkdir()
        transcoder = start_transcoder(cleanup, gate, transcoder_proxy, transcoder_tmp)
        gateway = cleanup.enter_context(
            running(GATEWAY_APP, {**gateway_env, "TMPDIR": str(gateway_tmp)})
        )
        stack = Stack(
            gateway=gateway,
            transcoder=transcoder,
            transcoder_tmp=transcoder_tmp,
            gateway_tmp=gateway_tmp,
            gate=gate,
            transcoder_proxy=transcoder_proxy,
            s3_proxy=s3_proxy,
            db_proxy=db_proxy,
            database_url=database_url,
            gateway_env=gateway_env,
            s3=s3_endpoint,
            bucket=bucket,
        )
        cleanup.callback(stack.close)
        yield stack


def _http_address(url: str) -> Address:
    parts = urlsplit(url)
    return (parts.hostname or "127.0.0.1", parts.port or 80)
