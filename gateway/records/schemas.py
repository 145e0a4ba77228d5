import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class Loudness(BaseModel):
    """ITU-R BS.1770 (EBU R 128) figures of the input, measured during the conversion."""

    integrated_lufs: float | None = Field(
        description="Integrated loudness (LUFS); null when nothing passes the -70 LUFS gate "
        "(silence, or under 0.4 s)."
    )
    true_peak_dbtp: float | None = Field(
        description="True peak (dBTP, 4x oversampled); null for digital silence."
    )


class RecordOut(BaseModel):
    """A stored recording, as the upload answers it."""

    id: uuid.UUID
    user: uuid.UUID
    url: str = Field(description="Absolute download link; needs no token.")
    duration_seconds: float
    size_bytes: int
    content_type: str = "audio/mpeg"
    bitrate_kbps: int = Field(
        description="The nominal CBR rate, or the average of a VBR stream (kbit/s). Below 32 kHz "
        "output (MPEG-2/2.5) CBR is at most 160."
    )
    mode: Literal["cbr", "vbr"]
    tags: dict[str, str] = Field(
        description="The ID3v2.4 text written: title, artist, album, comment, date, genre, "
        "track — only those present (the request's fields, else the WAV's LIST/INFO, bext, iXML)."
    )
    loudness: Loudness | None = Field(
        description="Measured from the input; null for recordings made before it was measured."
    )

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
                    "bitrate_kbps": 174,
                    "mode": "vbr",
                    "tags": {"title": "Take 3", "artist": "Alice", "date": "2026-11-27"},
                    "loudness": {"integrated_lufs": -16.2, "true_peak_dbtp": -1.1},
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
