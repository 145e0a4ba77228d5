import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.models.base import Base, UtcDateTime, utc_now

PENDING, DELIVERED, GAVE_UP = "pending", "succeeded", "failed"


class Webhook(Base):
    """A user's webhook: where its events go, and the secret that signs them (one per user)."""

    __tablename__ = "webhooks"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    # `whsec_<base64>`: kept as it is, since every delivery is signed with it.
    secret: Mapped[str] = mapped_column(String(100))
    # Where links in payloads point: PUBLIC_BASE_URL, or the address the webhook was set at
    # (a worker has no request of its own to take it from).
    base_url: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class WebhookDelivery(Base):
    """One event for one user's webhook: its exact body, and every attempt to deliver it.

    The job with the same id (kind ``webhook``) schedules the attempts; this row is what the
    owner reads (``GET /users/<id>/webhook/deliveries``).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # Serves the delivery log: a user's newest first.
        Index("ix_webhook_deliveries_user_id_created_at", "user_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    event: Mapped[str] = mapped_column(String(50))
    # The Standard Webhooks `webhook-id`: the same on every attempt, so receivers can dedupe.
    webhook_id: Mapped[str] = mapped_column(String(64), unique=True)
    # The body exactly as sent (and signed) on every attempt.
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # [{"at", "url", "status", "error", "duration_seconds"}, …]: one entry per attempt.
    attempt_log: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
