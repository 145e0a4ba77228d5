import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from gateway.webhooks.targets import MAX_URL_LENGTH

URL_EXAMPLE = "https://hooks.example.com/riffle"
SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw1gZ6B4jXq0E="  # noqa: S105 (a made-up one)


class WebhookIn(BaseModel):
    url: str = Field(
        max_length=MAX_URL_LENGTH,
        description="An http(s) URL whose host resolves to public addresses only.",
        examples=[URL_EXAMPLE],
    )


class WebhookOut(BaseModel):
    """The webhook as set: keep the secret, it verifies every delivery."""

    url: str = Field(examples=[URL_EXAMPLE])
    secret: str = Field(
        description="Signs every delivery (Standard Webhooks); a new one on every `PUT`.",
        examples=[SECRET_EXAMPLE],
    )


class AttemptOut(BaseModel):
    at: datetime
    status: int | None = Field(description="The receiver's HTTP status; null if none came.")
    error: str | None = Field(
        description="Why the attempt failed without a status (timeout, refused connection, a "
        "target the guard refused), else null.",
    )
    duration_seconds: float


DELIVERY_EXAMPLE: dict[str, Any] = {
    "id": "3d6f0a52-7c1e-4b8a-9e2f-5a4b3c2d1e0f",
    "event": "record.created",
    "webhook_id": "msg_3d6f0a527c1e4b8a9e2f5a4b3c2d1e0f",
    "status": "succeeded",
    "attempts": 2,
    "last_status": 204,
    "last_error": None,
    "next_attempt_at": None,
    "created_at": "2026-12-02T10:00:00Z",
    "updated_at": "2026-12-02T10:00:05Z",
    "attempt_log": [
        {"at": "2026-12-02T10:00:00Z", "status": 500, "error": None, "duration_seconds": 0.041},
        {"at": "2026-12-02T10:00:05Z", "status": 204, "error": None, "duration_seconds": 0.012},
    ],
    "payload": {
        "type": "record.created",
        "timestamp": "2026-12-02T10:00:00Z",
        "data": {
            "id": "6f1c2a4e-8d43-4b8e-9a57-2f0d7c5e9b11",
            "user": "0b7c9a1e-3f52-4d6a-8e21-5c4b3a291f00",
            "url": "https://riffle.example/record?id=6f1c2a4e-8d43-4b8e-9a57-2f0d7c5e9b11"
            "&user=0b7c9a1e-3f52-4d6a-8e21-5c4b3a291f00",
            "duration_seconds": 5.0,
            "size_bytes": 80661,
            "content_type": "audio/mpeg",
        },
    },
}


class DeliveryOut(BaseModel):
    """One event sent (or being sent) to the webhook, and each attempt so far."""

    id: uuid.UUID
    event: Literal["record.created", "job.failed"]
    webhook_id: str = Field(description="The `webhook-id` header: the same on every attempt.")
    status: Literal["pending", "succeeded", "failed"] = Field(
        description="`pending` while attempts remain; `failed` once they ran out."
    )
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="When the next attempt is due.")
    created_at: datetime
    updated_at: datetime
    attempt_log: list[AttemptOut]
    payload: dict[str, Any] = Field(description="The body as sent: `{type, timestamp, data}`.")

    model_config = {"json_schema_extra": {"examples": [DELIVERY_EXAMPLE]}}


class DeliveryList(BaseModel):
    items: list[DeliveryOut] = Field(description="Newest first.")
