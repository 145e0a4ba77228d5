import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from gateway.records.schemas import RecordOut

JOB_EXAMPLE: dict[str, Any] = {
    "id": "9a4e1c7b-2d3f-4e5a-8b6c-7d8e9f0a1b2c",
    "status": "running",
    "progress": 0.42,
    "record": None,
    "error": None,
    "created_at": "2026-12-01T10:00:00Z",
    "updated_at": "2026-12-01T10:00:03Z",
}


class JobOut(BaseModel):
    """A conversion: queued, running, then succeeded (with its record) or failed (with the
    problem the synchronous upload would have answered)."""

    id: uuid.UUID
    status: Literal["queued", "running", "succeeded", "failed"]
    progress: float = Field(ge=0, le=1, description="Share of the WAV converted so far.")
    record: RecordOut | None = Field(description="The record, once the job succeeded.")
    error: dict[str, Any] | None = Field(
        description="The problem (RFC 9457) that failed the job, e.g. `…/audio-too-long`."
    )
    created_at: datetime
    updated_at: datetime

    model_config = {"json_schema_extra": {"examples": [JOB_EXAMPLE]}}
