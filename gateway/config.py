"""Gateway settings: read once from the environment, parsed into types, validated at start-up."""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

GIB = 1024**3
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

    @field_validator("public_base_url", "s3_endpoint_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") or None if value else None
