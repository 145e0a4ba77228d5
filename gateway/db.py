"""The database engine and the one way services reach it: short transactions in worker threads,
each within a deadline, in a bounded number of threads."""

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from servicekit.errors import DependencyUnavailable

T = TypeVar("T")


def create_db_engine(url: str, *, pool_size: int = 10, timeout_seconds: float = 30) -> Engine:
    """An engine for PostgreSQL (production) or SQLite (the embedded default), every wait of
    which ends within ``timeout_seconds``: connecting, waiting for the pool, a statement, a lock.
    """
    # Errors get logged, and their parameters would include token hashes.
    common: dict[str, Any] = {"hide_parameters": True, "pool_pre_ping": True}
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": timeout_seconds},
            **common,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    milliseconds = int(timeout_seconds * 1000)
    # pool_pre_ping: a restarted PostgreSQL must not cost the next request.
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=timeout_seconds,
        connect_args={
            "connect_timeout": max(2, min(5, int(timeout_seconds))),  # libpq: whole seconds, ≥ 2
            # A peer that vanished (no FIN, no RST) is noticed in 10 + 3 * 5 s.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "options": f"-c statement_timeout={milliseconds} -c lock_timeout={milliseconds}",
        },
        **common,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


class _Late(Exception):
    """The deadline passed while the work ran: roll back rather than commit what no one awaits."""


class Database:
    """Runs one unit of work in its own transaction, off the event loop, within a deadline.

    A database that hangs (a link that stops moving bytes: no server-side timeout can fire) is
    answered by the deadline: the caller gets ``DependencyUnavailable`` at once, and the thread,
    stuck in the driver, is left to finish alone. It rolls back if it ever returns, and at most
    ``max_threads`` such threads exist: past that, calls fail fast instead of starting more.
    """

    def __init__(self, engine: Engine, *, timeout_seconds: float = 30, max_threads: int = 20):
        self.engine = engine
        self.timeout_seconds = timeout_seconds
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._limiter = anyio.CapacityLimiter(max_threads)
        self._max_threads = max_threads
        self._busy = 0  # threads inside the driver, abandoned ones included
        self._busy_lock = threading.Lock()

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in a worker thread; commit if it returns (in time), roll back if
        not. Raises ``DependencyUnavailable`` when the database is down, hung or too slow."""
        if self._busy >= self._max_threads:
            raise DependencyUnavailable("database")
        deadline = time.monotonic() + self.timeout_seconds
        try:
            with anyio.fail_after(self.timeout_seconds):
                return await anyio.to_thread.run_sync(
                    self._run, work, deadline, abandon_on_cancel=True, limiter=self._limiter
                )
        except (TimeoutError, _Late) as error:
            raise DependencyUnavailable("database") from error

    def _run(self, work: Callable[[Session], T], deadline: float) -> T:
        with self._busy_lock:
            self._busy += 1
        try:
            with self._sessions.begin() as session:
                result = work(session)
                if time.monotonic() > deadline:
                    raise _Late()
                return result
        except (OperationalError, InterfaceError, PoolTimeout) as error:
            # Refused or dropped connections, time-outs; constraint errors stay bugs.
            raise DependencyUnavailable("database") from error
        finally:
            with self._busy_lock:
                self._busy -= 1

    def dispose(self) -> None:
        self.engine.dispose()
