import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.models.base import Base, UtcDateTime, utc_now


class Upload(Base):
    """A recording's bytes on their way in: a tus upload, or the WAV of an asynchronous
    ``POST /record``. The bytes are objects under ``uploads/<id>/``, one per committed chunk."""

    __tablename__ = "uploads"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    length: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    # The tus Upload-Metadata header as the client sent it (decoded pairs live in ``options``).
    metadata_header: Mapped[str] = mapped_column(String(4096), default="")
    filename: Mapped[str] = mapped_column(String(1024), default="")
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    # The job's conversion options (audio options, ...): an object of strings.
    options: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)

    @property
    def complete(self) -> bool:
        return self.offset >= self.length


class UploadChunk(Base):
    """One committed piece of an upload: ``size`` bytes from ``offset``, in object ``key``."""

    __tablename__ = "upload_chunks"

    upload_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    offset: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str] = mapped_column(String(200))
