"""Gateway settings: read once from the environment, parsed into types, validated at start-up."""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

GIB = 1024**3
# 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: the Standard Webhooks example schedule.
WEBHOOK_RETRY_SECONDS = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True, slots=True)
class FolderStorage:
    """``file://<folder>``: objects as files below ``root`` (the embedded default)."""

    root: Path


@dataclass(frozen=True, slots=True)
class S3Storage:
    """``s3://<bucket>``: objects in an S3-compatible bucket."""

    bucket: str


def parse_storage_url(value: object) -> object:
    """``STORAGE_URL`` as the store it names; anything else is a clear start-up error."""
    if not isinstance(value, str):
        return value
    url = urlsplit(value)
    if url.scheme == "file" and (url.netloc or url.path):
        return FolderStorage(Path(url.netloc + url.path))
    if url.scheme == "s3" and _BUCKET.fullmatch(url.netloc) and url.path in ("", "/"):
        return S3Storage(url.netloc)
    # Caught here, a bad bucket name is a clear start-up error instead of 503s forever.
    raise ValueError(
        "must be file://<folder> or s3://<bucket>, the bucket 3 to 63 lower-case letters, "
        "digits, dots or hyphens"
    )


StorageLocation = Annotated[FolderStorage | S3Storage, BeforeValidator(parse_storage_url)]


class Settings(BaseSettings):
    """Every knob of the gateway; the defaults are the embedded single-machine setup."""

    # Compose passes unset variables through as empty strings: those mean "use the default".
    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_ignore_empty=True)

    database_url: str = "sqlite:///./var/riffle.db"
    # Connections kept per gateway process; uploads hold one only for short transactions.
    database_pool_size: Annotated[int, Field(ge=1)] = 10
    storage_url: StorageLocation = FolderStorage(Path("./var/objects"))
    s3_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_region: str = "us-east-1"
    transcoder_url: str = "http://127.0.0.1:8001"
    public_base_url: str | None = None
    max_upload_bytes: Annotated[int, Field(gt=0)] = GIB
    max_duration_seconds: Annotated[float, Field(gt=0)] = 3 * 3600
    # The longest any encode may take; a shorter recording gets a shorter deadline (see below).
    transcode_timeout_seconds: Annotated[float, Field(gt=0)] = 600
    # An encode's deadline: this base plus this much per second of audio the header declares,
    # at most TRANSCODE_TIMEOUT_SECONDS. LAME runs at 30-100x real time: 0.25 leaves 4x at worst.
    transcode_deadline_base_seconds: Annotated[float, Field(gt=0)] = 10
    transcode_deadline_per_audio_second: Annotated[float, Field(gt=0)] = 0.25
    # Every call to the database or the object store (retries included) answers within this.
    dependency_timeout_seconds: Annotated[float, Field(gt=0)] = 30
    # The whole request body must arrive within this; a client dribbling bytes is cut off (408).
    upload_timeout_seconds: Annotated[float, Field(gt=0)] = 3600
    # On SIGTERM, /readyz answers 503 for this long before the listener closes (load balancers
    # stop sending); in-flight requests then get uvicorn's --timeout-graceful-shutdown.
    shutdown_drain_seconds: Annotated[float, Field(ge=0)] = 0
    # Job workers in this process (the embedded default converts in the gateway); 0 where a
    # separate worker tier (`gateway.worker`) runs them.
    job_workers: Annotated[int, Field(ge=0)] = 1
    # A worker renews its claim on a job every third of this; a job whose lease lapsed (its
    # worker died) is claimed again by any worker.
    job_lease_seconds: Annotated[float, Field(gt=0)] = 30
    # How often an idle worker looks for work.
    job_poll_seconds: Annotated[float, Field(gt=0)] = 0.5
    # Attempts of a job that keeps meeting an unavailable dependency before it fails.
    job_max_attempts: Annotated[int, Field(ge=1)] = 5
    # A tus upload not finished within this (from its last byte received) is removed.
    upload_expires_seconds: Annotated[float, Field(gt=0)] = 24 * 3600
    # Fair use: a user's synchronous uploads and jobs running at once; one more is 429.
    max_uploads_in_flight_per_user: Annotated[int, Field(ge=1)] = 4
    # Fair use: bytes of MP3s one user may store (unset: no limit); past it an upload is 413.
    user_quota_bytes: Annotated[int | None, Field(gt=0)] = None
    # How often each worker removes expired uploads (their rows and chunk objects).
    upload_sweep_seconds: Annotated[float, Field(gt=0)] = 60
    # Origins whose browser pages may call the API (CORS); none by default. JSON or a
    # comma-separated list, e.g. https://app.example,https://admin.example.
    cors_allow_origins: Annotated[list[str], NoDecode] = []
    # Seconds between a webhook delivery's attempts (with ±10 % jitter): the Standard Webhooks
    # example schedule, about 24 h in all; the first attempt is at once. Comma-separated.
    webhook_retry_seconds: Annotated[list[Annotated[float, Field(ge=0)]], NoDecode] = list(
        WEBHOOK_RETRY_SECONDS
    )
    # One attempt (name resolution, connection, answer) ends within this.
    webhook_timeout_seconds: Annotated[float, Field(gt=0)] = 10
    # Let webhooks reach loopback, private, link-local… addresses (a test, or a trusted network).
    webhook_allow_private: bool = False

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [origin.strip().rstrip("/") for origin in text.split(",") if origin.strip()]
        return value

    @field_validator("webhook_retry_seconds", mode="before")
    @classmethod
    def _delays(cls, value: object) -> object:
        if isinstance(value, str):
            return [delay.strip() for delay in value.split(",") if delay.strip()]
        return value

    @field_validator("public_base_url", "s3_endpoint_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") or None if value else None
