"""The object store interface: the gateway's only view of where MP3s live."""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from servicekit.errors import DependencyUnavailable

# Per download stream: below servicekit.malloc's 1 MiB mmap threshold, so each chunk's buffer
# comes from the heap, not from a new mapping that faults in 256 pages.
CHUNK_BYTES = 512 * 1024


class StorageUnavailable(DependencyUnavailable):
    def __init__(self) -> None:
        super().__init__("storage")


class ObjectMissing(Exception):
    """The key names no object (a row whose object is gone: see ``reconcile``)."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    modified: datetime


@dataclass(frozen=True, slots=True)
class IncompleteUpload:
    """A put that never finished (an S3 multipart upload, a folder store's partial file): it
    takes space, and no one will complete it once the process that began it is gone."""

    key: str
    started: datetime
    handle: str  # what ``abort_incomplete`` needs: the upload id, the partial file's key


class ObjectStore(Protocol):
    """Blocking calls: run them in a worker thread, never on the event loop."""

    def put_file(
        self, key: str, path: Path, *, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        """Store the file at ``path`` under ``key``, all or nothing."""

    def open_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Fetch bytes ``start..end`` (inclusive) eagerly; yield them in chunks."""

    def open_file(self, key: str) -> BinaryIO | None:
        """The object as an open local file (for a zero-copy download), or ``None`` where
        objects are not files."""

    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        """Every object under ``prefix``, in ascending byte order of key, fetched page by page."""

    def list_incomplete(self, prefix: str) -> Iterator[IncompleteUpload]:
        """Every unfinished put under ``prefix``, page by page."""

    def abort_incomplete(self, upload: IncompleteUpload) -> None:
        """Discard ``upload`` and the space it holds (gone already is not an error)."""

    def check(self) -> None:
        """Raise ``StorageUnavailable`` unless the store answers (and can hold objects: a missing
        bucket is created)."""

    def close(self) -> None:
        """Release connections."""
