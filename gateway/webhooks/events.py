"""The events a webhook hears, queued in the transaction that makes them true: a record is never
inserted (nor a job failed) without its delivery queued, and never queued without it."""

import json
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from gateway.jobs import queue
from gateway.jobs.links import job_view
from gateway.models import Job, Record, WebhookDelivery
from gateway.models.base import utc_now
from gateway.models.job import WEBHOOK
from gateway.models.webhook import PENDING
from gateway.records.links import record_view
from gateway.webhooks import repository

RECORD_CREATED, JOB_FAILED = "record.created", "job.failed"
EVENTS = (RECORD_CREATED, JOB_FAILED)


def record_created(session: Session, *, record: Record) -> WebhookDelivery | None:
    """Queue ``record.created`` (data: the record as the upload answers it)."""
    return _announce(
        session,
        user_id=record.user_id,
        event=RECORD_CREATED,
        data=lambda base_url: record_view(base_url, record).model_dump(mode="json"),
    )


def job_failed(session: Session, *, job_id: uuid.UUID) -> WebhookDelivery | None:
    """Queue ``job.failed`` (data: the job as ``GET /jobs/<id>`` shows it)."""
    job = session.get(Job, job_id)
    if job is None:
        return None
    return _announce(
        session,
        user_id=job.user_id,
        event=JOB_FAILED,
        data=lambda base_url: job_view(base_url, job, None).model_dump(mode="json"),
    )


def _announce(
    session: Session,
    *,
    user_id: uuid.UUID,
    event: str,
    data: Callable[[str], dict[str, Any]],
) -> WebhookDelivery | None:
    """A delivery and the job that sends it, if the user has a webhook."""
    webhook = repository.get_webhook(session, user_id=user_id)
    if webhook is None:
        return None
    delivery_id, now = uuid.uuid4(), utc_now()
    # The body is fixed here: every attempt sends (and signs) these very bytes.
    payload = json.dumps(
        {
            "type": event,
            "timestamp": now.isoformat().replace("+00:00", "Z"),
            "data": data(webhook.base_url),
        },
        separators=(",", ":"),
    )
    delivery = repository.add_delivery(
        session,
        delivery=WebhookDelivery(
            id=delivery_id,
            user_id=user_id,
            event=event,
            webhook_id=f"msg_{delivery_id.hex}",
            payload=payload,
            status=PENDING,
            attempts=0,
            attempt_log=[],
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        ),
    )
    queue.submit(session, job=Job(id=delivery_id, user_id=user_id, kind=WEBHOOK, run_after=now))
    return delivery
