"""Objects as files in a folder: the embedded default for a single machine."""

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from gateway.storage.base import CHUNK_BYTES, ObjectMissing, StorageUnavailable, StoredObject


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
        fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
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
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError as error:
            raise ObjectMissing(key) from error
        return _read_range(handle, start, end)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        found = []
        for path in self.root.rglob("*"):
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix) and path.is_file():
                found.append(StoredObject(key, datetime.fromtimestamp(path.stat().st_mtime, UTC)))
        return iter(sorted(found, key=lambda item: item.key.encode()))

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
