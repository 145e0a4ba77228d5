import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.models.base import Base, UtcDateTime, utc_now


class IdempotencyKey(Base):
    """A client's ``Idempotency-Key`` and what its first request answered (once it did)."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # The route and a digest of the request that counts (fields, file bytes; not the boundary).
    fingerprint: Mapped[str] = mapped_column(String(64))
    # None while the first request runs; then its answer, replayed to every repeat.
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    headers: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class UploadInFlight(Base):
    """A synchronous upload being received or converted: one row while it runs, so every
    replica counts a user's uploads in flight in one place."""

    __tablename__ = "uploads_in_flight"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    # Past this the row is a crashed gateway's leftover, not an upload: it no longer counts.
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
