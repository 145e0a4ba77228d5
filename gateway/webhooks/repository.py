"""Every query on webhooks and their deliveries."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway.models import Webhook, WebhookDelivery
from gateway.models.base import utc_now


def get_webhook(session: Session, *, user_id: uuid.UUID) -> Webhook | None:
    return session.get(Webhook, user_id)


def put_webhook(
    session: Session, *, user_id: uuid.UUID, url: str, secret: str, base_url: str
) -> Webhook:
    """Set (or replace) the user's webhook; a new secret each time."""
    now = utc_now()
    webhook = session.get(Webhook, user_id, with_for_update=True)
    if webhook is None:
        webhook = Webhook(user_id=user_id, created_at=now)
        session.add(webhook)
    webhook.url, webhook.secret, webhook.base_url, webhook.updated_at = url, secret, base_url, now
    session.flush()
    return webhook


def delete_webhook(session: Session, *, user_id: uuid.UUID) -> bool:
    result = session.execute(delete(Webhook).where(Webhook.user_id == user_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def add_delivery(session: Session, *, delivery: WebhookDelivery) -> WebhookDelivery:
    session.add(delivery)
    session.flush()
    return delivery


def delivery_with_webhook(
    session: Session, *, delivery_id: uuid.UUID
) -> tuple[WebhookDelivery, Webhook | None] | None:
    """The delivery and its user's webhook as it is now (None: removed since the event)."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return None
    return delivery, session.get(Webhook, delivery.user_id)


def record_attempt(
    session: Session,
    *,
    delivery_id: uuid.UUID,
    attempt: dict[str, Any],
    status: str,
    next_attempt_at: datetime | None,
) -> None:
    """Add ``attempt`` (its log entry) to the delivery, now in ``status``."""
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None:
        return
    delivery.attempts += 1
    delivery.attempt_log = [*delivery.attempt_log, attempt]  # a new list: JSON is not mutable
    delivery.last_status = attempt["status"]
    delivery.last_error = attempt["error"]
    delivery.status = status
    delivery.next_attempt_at = next_attempt_at
    delivery.updated_at = utc_now()


def give_up(session: Session, *, delivery_id: uuid.UUID, status: str, error: str) -> None:
    """Mark the delivery finished without an attempt (its job failed some other way)."""
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is not None:
        delivery.status, delivery.last_error, delivery.next_attempt_at = status, error, None
        delivery.updated_at = utc_now()


def list_deliveries(session: Session, *, user_id: uuid.UUID, limit: int) -> list[WebhookDelivery]:
    """The user's latest deliveries, newest first."""
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.user_id == user_id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
        )
    )
