"""Graceful shutdown: on SIGTERM (or Ctrl-C) the gateway first says it is draining.

``/readyz`` answers 503 from the first signal on, while the listener stays open for
``SHUTDOWN_DRAIN_SECONDS`` (load balancers see it and stop sending); then uvicorn's own shutdown
runs: no new connections, the requests in flight get ``--timeout-graceful-shutdown`` to finish.
Uvicorn installs its signal handlers before the lifespan starts; ours wraps them.
"""

import asyncio
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Draining:
    """Whether this process was asked to stop (and since when)."""

    def __init__(self) -> None:
        self.since: float | None = None

    @property
    def active(self) -> bool:
        return self.since is not None

    def start(self) -> None:
        if self.since is None:
            self.since = time.monotonic()


def drain_on_signals(draining: Draining, *, delay_seconds: float) -> Callable[[], None]:
    """Wrap the current SIGTERM/SIGINT handlers: mark ``draining``, then pass the signal on after
    ``delay_seconds`` (at once for a second signal). Returns what restores the handlers. Does
    nothing off the main thread (an app served in-process by a test), where signals never land.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}

    def handle(signum: int, frame: FrameType | None) -> None:
        again = draining.active
        draining.start()
        passed_on = previous[signal.Signals(signum)]
        if not callable(passed_on):
            return
        if again or delay_seconds <= 0:
            passed_on(signum, frame)
        else:
            loop.call_soon_threadsafe(loop.call_later, delay_seconds, passed_on, signum, frame)

    for sig in _SIGNALS:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
