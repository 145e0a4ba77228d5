"""The jobs table and every query on it: submit, claim under a lease, heartbeat, finish.

On PostgreSQL a claim takes the oldest runnable job with ``FOR UPDATE SKIP LOCKED``, so any
number of workers on any number of machines claim distinct jobs without waiting on each other;
on SQLite (one process) the same statement runs without the lock clause. A job is runnable when
it is queued (and its back-off has passed), or running under a lease that lapsed: its worker
died, and the job runs again from the start.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from gateway.models import Job, Record
from gateway.models.base import utc_now
from gateway.models.job import CONVERT, FAILED, QUEUED, RUNNING, SUCCEEDED


@dataclass(frozen=True, slots=True)
class Claim:
    """A job a worker holds: the worker's name and the attempt prove it still does."""

    job_id: uuid.UUID
    attempt: int
    worker: str


def submit(session: Session, *, job: Job) -> Job:
    session.add(job)
    session.flush()
    return job


def get(session: Session, *, job_id: uuid.UUID, user_id: uuid.UUID) -> Job | None:
    """The user's conversion job (a webhook delivery's job is not one of ``/jobs``)."""
    return session.scalars(
        select(Job).where(Job.id == job_id, Job.user_id == user_id, Job.kind == CONVERT)
    ).first()


def get_with_record(
    session: Session, *, job_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[Job, Record | None] | None:
    job = get(session, job_id=job_id, user_id=user_id)
    if job is None:
        return None
    record = session.get(Record, job.record_id) if job.status == SUCCEEDED else None
    return job, record


def claim(session: Session, *, worker: str, lease_seconds: float) -> Job | None:
    """Take the oldest runnable job for ``worker``; None when there is none."""
    now = utc_now()
    runnable = or_(
        (Job.status == QUEUED) & (Job.run_after <= now),
        (Job.status == RUNNING) & (Job.lease_until < now),
    )
    candidate = session.scalars(
        select(Job)
        .where(runnable)
        .order_by(Job.run_after)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if candidate is None:
        return None
    candidate.status = RUNNING
    candidate.attempts += 1
    candidate.worker = worker
    candidate.lease_until = now + timedelta(seconds=lease_seconds)
    candidate.updated_at = now
    session.flush()
    return candidate


def _held(claim: Claim) -> Any:
    return (
        (Job.id == claim.job_id)
        & (Job.worker == claim.worker)
        & (Job.attempts == claim.attempt)
        & (Job.status == RUNNING)
    )


def heartbeat(session: Session, *, claim: Claim, progress: float, lease_seconds: float) -> bool:
    """Renew the lease and record progress; False if the job is no longer this claim's."""
    now = utc_now()
    result = session.execute(
        update(Job)
        .where(_held(claim))
        .values(
            lease_until=now + timedelta(seconds=lease_seconds),
            progress=progress,
            updated_at=now,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def succeed(session: Session, *, claim: Claim) -> None:
    session.execute(
        update(Job)
        .where(Job.id == claim.job_id, Job.status != SUCCEEDED)
        .values(status=SUCCEEDED, progress=1.0, lease_until=None, error=None, updated_at=utc_now())
    )


def fail(session: Session, *, claim: Claim, error: dict[str, Any]) -> bool:
    """Failed for good; False if the job is no longer this claim's (nothing changed)."""
    result = session.execute(
        update(Job)
        .where(_held(claim))
        .values(status=FAILED, lease_until=None, error=error, updated_at=utc_now())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def retry_later(session: Session, *, claim: Claim, after: datetime, error: dict[str, Any]) -> bool:
    """Back to the queue, not before ``after``; ``error`` says why it did not run. False if the
    job is no longer this claim's."""
    result = session.execute(
        update(Job)
        .where(_held(claim))
        .values(status=QUEUED, lease_until=None, run_after=after, error=error, updated_at=utc_now())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release(session: Session, *, claim: Claim) -> None:
    """Give a job back at once (this worker is stopping): another worker takes it now."""
    session.execute(
        update(Job)
        .where(_held(claim))
        .values(
            status=QUEUED,
            lease_until=None,
            progress=0.0,
            attempts=Job.attempts - 1,  # not an attempt that failed
            updated_at=utc_now(),
        )
    )
