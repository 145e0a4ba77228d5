"""Admission control: encoder processes are a bounded resource, and waiting for one is bounded too.

``MAX_CONCURRENT_ENCODES`` counts ffmpeg processes, not requests: a long PCM recording encoded as
two halves holds two. A request that finds more than ``MAX_QUEUED_ENCODES`` others waiting, or
that would wait past its deadline, is refused at once with 503 + ``Retry-After``: a burst costs
quick refusals, never a pile-up of requests that time out one after another.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from servicekit.errors import DependencyUnavailable

RETRY_AFTER_SECONDS = 2


class EncodersBusy(DependencyUnavailable):
    def __init__(self, detail: str) -> None:
        super().__init__("encoder", detail=detail, retry_after=RETRY_AFTER_SECONDS)


class EncodeSlots:
    """``capacity`` encoder processes; at most ``max_waiting`` requests queue for them."""

    def __init__(self, capacity: int, *, max_waiting: int) -> None:
        self.capacity = capacity
        self.max_waiting = max_waiting
        self.in_use = 0
        self.waiting = 0
        self._freed = asyncio.Condition()

    @asynccontextmanager
    async def hold(self, wanted: int, *, deadline: float) -> AsyncIterator[int]:
        """Hold up to ``wanted`` processes (at least one) until the block ends; yields how many.

        Waits in line for the first; takes a second only if it is free at that moment (a split
        encode then runs as one pass instead of waiting). ``deadline``: ``time.monotonic()``
        past which waiting is refused. Raises ``EncodersBusy``.
        """
        async with self._freed:
            if self.in_use >= self.capacity:
                if self.waiting >= self.max_waiting:
                    raise EncodersBusy(
                        f"All {self.capacity} encoders are busy and {self.waiting} uploads are "
                        "already waiting; nothing was stored. Retry later."
                    )
                self.waiting += 1
                try:
                    async with asyncio.timeout_at(_loop_time(deadline)):
                        await self._freed.wait_for(lambda: self.in_use < self.capacity)
                except TimeoutError:
                    raise EncodersBusy(
                        "No encoder became free before this upload's deadline; nothing was "
                        "stored. Retry later."
                    ) from None
                finally:
                    self.waiting -= 1
            held = min(wanted, self.capacity - self.in_use)
            self.in_use += held
        try:
            yield held
        finally:
            async with self._freed:
                self.in_use -= held
                self._freed.notify_all()


def _loop_time(monotonic_deadline: float) -> float:
    """A ``time.monotonic()`` instant on the event loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_deadline - time.monotonic())
