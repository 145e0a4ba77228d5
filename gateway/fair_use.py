"""Fair use on a shared instance: uploads in flight per user, and stored bytes per user.

Both are counted in the database, the one place every gateway replica and worker sees: a
synchronous upload holds a row of ``uploads_in_flight`` while it is received and converted, and
jobs count while queued or running. The count and the new row are one transaction behind a lock
on the user's row, so two replicas cannot both let the fifth upload through.
"""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta

import anyio
from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session

from gateway.db import Database
from gateway.models import Job, Record, UploadInFlight, User
from gateway.models.base import utc_now
from gateway.models.job import QUEUED, RUNNING
from servicekit.errors import DependencyUnavailable, ServiceError

RETRY_AFTER_SECONDS = 5
POLICY = "inflight"


class TooManyUploads(ServiceError):
    status, slug, title = 429, "too-many-uploads", "Too many uploads in flight"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"At most {limit} uploads or conversions of one user run at once; retry when one "
            "has finished.",
            headers={
                "Retry-After": str(RETRY_AFTER_SECONDS),
                # draft-ietf-httpapi-ratelimit-headers: the policy, and what is left of it.
                "RateLimit-Policy": f'"{POLICY}";q={limit}',
                "RateLimit": f'"{POLICY}";r=0;t={RETRY_AFTER_SECONDS}',
            },
        )


class QuotaExceeded(ServiceError):
    status, slug, title = 413, "quota-exceeded", "Storage quota exceeded"

    def __init__(self, quota: int, used: int) -> None:
        super().__init__(
            f"This recording would take the user past the quota of {quota} bytes of MP3s "
            f"({used} are used); nothing was stored. Delete recordings to make room."
        )


def lock_user(session: Session, user_id: uuid.UUID) -> None:
    """Serialise the user's admissions (PostgreSQL row lock; SQLite has one writer anyway)."""
    session.execute(select(User.id).where(User.id == user_id).with_for_update())


def in_flight(session: Session, user_id: uuid.UUID) -> int:
    """The user's synchronous uploads running now, plus its jobs queued or running."""
    uploads = session.scalar(
        select(func.count())
        .select_from(UploadInFlight)
        .where(UploadInFlight.user_id == user_id, UploadInFlight.expires_at > utc_now())
    )
    jobs = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.user_id == user_id, Job.kind == "convert", Job.status.in_((QUEUED, RUNNING)))
    )
    return int(uploads or 0) + int(jobs or 0)


def check_admission(session: Session, user_id: uuid.UUID, limit: int) -> None:
    """429 unless the user has fewer than ``limit`` uploads in flight (the caller's lock held)."""
    lock_user(session, user_id)
    if in_flight(session, user_id) >= limit:
        raise TooManyUploads(limit)


@dataclass(slots=True)
class Slot:
    """One of a user's fair-use slots, held by an upload."""

    id: uuid.UUID
    released: bool = False

    def release_with(self, session: Session) -> None:
        """Free the slot in ``session``'s transaction, the one that stores what it was held for:
        gone with that commit (no transaction of its own), kept if it rolls back."""
        session.execute(delete(UploadInFlight).where(UploadInFlight.id == self.id))
        event.listen(session, "after_commit", self._committed, once=True)

    def _committed(self, _session: Session) -> None:
        self.released = True


@asynccontextmanager
async def upload_slot(
    database: Database,
    *,
    user_id: uuid.UUID,
    limit: int,
    lifetime_seconds: float,
    quota_bytes: int | None = None,
) -> AsyncIterator[Slot]:
    """Hold one of the user's ``limit`` slots while the block runs, or raise 429 at once (and
    413 when the user's quota is used up already: no recording can fit). Freed at the end,
    unless ``Slot.release_with`` freed it already."""
    slot = Slot(uuid.uuid4())

    def take(session: Session) -> None:
        check_admission(session, user_id, limit)
        check_quota(session, user_id, quota_bytes, adding=1)
        expires_at = utc_now() + timedelta(seconds=lifetime_seconds)
        session.add(UploadInFlight(id=slot.id, user_id=user_id, expires_at=expires_at))

    await database.run(take)
    try:
        yield slot
    finally:
        # If the database is down now, the row expires instead.
        with anyio.CancelScope(shield=True), suppress(DependencyUnavailable):
            if not slot.released:
                await database.run(slot.release_with)  # in a transaction of its own


def stored_bytes(session: Session, user_id: uuid.UUID) -> int:
    used = session.scalar(
        select(func.coalesce(func.sum(Record.size_bytes), 0)).where(Record.user_id == user_id)
    )
    return int(used or 0)


def check_quota(session: Session, user_id: uuid.UUID, quota: int | None, adding: int) -> None:
    """413 ``quota-exceeded`` if ``adding`` bytes would take the user past ``quota``."""
    if quota is None:
        return
    lock_user(session, user_id)
    used = stored_bytes(session, user_id)
    if used + adding > quota:
        raise QuotaExceeded(quota, used)
