"""The public form of a record: its absolute download link and the fields every answer shows."""

from fastapi import Request

from gateway.config import Settings
from gateway.models import Record
from gateway.records.schemas import Loudness, RecordOut


def public_base_url(request: Request, settings: Settings) -> str:
    """``PUBLIC_BASE_URL`` when set, else the scheme, host and port the client addressed."""
    return settings.public_base_url or str(request.base_url).rstrip("/")


def record_url(request: Request, settings: Settings, record: Record) -> str:
    """The absolute download link (no token: the ids are the capability)."""
    return record_view(public_base_url(request, settings), record).url


def record_out(request: Request, settings: Settings, record: Record) -> RecordOut:
    return record_view(public_base_url(request, settings), record)


def record_view(base_url: str, record: Record) -> RecordOut:
    """The record as the API shows it, its link below ``base_url`` (a webhook has no request)."""
    measured = record.integrated_lufs is not None or record.true_peak_dbtp is not None
    return RecordOut(
        id=record.id,
        user=record.user_id,
        url=f"{base_url}/record?id={record.id}&user={record.user_id}",
        duration_seconds=record.duration_seconds,
        size_bytes=record.size_bytes,
        content_type=record.content_type,
        bitrate_kbps=record.bitrate_kbps,
        mode="vbr" if record.mode == "vbr" else "cbr",
        tags=record.tags,
        # Null for records made before loudness was measured (they have no peaks either).
        loudness=Loudness(
            integrated_lufs=record.integrated_lufs, true_peak_dbtp=record.true_peak_dbtp
        )
        if measured or record.peaks_key is not None
        else None,
    )
