"""Where MP3s live: a local folder (embedded default) or an S3 bucket, behind one interface."""

import uuid

from gateway.config import FolderStorage, Settings
from gateway.storage.base import (
    IncompleteUpload,
    ObjectMissing,
    ObjectStore,
    StorageUnavailable,
    StoredObject,
)
from gateway.storage.local import LocalObjectStore

__all__ = [
    "PEAKS_SUFFIX",
    "IncompleteUpload",
    "ObjectMissing",
    "ObjectStore",
    "StorageUnavailable",
    "StoredObject",
    "open_store",
    "peaks_key",
    "recording_key",
]


def open_store(settings: Settings) -> ObjectStore:
    """The store ``STORAGE_URL`` names: a folder or an S3 bucket."""
    location = settings.storage_url
    if isinstance(location, FolderStorage):
        return LocalObjectStore(location.root)
    # Imported here: boto3 costs tens of MB that the embedded default never needs.
    from gateway.storage.s3 import S3ObjectStore

    secret = settings.aws_secret_access_key
    return S3ObjectStore(
        location.bucket,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.aws_region,
        access_key_id=settings.aws_access_key_id,
        secret_access_key=secret.get_secret_value() if secret else None,
        timeout_seconds=settings.dependency_timeout_seconds,
    )


def recording_key(user_id: uuid.UUID, record_id: uuid.UUID) -> str:
    """Object keys come from ids we minted, never from client input."""
    return f"recordings/{user_id}/{record_id}.mp3"


PEAKS_SUFFIX = ".peaks"


def peaks_key(object_key: str) -> str:
    """Where a recording's waveform peaks live: beside its MP3 (``….mp3`` → ``….peaks``)."""
    return object_key.removesuffix(".mp3") + PEAKS_SUFFIX
