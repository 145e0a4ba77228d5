"""Readiness: database, object storage and transcoder, checked at once, each within a deadline."""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import anyio.to_thread
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from gateway.db import Database
from gateway.storage import ObjectStore
from gateway.transcoder_client import TranscoderClient
from servicekit.errors import DependencyUnavailable

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0
OK, UNAVAILABLE, TIMEOUT = "ok", "unavailable", "timeout"


@dataclass(frozen=True, slots=True)
class Readiness:
    """Each dependency's state: ``ok``, ``unavailable`` (it answered no) or ``timeout``."""

    checks: dict[str, str]

    @property
    def failed(self) -> list[str]:
        return [name for name, state in self.checks.items() if state != OK]

    @property
    def ready(self) -> bool:
        return not self.failed


async def check_readiness(
    database: Database,
    store: ObjectStore,
    transcoder: TranscoderClient,
    *,
    timeout_seconds: float = CHECK_TIMEOUT_SECONDS,
) -> Readiness:
    """Run the three checks concurrently; a check that passes ``timeout_seconds`` has failed."""
    checks = {"database": TIMEOUT, "storage": TIMEOUT, "transcoder": TIMEOUT}

    async def run(name: str, check: Callable[[], Awaitable[None]]) -> None:
        with anyio.move_on_after(timeout_seconds):
            try:
                await check()
            except (DependencyUnavailable, SQLAlchemyError) as error:
                logger.warning("Readiness: %s unavailable: %s", name, error)
                checks[name] = UNAVAILABLE
            else:
                checks[name] = OK
        if checks[name] == TIMEOUT:
            logger.warning("Readiness: %s did not answer within %g s", name, timeout_seconds)

    async with anyio.create_task_group() as group:
        # Blocking drivers cannot be interrupted: on timeout their thread is left to finish alone.
        group.start_soon(
            run,
            "database",
            lambda: anyio.to_thread.run_sync(_ping, database.engine, abandon_on_cancel=True),
        )
        group.start_soon(
            run, "storage", lambda: anyio.to_thread.run_sync(store.check, abandon_on_cancel=True)
        )
        group.start_soon(run, "transcoder", transcoder.check)
    return Readiness(checks)


def _ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
