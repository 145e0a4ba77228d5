"""The database engine and the one way services reach it: short transactions in a worker thread."""

from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from servicekit.errors import DependencyUnavailable

T = TypeVar("T")


def create_db_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for PostgreSQL (production) or SQLite (the embedded default)."""
    # Errors get logged, and their parameters would include token hashes.
    common: dict[str, Any] = {"hide_parameters": True, "pool_pre_ping": True}
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **common
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # pool_pre_ping: a restarted PostgreSQL must not cost the next request.
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=10,
        connect_args={"connect_timeout": 5},
        **common,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


class Database:
    """Runs one unit of work in its own transaction, off the event loop."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in a worker thread; commit if it returns, roll back if not."""
        return await anyio.to_thread.run_sync(self._run, work)

    def _run(self, work: Callable[[Session], T]) -> T:
        try:
            with self._sessions.begin() as session:
                return work(session)
        except (OperationalError, InterfaceError, PoolTimeout) as error:
            # Refused or dropped connections and pool time-outs; constraint errors stay bugs.
            raise DependencyUnavailable("database") from error

    def dispose(self) -> None:
        self.engine.dispose()
