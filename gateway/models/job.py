import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.models.base import Base, UtcDateTime, utc_now

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
FINISHED = (SUCCEEDED, FAILED)
# What a job does: convert an upload into a record, or deliver one webhook event.
CONVERT, WEBHOOK = "convert", "webhook"


class Job(Base):
    """Work to run (or that ran): durable, claimed by one worker at a time under a lease.

    A conversion's ``record_id`` is fixed when the job is made, so however often it runs, it
    makes one record. A webhook delivery's job has the delivery's id and neither upload nor record.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        # Serves the claim: the oldest runnable job first.
        Index("ix_jobs_status_run_after", "status", "run_after"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default=CONVERT)
    status: Mapped[str] = mapped_column(String(20), default=QUEUED)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Held by a worker until then; a lapsed lease makes a running job claimable again.
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Not before then (a retry's back-off).
    run_after: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    # The upload it converts (no foreign key: an expired upload row goes, the job stays) and the
    # record it makes; both None for a webhook delivery.
    upload_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    record_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
