"""Throwaway databases for tests and the benchmark, migrated with Alembic as production is.

A server to create databases on (``local_server_answers``, ``embedded_server``), a throwaway
database on it (``empty_database``, ``migrated_database``), the ways to reach it
(``postgres_address``, ``through_port``), and ``migrate`` for any URL (SQLite too).
"""

import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from testkit.tcp_proxy import Address

ROOT = Path(__file__).resolve().parents[1]
LOCAL_SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest revision, as ``alembic upgrade head`` does."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


def local_server_answers() -> bool:
    """Whether ``LOCAL_SERVER`` takes connections (within 2 s)."""
    engine = create_engine(LOCAL_SERVER, connect_args={"connect_timeout": 2}, poolclass=NullPool)
    try:
        engine.connect().close()
    except OperationalError:
        return False
    finally:
        engine.dispose()
    return True


@contextmanager
def embedded_server() -> Iterator[str]:
    """A PostgreSQL of our own (pgserver) in a temporary folder; yields its admin URL."""
    with tempfile.TemporaryDirectory(prefix="riffle-pg-") as folder:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            from pgserver import get_server  # type: ignore[attr-defined]

            server = get_server(folder, cleanup_mode="stop")
        try:
            yield f"postgresql+psycopg2://postgres:@/postgres?host={folder}"
        finally:
            server.cleanup()


@contextmanager
def empty_database(admin_url: str, *, prefix: str) -> Iterator[str]:
    """A new database ``<prefix>_<random>`` on the server at ``admin_url``; yields its URL and
    drops it (open connections and all) when the block ends."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def migrated_database(admin_url: str, *, prefix: str) -> Iterator[str]:
    """Like ``empty_database``, migrated to the newest revision."""
    with empty_database(admin_url, prefix=prefix) as url:
        migrate(url)
        yield url


def postgres_address(url: str) -> Address:
    """Where the server at ``url`` listens: TCP, or the Unix socket of a ``?host=/dir`` URL."""
    parsed = make_url(url)
    port = parsed.port or 5432
    socket_dir = parsed.query.get("host")
    if isinstance(socket_dir, str) and socket_dir.startswith("/"):
        return f"{socket_dir}/.s.PGSQL.{port}"
    return (parsed.host or "127.0.0.1", port)


def through_port(url: str, port: int) -> str:
    """``url`` reached over TCP at 127.0.0.1:``port`` (a proxy in front of its server)."""
    parsed = make_url(url)
    query = {key: value for key, value in parsed.query.items() if key != "host"}
    return parsed.set(host="127.0.0.1", port=port, query=query).render_as_string(
        hide_password=False
    )
