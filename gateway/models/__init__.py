"""The database schema as SQLAlchemy 2.0 typed models; Alembic migrations own the real schema."""

from gateway.models.base import Base
from gateway.models.guard import IdempotencyKey, UploadInFlight
from gateway.models.job import Job
from gateway.models.record import Record
from gateway.models.upload import Upload, UploadChunk
from gateway.models.user import User
from gateway.models.webhook import Webhook, WebhookDelivery

__all__ = [
    "Base",
    "IdempotencyKey",
    "Job",
    "Record",
    "Upload",
    "UploadChunk",
    "UploadInFlight",
    "User",
    "Webhook",
    "WebhookDelivery",
]
