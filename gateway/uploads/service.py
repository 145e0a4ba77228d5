"""tus uploads: create, append a chunk, report, terminate. Offsets and checksums live here; the
HTTP protocol is the router's, the bytes are the store's.

A chunk counts only once it is whole in the object store and its checksum (if one was sent)
matched; then one transaction moves the offset (only from where the client said it was: two
replicas racing on one upload cannot both win), records the chunk, and, with the last byte,
queues the upload's conversion job.
"""

import base64
import binascii
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import anyio
import anyio.to_thread
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway import repositories
from gateway.conversion import Conversion
from gateway.db import Database
from gateway.errors import UploadExpired, UploadNotFound, UploadTooLarge
from gateway.fair_use import check_admission
from gateway.jobs import queue
from gateway.jobs.service import new_job
from gateway.models import Job, Upload, UploadChunk
from gateway.models.base import utc_now
from gateway.models.job import FAILED, QUEUED
from gateway.storage import ObjectStore
from gateway.uploads.store import StoredUpload, chunk_key, delete_upload, put_chunk
from servicekit import wav
from servicekit.errors import NotAWav, ServiceError

CHECKSUMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
_FLUSH_BYTES = 1024 * 1024


class OffsetMismatch(ServiceError):
    status, slug, title = 409, "upload-offset-mismatch", "Upload-Offset does not match"

    def __init__(self, offset: int) -> None:
        super().__init__(
            f"The upload is at offset {offset}; send the bytes from there (HEAD tells).",
            headers={"Upload-Offset": str(offset)},
        )


class ChecksumMismatch(ServiceError):
    status, slug, title = 460, "checksum-mismatch", "Checksum mismatch"

    def __init__(self) -> None:
        super().__init__("The chunk's checksum does not match Upload-Checksum; it was not kept.")


class UnsupportedChecksum(ServiceError):
    status, slug, title = 400, "checksum-algorithm-unsupported", "Checksum algorithm not supported"

    def __init__(self, algorithm: str) -> None:
        super().__init__(
            f"Upload-Checksum algorithm {algorithm!r} is not supported; use "
            f"{' or '.join(CHECKSUMS)}."
        )


class ChecksumInvalid(ServiceError):
    status, slug, title = 400, "checksum-invalid", "Upload-Checksum is malformed"


@dataclass(frozen=True, slots=True)
class Checksum:
    algorithm: str
    digest: bytes


@dataclass(frozen=True, slots=True)
class Appended:
    upload: Upload
    job: Job | None  # queued by this chunk: the last byte arrived


async def create(
    database: Database,
    *,
    user_id: uuid.UUID,
    length: int,
    metadata_header: str,
    filename: str,
    options: dict[str, str],
    expires_seconds: float,
    max_in_flight: int,
    also: Callable[[Session, Upload], None] | None = None,
) -> Upload:
    """A new upload of ``length`` bytes (429 when the user has ``max_in_flight`` uploads or
    jobs running); ``also(session, upload)`` runs in the same transaction."""
    if length < wav.MAGIC_BYTES:
        raise NotAWav(f"{length} bytes cannot hold a WAV header; nothing was kept.")
    upload = Upload(
        id=uuid.uuid4(),
        user_id=user_id,
        length=length,
        offset=0,
        metadata_header=metadata_header,
        filename=filename,
        options=options,
        expires_at=utc_now() + timedelta(seconds=expires_seconds),
    )

    def work(session: Session) -> Upload:
        check_admission(session, user_id, max_in_flight)
        session.add(upload)
        session.flush()
        if also is not None:
            also(session, upload)
        return upload

    return await database.run(work)


async def find(database: Database, *, upload_id: uuid.UUID, user_id: uuid.UUID) -> Upload:
    """The user's upload (404 for anyone else's), unless it expired (410)."""
    upload = await database.run(
        lambda session: session.scalars(
            select(Upload).where(Upload.id == upload_id, Upload.user_id == user_id)
        ).first()
    )
    if upload is None:
        raise UploadNotFound()
    if upload.expires_at < utc_now():
        raise UploadExpired()
    return upload


async def append(
    database: Database,
    store: ObjectStore,
    upload: Upload,
    *,
    offset: int,
    body: AsyncIterator[bytes],
    checksum: Checksum | None,
    spool_dir: Path,
    expires_seconds: float,
) -> Appended:
    """Take the bytes of ``body`` at ``offset``; see the module docstring for when they count.

    A body cut short (the client's connection dropped) keeps what arrived, unless a checksum
    was sent: then the chunk cannot be checked and is dropped whole.
    """
    if offset != upload.offset:
        raise OffsetMismatch(upload.offset)
    remaining = upload.length - upload.offset
    digest = CHECKSUMS[checksum.algorithm]() if checksum else None
    spool = spool_dir / "chunk"
    size, head, complete_body = await _spool(body, spool, remaining, digest)
    if checksum is not None and (
        not complete_body or digest is None or digest.digest() != checksum.digest
    ):
        raise ChecksumMismatch()
    if size == 0:
        return Appended(upload, None)
    if offset < wav.MAGIC_BYTES:
        prefix = await _stored_prefix(database, store, upload) + head
        if wav.sniff(prefix[: wav.MAGIC_BYTES]) is False:
            await terminate(database, store, upload)
            raise NotAWav(
                "The upload does not start with a RIFF/RF64 … WAVE header; it was terminated."
            )
    key = chunk_key(upload.id, offset)
    await anyio.to_thread.run_sync(put_chunk, store, key, spool)
    try:
        return await database.run(
            lambda session: _commit(session, upload, offset, size, key, expires_seconds)
        )
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(store.delete, key)
        raise


async def _spool(
    body: AsyncIterator[bytes], path: Path, limit: int, digest: "hashlib._Hash | None"
) -> tuple[int, bytes, bool]:
    """Write ``body`` to ``path``: (bytes written, the first 12 of them, whether the body came
    whole). More than ``limit`` bytes is 413: a chunk may not pass Upload-Length."""
    size = 0
    head = b""
    pending = bytearray()
    whole = True
    async with await anyio.open_file(path, "wb") as out:
        try:
            async for piece in body:
                size += len(piece)
                if size > limit:
                    raise UploadTooLarge(
                        f"The chunk goes past Upload-Length ({limit} bytes were left)."
                    )
                if len(head) < wav.MAGIC_BYTES:
                    head = (head + piece)[: wav.MAGIC_BYTES]
                if digest is not None:
                    digest.update(piece)
                pending += piece
                if len(pending) >= _FLUSH_BYTES:
                    await out.write(bytes(pending))
                    pending.clear()
        except Disconnected:
            whole = False
        await out.write(bytes(pending))
    return size, head, whole


class Disconnected(Exception):
    """The client's body ended early (raised by the router's body stream)."""


async def _stored_prefix(database: Database, store: ObjectStore, upload: Upload) -> bytes:
    """The upload's first bytes already committed (fewer than 12, read for the WAV check)."""
    if upload.offset == 0:
        return b""
    pieces = await database.run(
        lambda session: repositories.upload_chunks(session, upload_id=upload.id)
    )
    prefix = bytearray()
    async for chunk in StoredUpload(store, pieces).chunks():
        prefix += chunk
        if len(prefix) >= wav.MAGIC_BYTES:
            break
    return bytes(prefix)


def _commit(
    session: Session, upload: Upload, offset: int, size: int, key: str, expires_seconds: float
) -> Appended:
    expires_at = utc_now() + timedelta(seconds=expires_seconds)
    moved = session.execute(
        update(Upload)
        .where(Upload.id == upload.id, Upload.offset == offset)
        .values(offset=offset + size, expires_at=expires_at)
    )
    if not moved.rowcount:  # type: ignore[attr-defined]
        current = session.get(Upload, upload.id)
        raise OffsetMismatch(current.offset if current else offset)
    session.add(UploadChunk(upload_id=upload.id, offset=offset, size=size, key=key))
    updated = session.get(Upload, upload.id)
    assert updated is not None
    job = None
    if updated.complete:
        conversion = Conversion(uuid.uuid4(), updated.user_id, updated.filename)
        job = queue.submit(session, job=new_job(updated, conversion))
    return Appended(updated, job)


async def terminate(database: Database, store: ObjectStore, upload: Upload) -> None:
    """Remove the upload: its bytes first, then its row (later requests: 404)."""
    await anyio.to_thread.run_sync(delete_upload, store, upload.id)

    def work(session: Session) -> None:
        session.execute(
            update(Job)
            .where(Job.upload_id == upload.id, Job.status == QUEUED)
            .values(status=FAILED, error=UploadExpired().problem(), updated_at=utc_now())
        )
        row = session.get(Upload, upload.id)
        if row is not None:
            session.delete(row)

    await database.run(work)


def parse_checksum(header: str | None) -> Checksum | None:
    """``Upload-Checksum: <algorithm> <base64 digest>``."""
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise UnsupportedChecksum(algorithm)
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    # A digest that cannot be one of the algorithm (none, not base64, the wrong length) is a
    # malformed header, not a mismatch.
    if len(digest) != CHECKSUMS[algorithm]().digest_size:
        raise ChecksumInvalid(
            f"Upload-Checksum: send '{algorithm} <base64 of the {algorithm} digest>'."
        )
    return Checksum(algorithm, digest)
