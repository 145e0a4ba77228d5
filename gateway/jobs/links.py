"""The public form of a job: its URL and its JSON."""

import uuid

from fastapi import Request

from gateway.config import Settings
from gateway.jobs.schemas import JobOut
from gateway.models import Job, Record
from gateway.models.job import FAILED
from gateway.records.links import public_base_url, record_view


def job_url(request: Request, settings: Settings, job_id: uuid.UUID) -> str:
    return f"{public_base_url(request, settings)}/jobs/{job_id}"


def job_out(request: Request, settings: Settings, job: Job, record: Record | None) -> JobOut:
    return job_view(public_base_url(request, settings), job, record)


def job_view(base_url: str, job: Job, record: Record | None) -> JobOut:
    """The job as ``GET /jobs/<id>`` shows it, links below ``base_url`` (a webhook has no
    request)."""
    return JobOut(
        id=job.id,
        status=job.status,
        progress=1.0 if record is not None else job.progress,
        record=record_view(base_url, record) if record is not None else None,
        # A queued job may carry the error of an attempt that will be retried: not its outcome.
        error=job.error if job.status == FAILED else None,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )
