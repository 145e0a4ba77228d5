"""Objects as files in a folder: the embedded default for a single machine."""

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from gateway.storage.base import (
    CHUNK_BYTES,
    IncompleteUpload,
    ObjectMissing,
    StorageUnavailable,
    StoredObject,
)

_PARTIAL = ".partial-"  # a put being written (or one a crash cut short: see list_incomplete)


def _modified(entry: os.DirEntry[str]) -> datetime:
    return datetime.fromtimestamp(entry.stat().st_mtime, UTC)


class LocalObjectStore:
    """Keys map to paths below ``root``; writes land whole via a rename."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"key escapes the store: {key!r}")
        return path

    def put_file(
        self, key: str, path: Path, *, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        # Content type and metadata live in the database row; the folder keeps only the bytes.
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=target.parent, prefix=_PARTIAL)
        try:
            with os.fdopen(fd, "wb") as out, path.open("rb") as source:
                shutil.copyfileobj(source, out, CHUNK_BYTES)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise

    def open_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        return _read_range(self.open_file(key), start, end)

    def open_file(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError as error:
            raise ObjectMissing(key) from error

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        for key, entry in self._walk(self.root, ""):
            if key.startswith(prefix) and not entry.name.startswith(_PARTIAL):
                yield StoredObject(key, _modified(entry))

    def list_incomplete(self, prefix: str) -> Iterator[IncompleteUpload]:
        for key, entry in self._walk(self.root, ""):
            if entry.name.startswith(_PARTIAL) and key.startswith(prefix):
                yield IncompleteUpload(key, _modified(entry), key)

    def abort_incomplete(self, upload: IncompleteUpload) -> None:
        self._path(upload.handle).unlink(missing_ok=True)

    def _walk(self, folder: Path, prefix: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
        """(key, entry) of every file below ``folder``, in ascending byte order of key, holding
        one folder's listing at a time (not every key of the store)."""
        with os.scandir(folder) as listing:
            entries = [(entry.name + ("/" if entry.is_dir() else ""), entry) for entry in listing]
        # A folder's keys all start with "name/": sorting on that orders the keys below it.
        for name, entry in sorted(entries, key=lambda item: item[0].encode()):
            if entry.is_dir():
                yield from self._walk(Path(entry.path), prefix + name)
            elif entry.is_file():
                yield prefix + name, entry

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageUnavailable()

    def close(self) -> None:
        pass


def _read_range(handle: BinaryIO, start: int, end: int) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        remaining = end - start + 1
        while remaining > 0:
            chunk = handle.read(min(CHUNK_BYTES, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
