"""`make run`'s supervisor: every program kept running, like compose's restart policy.

A program that exits while the supervisor is not stopping is started again after a back-off
(0.5 s, doubling up to 10 s; back to 0.5 s once a run has lasted 30 s); the others keep serving.
SIGINT or SIGTERM stops everything: SIGTERM to each program, the last started first (the gateway
finishes its uploads while the transcoder still serves them), all within one grace period, then
SIGKILL. Each program leads a process group of its own, killed whole once the leader has exited,
so nothing it started (the transcoder's ffmpeg) outlives it.

    python -m servicekit.supervisor    # the programs of `make run` (``local_programs``)
"""

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from servicekit.logs import configure_logging

logger = logging.getLogger("servicekit.supervisor")  # not "__main__" under -m

# uvicorn's options for the gateway, as every launcher of it passes them: its h11 protocol with
# zero-copy downloads (servicekit/zerocopy.py). Named here, not imported from there: this
# process only starts others, and that module brings uvicorn and Starlette (+8 MB).
GATEWAY_UVICORN_OPTIONS = ("--http", "servicekit.zerocopy:ZeroCopyH11Protocol")

# Above the servers' own --timeout-graceful-shutdown: their lifespan shutdown runs after it.
SHUTDOWN_MARGIN_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Program:
    """One supervised command: ``env`` is laid over the supervisor's own environment."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)


def local_programs(environ: Mapping[str, str]) -> list[Program]:
    """The programs of `make run`, in start order; another program is one more entry.

    Honours PORT (gateway, 8000), HOST (127.0.0.1), TRANSCODER_PORT (8001), TRANSCODER_URL and
    SHUTDOWN_GRACE_SECONDS (25, each server's own graceful shutdown); every other variable (the
    gateway's settings) reaches the programs unchanged.
    """
    host, port, transcoder_port = local_addresses(environ)
    grace = str(shutdown_grace_seconds(environ))

    def uvicorn(app: str, host: str, port: str, *options: str) -> list[str]:
        command = [sys.executable, "-m", "uvicorn", app, "--factory", "--no-access-log", *options]
        return [*command, "--host", host, "--port", port, "--timeout-graceful-shutdown", grace]

    transcoder_url = environ.get("TRANSCODER_URL", f"http://127.0.0.1:{transcoder_port}")
    return [
        Program("transcoder", uvicorn("transcoder.main:create_app", "127.0.0.1", transcoder_port)),
        Program(
            "gateway",
            uvicorn("gateway.main:create_app", host, port, *GATEWAY_UVICORN_OPTIONS),
            env={"TRANSCODER_URL": transcoder_url},
        ),
    ]


def local_addresses(environ: Mapping[str, str]) -> tuple[str, str, str]:
    """(HOST, PORT, TRANSCODER_PORT) of `make run`, defaults filled in."""
    return (
        environ.get("HOST", "127.0.0.1"),
        environ.get("PORT", "8000"),
        environ.get("TRANSCODER_PORT", "8001"),
    )


def shutdown_grace_seconds(environ: Mapping[str, str]) -> int:
    """SHUTDOWN_GRACE_SECONDS (default 25): how long each server drains after SIGTERM."""
    return int(environ.get("SHUTDOWN_GRACE_SECONDS", "25"))


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before restarting a program that keeps exiting."""

    initial: float = 0.5
    maximum: float = 10.0
    reset_after: float = 30.0  # a run at least this long clears the count of failures

    def delay(self, failures: int) -> float:
        """Seconds before the restart that follows ``failures`` (≥ 1) short runs in a row."""
        return min(self.initial * 2.0 ** min(failures - 1, 64), self.maximum)


@dataclass(slots=True)
class _Child:
    program: Program
    process: asyncio.subprocess.Process | None = None
    exited: "asyncio.Task[int] | None" = None
    started_at: float = 0.0
    start_at: float = 0.0  # loop time of the next start, while no process runs
    failures: int = 0


def supervise(programs: Sequence[Program], *, grace_seconds: float, backoff: Backoff) -> int:
    """Run ``programs`` until SIGINT or SIGTERM; 0 if all stopped within ``grace_seconds``."""
    return asyncio.run(_Supervisor(programs, grace_seconds, backoff).run())


class _Supervisor:
    def __init__(self, programs: Sequence[Program], grace_seconds: float, backoff: Backoff):
        self.children = [_Child(program) for program in programs]
        self.grace_seconds = grace_seconds
        self.backoff = backoff
        self.stop_asked = asyncio.Event()  # the first SIGINT or SIGTERM
        self.kill_asked = asyncio.Event()  # another one while stopping (a second Ctrl-C)

    def _on_signal(self) -> None:
        (self.kill_asked if self.stop_asked.is_set() else self.stop_asked).set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal)
        try:
            await self._keep_running()
            return await self._stop()
        finally:
            for child in self.children:  # reached with processes only on an error of our own
                if child.process is not None:
                    _kill_group(child.process.pid)

    async def _keep_running(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.stop_asked.is_set():
            for child in self.children:
                if child.process is None and child.start_at <= loop.time():
                    await self._start(child)
            waits = [child.start_at for child in self.children if child.process is None]
            timeout = max(0.0, min(waits) - loop.time()) if waits else None
            await self._wait_any(timeout)
            for child in self.children:
                if child.exited is not None and child.exited.done():
                    self._schedule_restart(child, child.exited.result())

    async def _start(self, child: _Child) -> None:
        loop = asyncio.get_running_loop()
        try:
            child.process = await asyncio.create_subprocess_exec(
                *child.program.argv,
                env={**os.environ, **child.program.env},
                start_new_session=True,  # its own process group: killed whole, never by Ctrl-C
            )
        except OSError as error:
            self._schedule_restart(child, f"could not start ({error})")
            return
        child.exited = asyncio.create_task(child.process.wait())
        child.started_at = loop.time()

    def _schedule_restart(self, child: _Child, outcome: int | str) -> None:
        now = asyncio.get_running_loop().time()
        uptime = 0.0
        if child.process is not None:
            _kill_group(child.process.pid)
            uptime = now - child.started_at
        if uptime >= self.backoff.reset_after:
            child.failures = 0
        child.failures += 1
        delay = self.backoff.delay(child.failures)
        child.process, child.exited, child.start_at = None, None, now + delay
        how = _describe(outcome) if isinstance(outcome, int) else outcome
        logger.warning(
            "%s %s after %.1f s; restarting in %g s",
            child.program.name,
            how,
            uptime,
            delay,
            extra={"program": child.program.name, "exit": how, "restart_in_seconds": delay},
        )

    async def _wait_any(self, timeout: float | None) -> None:
        """Until a program exits, a signal arrives or ``timeout`` passes."""
        stop_asked = asyncio.create_task(self.stop_asked.wait())
        exits = [child.exited for child in self.children if child.exited is not None]
        try:
            await asyncio.wait([stop_asked, *exits], timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            stop_asked.cancel()

    async def _stop(self) -> int:
        """SIGTERM, last started first, all within the grace; then SIGKILL (and 1)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace_seconds
        hurry = asyncio.create_task(self.kill_asked.wait())
        try:
            for child in reversed(self.children):
                if child.process is None or child.exited is None:
                    continue
                with contextlib.suppress(ProcessLookupError):
                    child.process.terminate()
                remaining = max(0.0, deadline - loop.time())
                await asyncio.wait(
                    [child.exited, hurry], timeout=remaining, return_when="FIRST_COMPLETED"
                )
        finally:
            hurry.cancel()
        killed = 0
        for child in self.children:
            if child.process is None or child.exited is None:
                continue
            if not child.exited.done():
                logger.warning("%s still running; killing it", child.program.name)
                killed += 1
            _kill_group(child.process.pid)
            await child.exited
            child.process = None
        return 1 if killed else 0


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # nobody left in it
        os.killpg(pgid, signal.SIGKILL)


def _describe(returncode: int) -> str:
    if returncode >= 0:
        return f"exited with {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:  # a real-time signal has no name
        return f"killed by signal {-returncode}"


def main() -> int:
    configure_logging()
    host, port, transcoder_port = local_addresses(os.environ)
    print(
        f"riffle: gateway on http://{host}:{port} (API docs at /docs),"
        f" transcoder on 127.0.0.1:{transcoder_port}",
        flush=True,
    )
    grace = shutdown_grace_seconds(os.environ) + SHUTDOWN_MARGIN_SECONDS
    return supervise(local_programs(os.environ), grace_seconds=grace, backoff=Backoff())


if __name__ == "__main__":
    sys.exit(main())
