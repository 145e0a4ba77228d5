"""Gateway settings: read once from the environment, validated at start-up."""

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

GIB = 1024**3
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class Settings(BaseSettings):
    """Every knob of the gateway; the defaults are the embedded single-machine setup."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    database_url: str = "sqlite:///./var/riffle.db"
    # Connections kept per gateway process; uploads hold one only for short transactions.
    database_pool_size: Annotated[int, Field(ge=1)] = 10
    storage_url: str = "file://./var/objects"
    s3_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_region: str = "us-east-1"
    transcoder_url: str = "http://127.0.0.1:8001"
    public_base_url: str | None = None
    max_upload_bytes: Annotated[int, Field(gt=0)] = GIB
    max_duration_seconds: Annotated[float, Field(gt=0)] = 3 * 3600
    transcode_timeout_seconds: Annotated[float, Field(gt=0)] = 600
    # The whole request body must arrive within this; a client dribbling bytes is cut off (408).
    upload_timeout_seconds: Annotated[float, Field(gt=0)] = 3600

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str) -> str:
        url = urlsplit(value)
        if url.scheme == "file" and (url.netloc or url.path):
            return value
        if url.scheme == "s3" and _BUCKET.fullmatch(url.netloc) and url.path in ("", "/"):
            return value
        # Caught here, a bad bucket name is a clear start-up error instead of 503s forever.
        raise ValueError(
            "must be file://<folder> or s3://<bucket>, the bucket 3 to 63 lower-case letters, "
            "digits, dots or hyphens"
        )

    @field_validator("public_base_url", "s3_endpoint_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        # Compose passes unset variables through as empty strings.
        return value.rstrip("/") or None if value else None
