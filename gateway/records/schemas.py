import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class RecordOut(BaseModel):
    """A stored recording, as the upload answers it."""

    id: uuid.UUID
    user: uuid.UUID
    url: str = Field(description="Absolute download link; needs no token.")
    duration_seconds: float
    size_bytes: int
    content_type: str = "audio/mpeg"

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "6f1c2a4e-8d43-4b8e-9a57-2f0d7c5e9b11",
                    "user": "0b7c9a1e-3f52-4d6a-8e21-5c4b3a291f00",
                    "url": "http://localhost:8000/record?id=6f1c2a4e-8d43-4b8e-9a57-2f0d7c5e9b11"
                    "&user=0b7c9a1e-3f52-4d6a-8e21-5c4b3a291f00",
                    "duration_seconds": 5.0,
                    "size_bytes": 80661,
                    "content_type": "audio/mpeg",
                }
            ]
        }
    }


class RecordItem(RecordOut):
    """A recording as listed: also its original file name and when it was added."""

    original_filename: str
    created_at: datetime


class RecordPage(BaseModel):
    items: list[RecordItem]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )
