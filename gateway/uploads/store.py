"""An upload's bytes in the object store: one object per committed chunk, under
``uploads/<upload id>/``, read back in order as one stream. Any replica reads what any other
wrote: nothing of an upload lives on one machine."""

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from gateway.conversion import HEAD_BYTES
from gateway.models import UploadChunk
from gateway.storage import ObjectStore

PREFIX = "uploads/"
CONTENT_TYPE = "application/offset+octet-stream"


def upload_prefix(upload_id: uuid.UUID) -> str:
    return f"{PREFIX}{upload_id}/"


def chunk_key(upload_id: uuid.UUID, offset: int) -> str:
    """Unique per attempt: two requests racing for one offset never write the same object."""
    return f"{upload_prefix(upload_id)}{offset:015d}-{uuid.uuid4().hex[:12]}"


def put_chunk(store: ObjectStore, key: str, path: Path) -> None:
    """Blocking: store the spooled chunk at ``path``."""
    store.put_file(key, path, content_type=CONTENT_TYPE, metadata={})


def delete_upload(store: ObjectStore, upload_id: uuid.UUID) -> None:
    """Blocking: every object of the upload, committed chunks and losers of races alike."""
    for stored in store.list_objects(upload_prefix(upload_id)):
        store.delete(stored.key)


@dataclass(frozen=True, slots=True)
class StoredUpload:
    """A complete upload as a ``WavSource``: its chunks, in order of offset."""

    store: ObjectStore
    pieces: Sequence[UploadChunk]

    @property
    def size(self) -> int:
        return sum(piece.size for piece in self.pieces)

    async def head(self) -> bytes:
        head = bytearray()
        async for chunk in self.chunks():
            head += chunk
            if len(head) >= HEAD_BYTES:
                break
        return bytes(head[:HEAD_BYTES])

    async def chunks(self) -> AsyncIterator[bytes]:
        for piece in sorted(self.pieces, key=lambda piece: piece.offset):
            if piece.size == 0:
                continue
            reader: Iterator[bytes] = await anyio.to_thread.run_sync(
                self.store.open_range, piece.key, 0, piece.size - 1
            )
            try:
                while (chunk := await anyio.to_thread.run_sync(next, reader, None)) is not None:
                    yield chunk
            finally:
                close = getattr(reader, "close", None)
                if close is not None:
                    await anyio.to_thread.run_sync(close)
