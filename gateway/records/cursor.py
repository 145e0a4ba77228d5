"""Opaque page cursors: the (created_at, id) of the last record a page showed."""

import base64
import binascii
import uuid
from datetime import datetime

from servicekit.errors import InvalidInput


def encode_cursor(created_at: datetime, record_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{record_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position a cursor names; ``InvalidInput`` for anything we did not mint."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, record_id = raw.partition("|")
        created_at = datetime.fromisoformat(moment)
        if created_at.tzinfo is None:
            raise ValueError("naive")
        return created_at, uuid.UUID(record_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        msg = "not a cursor this service returned"
        raise InvalidInput(
            f"cursor: {msg}", errors=[{"loc": ["query", "cursor"], "msg": msg}]
        ) from None
