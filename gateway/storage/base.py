"""The object store interface: the gateway's only view of where MP3s live."""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from servicekit.errors import DependencyUnavailable

CHUNK_BYTES = 1024 * 1024  # per download stream; each chunk is one worker-thread hop


class StorageUnavailable(DependencyUnavailable):
    def __init__(self) -> None:
        super().__init__("storage")


class ObjectMissing(Exception):
    """The key names no object (a row whose object is gone: see ``reconcile``)."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    modified: datetime


class ObjectStore(Protocol):
    """Blocking calls: run them in a worker thread, never on the event loop."""

    def put_file(
        self, key: str, path: Path, *, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        """Store the file at ``path`` under ``key``, all or nothing."""

    def open_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Fetch bytes ``start..end`` (inclusive) eagerly; yield them in chunks."""

    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        """Every object under ``prefix``, in ascending byte order of key, fetched page by page."""

    def check(self) -> None:
        """Raise ``StorageUnavailable`` unless the store answers (and can hold objects: a missing
        bucket is created)."""

    def close(self) -> None:
        """Release connections."""
