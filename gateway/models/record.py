import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.models.base import Base, UtcDateTime, utc_now


class Record(Base):
    """One converted recording: its MP3 lives in object storage under ``object_key``."""

    __tablename__ = "records"
    __table_args__ = (
        # Serves "this user's records, newest first" as a keyset scan.
        Index("ix_records_user_id_created_at_id", "user_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    object_key: Mapped[str] = mapped_column(String(200), unique=True)
    original_filename: Mapped[str] = mapped_column(String(1024))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    duration_seconds: Mapped[float] = mapped_column(Float)
    channels: Mapped[int] = mapped_column(Integer)
    sample_rate: Mapped[int] = mapped_column(Integer)
    bitrate: Mapped[int] = mapped_column(Integer)
    # The nominal CBR rate, or the average of a VBR stream (kbit/s).
    bitrate_kbps: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(3))  # "cbr" | "vbr"
    # The ID3 text frames written: {"title": ..., ...}, only those present.
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    integrated_lufs: Mapped[float | None] = mapped_column(Float)
    true_peak_dbtp: Mapped[float | None] = mapped_column(Float)
    # The waveform peaks object (audiowaveform .dat); None for records made before peaks.
    peaks_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
