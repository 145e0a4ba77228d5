"""The services under test, started as production starts them (uvicorn, one process each), and
the back-ends: a PostgreSQL database + an S3 endpoint (moto's server), or SQLite + a folder."""

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
LOCAL_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
_STARTUP_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Service:
    url: str
    pid: int


@dataclass(frozen=True, slots=True)
class Backend:
    """How a gateway is configured, and what the benchmark needs to reach its storage directly."""

    name: str
    env: dict[str, str]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def uvicorn(app: str, env: dict[str, str], *, extra: tuple[str, ...] = ()) -> Iterator[Service]:
    """``python -m uvicorn <app> --factory`` as the Dockerfile runs it, on a free local port."""
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1"]
    args += ["--port", str(port), *extra]
    process = subprocess.Popen(  # noqa: S603
        args,
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answers(f"{url}/healthz", process)
        yield Service(url, process.pid)
    finally:
        _stop(process)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """An S3 endpoint over HTTP in its own process (so it does not share the client's GIL)."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answers(f"{url}/moto-api/", process)
        yield url
    finally:
        _stop(process)


def migrate(url: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


@contextlib.contextmanager
def postgres_database() -> Iterator[tuple[str, str]]:
    """A fresh, migrated database on the local server (else an embedded one); yields (url, how)."""
    with contextlib.ExitStack() as stack:
        if _local_postgres_answers():
            admin_url, how = LOCAL_POSTGRES, "local server 127.0.0.1:5432"
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="riffle-bench-pg-"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from pgserver import get_server  # type: ignore[attr-defined]

                server = get_server(folder, cleanup_mode="stop")
            stack.callback(server.cleanup)
            admin_url, how = f"postgresql+psycopg2://postgres:@/postgres?host={folder}", "pgserver"
        name = f"riffle_bench_{uuid.uuid4().hex[:12]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
            migrate(url)
            yield url, how
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def embedded_backend(workdir: Path) -> Backend:
    """The README's default: SQLite and a folder of objects."""
    database_url = f"sqlite:///{workdir}/riffle.db"
    migrate(database_url)
    return Backend(
        "sqlite+folder",
        {"DATABASE_URL": database_url, "STORAGE_URL": f"file://{workdir}/objects"},
    )


def production_backend(database_url: str, s3_url: str) -> Backend:
    return Backend(
        "postgres+s3",
        {
            "DATABASE_URL": database_url,
            "STORAGE_URL": f"s3://riffle-bench-{uuid.uuid4().hex[:8]}",
            "S3_ENDPOINT_URL": s3_url,
            **S3_CREDENTIALS,
        },
    )


def _local_postgres_answers() -> bool:
    engine = create_engine(LOCAL_POSTGRES, connect_args={"connect_timeout": 2}, poolclass=NullPool)
    try:
        engine.connect().close()
    except OperationalError:
        return False
    finally:
        engine.dispose()
    return True


def _wait_until_answers(url: str, process: "subprocess.Popen[bytes]") -> None:
    deadline = time.monotonic() + _STARTUP_SECONDS
    with httpx.Client(timeout=1.0) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the server exited with {process.returncode}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: no answer within {_STARTUP_SECONDS:g} s")
            time.sleep(0.05)


def _stop(process: "subprocess.Popen[bytes]") -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
