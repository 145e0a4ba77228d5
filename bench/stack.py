"""The services under test, started as production starts them (uvicorn, one process each), and
the back-ends: a PostgreSQL database + an S3 endpoint (moto's server), or SQLite + a folder."""

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from testkit.databases import (
    LOCAL_SERVER,
    embedded_server,
    local_server_answers,
    migrate,
    migrated_database,
)
from testkit.live import LiveServer, free_port, launched

ROOT = Path(__file__).resolve().parents[1]
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
_STARTUP_SECONDS = 60.0


Service = LiveServer  # a started server: its URL and process id


@dataclass(frozen=True, slots=True)
class Backend:
    """How a gateway is configured, and what the benchmark needs to reach its storage directly."""

    name: str
    env: dict[str, str]


@contextlib.contextmanager
def uvicorn(
    app: str,
    env: dict[str, str],
    *,
    extra: tuple[str, ...] = (),
    prefix: tuple[str, ...] = (),
) -> Iterator[Service]:
    """``python -m uvicorn <app> --factory`` as the Dockerfile runs it, on a free local port;
    ``prefix``: a command that runs it (``taskset -c 0``)."""
    port = free_port()
    args = [*prefix, sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1"]
    args += ["--port", str(port), *extra]
    url = f"http://127.0.0.1:{port}"
    with launched(
        args,
        url,
        env={**os.environ, **env},
        cwd=ROOT,
        output=subprocess.DEVNULL,
        startup_seconds=_STARTUP_SECONDS,
    ) as service:
        yield service


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """An S3 endpoint over HTTP in its own process (so it does not share the client's GIL)."""
    port = free_port()
    args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    url = f"http://127.0.0.1:{port}"
    with launched(
        args,
        url,
        ready_path="/moto-api/",
        output=subprocess.DEVNULL,
        startup_seconds=_STARTUP_SECONDS,
    ):
        yield url


@contextlib.contextmanager
def postgres_database() -> Iterator[tuple[str, str]]:
    """A fresh, migrated database on the local server (else an embedded one); yields (url, how)."""
    with contextlib.ExitStack() as stack:
        if local_server_answers():
            admin_url, how = LOCAL_SERVER, "local server 127.0.0.1:5432"
        else:
            admin_url, how = stack.enter_context(embedded_server()), "pgserver"
        yield stack.enter_context(migrated_database(admin_url, prefix="riffle_bench")), how


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
