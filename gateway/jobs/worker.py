"""Job workers: claim a job, run it by its kind (convert an upload, or deliver a webhook event),
record the outcome; renew the lease meanwhile.

A worker runs in the gateway process (``JOB_WORKERS``, the embedded default) or in the worker
tier (``gateway.worker``); any number of either share one queue. A worker that dies mid-job
stops renewing its lease; once it lapses another worker runs the job again from the start, and
``conversion.convert`` makes that second run produce the same single record.
"""

import logging
import os
import random
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy.orm import Session

from gateway import repositories
from gateway.conversion import Conversion, convert
from gateway.errors import UploadExpired
from gateway.jobs import queue
from gateway.models import Job, Upload, UploadChunk
from gateway.models.base import utc_now
from gateway.models.job import WEBHOOK
from gateway.models.webhook import GAVE_UP
from gateway.storage import ObjectMissing
from gateway.uploads import sweeper
from gateway.uploads.store import StoredUpload, delete_upload
from gateway.webhooks import delivery as webhook_delivery
from gateway.webhooks import events as webhook_events
from gateway.webhooks import repository
from servicekit.audio_options import AudioOptions
from servicekit.errors import DependencyUnavailable, ServiceError
from servicekit.logs import request_id_var

if TYPE_CHECKING:
    from gateway.deps import Resources

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Progress and lease are written at most this often (and the lease at least every third of it).
HEARTBEAT_SECONDS = 0.5
_RETRY_BASE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class _Work:
    job: Job
    upload: Upload
    pieces: list[UploadChunk]


def _load(session: Session, job: Job) -> _Work | None:
    upload = session.get(Upload, job.upload_id) if job.upload_id is not None else None
    if upload is None:
        return None
    return _Work(job, upload, repositories.upload_chunks(session, upload_id=upload.id))


class Worker:
    """One worker: one job at a time."""

    def __init__(self, resources: "Resources", name: str) -> None:
        self.resources = resources
        self.name = name

    async def run(self) -> None:
        """Claim and run jobs until cancelled; an idle worker polls every ``JOB_POLL_SECONDS``
        and sweeps expired uploads every ``UPLOAD_SWEEP_SECONDS`` (first at start-up)."""
        settings = self.resources.settings
        next_sweep = 0.0
        while True:
            try:
                if anyio.current_time() >= next_sweep:
                    next_sweep = anyio.current_time() + settings.upload_sweep_seconds
                    await sweeper.sweep(self.resources.database, self.resources.store)
                job = await self.resources.database.run(
                    lambda session: queue.claim(
                        session, worker=self.name, lease_seconds=settings.job_lease_seconds
                    )
                )
            except DependencyUnavailable:
                logger.warning("Worker %s: the database is unavailable", self.name)
                job = None
            if job is None:
                await anyio.sleep(settings.job_poll_seconds)
                continue
            await self.run_job(job)

    async def run_job(self, job: Job) -> None:
        claim = queue.Claim(job.id, job.attempts, self.name)
        token = request_id_var.set(f"job-{job.id.hex[:12]}-{job.attempts}")
        try:
            if job.kind == WEBHOOK:
                await self._deliver(job, claim)
            else:
                await self._run(job, claim)
        except Exception:
            # A bug: fail the job (retrying would only hit it again), keep the worker.
            logger.exception("Job %s: unexpected error", job.id)
            await self._finish_failed(job, claim, ServiceError("An unexpected error occurred."))
        except BaseException:
            # Cancelled (the process stops): give the job back, so another worker takes it now.
            with anyio.CancelScope(shield=True), suppress(DependencyUnavailable):
                # (If the database is down too, the lease lapses instead.)
                await self.resources.database.run(
                    lambda session: queue.release(session, claim=claim)
                )
            raise
        finally:
            request_id_var.reset(token)

    async def _run(self, job: Job, claim: queue.Claim) -> None:
        resources = self.resources
        database, settings = resources.database, resources.settings
        work = await database.run(lambda session: _load(session, job))
        if work is None or job.record_id is None:
            await self._finish_failed(job, claim, UploadExpired())
            return
        source = StoredUpload(resources.store, work.pieces)
        total = max(1, source.size)
        sent = 0

        def on_progress(count: int) -> None:
            nonlocal sent
            sent = count

        def progress() -> float:
            # Short of 1.0 until the record exists: the end of the WAV is not the end.
            return min(0.99, sent / total)

        heartbeat = partial(self._heartbeat, claim, progress)

        # Checked when the upload was made; parsed again here, as a job may outlive a version.
        options = AudioOptions.from_fields(work.upload.options, loc=("metadata",))
        conversion = Conversion(job.record_id, job.user_id, work.upload.filename, options)
        try:
            await _beside(
                heartbeat,
                convert(
                    source,
                    conversion,
                    database=database,
                    store=resources.store,
                    transcoder=resources.transcoder,
                    max_duration_seconds=settings.max_duration_seconds,
                    request_id=request_id_var.get(),
                    on_progress=on_progress,
                ),
            )
        except ObjectMissing:
            await self._finish_failed(job, claim, UploadExpired())
            return
        except DependencyUnavailable as error:
            if job.attempts >= settings.job_max_attempts:
                await self._finish_failed(job, claim, error)
                return
            delay = _RETRY_BASE_SECONDS * 2 ** (job.attempts - 1) * random.uniform(0.8, 1.2)  # noqa: S311
            logger.warning("Job %s: %s; retrying in %.1f s", job.id, error.detail, delay)
            after = utc_now() + timedelta(seconds=delay)
            await database.run(
                partial(queue.retry_later, claim=claim, after=after, error=error.problem())
            )
            return
        except ServiceError as error:
            await self._finish_failed(job, claim, error)
            return
        await database.run(lambda session: queue.succeed(session, claim=claim))
        # The bytes are no longer needed; the upload row stays for HEAD until it expires.
        try:
            await anyio.to_thread.run_sync(delete_upload, resources.store, work.upload.id)
        except DependencyUnavailable:
            logger.warning("Job %s: its upload's chunks wait for the sweeper", job.id)

    async def _deliver(self, job: Job, claim: queue.Claim) -> None:
        """A webhook delivery's attempt (bounded by WEBHOOK_TIMEOUT_SECONDS), under its lease."""
        keep_lease = partial(self._heartbeat, claim, lambda: 0.0)
        await _beside(keep_lease, webhook_delivery.deliver(self.resources, job, claim))

    async def _heartbeat(self, claim: queue.Claim, progress: Callable[[], float]) -> None:
        """Renew the claim's lease (and record ``progress()``) every ``HEARTBEAT_SECONDS``."""
        database, settings = self.resources.database, self.resources.settings
        while True:
            await anyio.sleep(HEARTBEAT_SECONDS)
            beat = partial(
                queue.heartbeat,
                claim=claim,
                progress=progress(),
                lease_seconds=settings.job_lease_seconds,
            )
            with suppress(DependencyUnavailable):  # the next beat tries again
                await database.run(beat)

    async def _finish_failed(self, job: Job, claim: queue.Claim, error: ServiceError) -> None:
        logger.info("Job %s failed: %s", claim.job_id, error.detail)

        def work(session: Session) -> None:
            # The job's failure and its `job.failed` event: one transaction, both or neither.
            if not queue.fail(session, claim=claim, error=error.problem()):
                return
            if job.kind == WEBHOOK:
                repository.give_up(session, delivery_id=job.id, status=GAVE_UP, error=error.detail)
            else:
                webhook_events.job_failed(session, job_id=job.id)

        await self.resources.database.run(work)


async def _beside(beat: Callable[[], Coroutine[Any, Any, None]], work: Awaitable[T]) -> T:
    """Await ``work`` while ``beat`` runs beside it; ``work``'s own exception comes out as it is
    (not wrapped in an exception group)."""
    outcome: list[T] = []
    failure: list[Exception] = []
    async with anyio.create_task_group() as group:
        group.start_soon(beat)
        try:
            outcome.append(await work)
        except Exception as error:
            failure.append(error)
        finally:
            group.cancel_scope.cancel()
    if failure:
        raise failure[0]
    return outcome[0]


def worker_names(count: int) -> list[str]:
    base = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    return [f"{base}:{index}" for index in range(count)]


@asynccontextmanager
async def running_workers(resources: "Resources", count: int) -> AsyncIterator[None]:
    """``count`` workers run while the block runs; cancelled (their jobs given back) at its end."""
    if count == 0:
        yield
        return
    async with anyio.create_task_group() as group:
        for name in worker_names(count):
            group.start_soon(Worker(resources, name).run)
        try:
            yield
        finally:
            group.cancel_scope.cancel()
