"""Making jobs and reading them: an asynchronous upload becomes a stored upload plus a job, in
one transaction; a job is read by its owner only."""

import uuid
from collections.abc import Callable
from datetime import timedelta

import anyio
import anyio.to_thread
from sqlalchemy.orm import Session

from gateway.conversion import Conversion, FileSource
from gateway.db import Database
from gateway.errors import JobNotFound
from gateway.jobs import queue
from gateway.models import Job, Record, Upload, UploadChunk
from gateway.models.base import utc_now
from gateway.storage import ObjectStore
from gateway.uploads.store import chunk_key, delete_upload, put_chunk
from servicekit import wav
from servicekit.errors import UndecodableAudio


def new_job(upload: Upload, conversion: Conversion) -> Job:
    """The job that converts ``upload`` into the record ``conversion`` names; same id."""
    return Job(
        id=upload.id,
        user_id=upload.user_id,
        upload_id=upload.id,
        record_id=conversion.record_id,
    )


async def check_header(source: FileSource, *, max_duration_seconds: float) -> None:
    """What the WAV header alone shows to be wrong, answered before any job exists (422)."""
    head = await source.head()
    header = wav.parse_header(head, complete=len(head) >= source.size)
    if header is None:
        raise UndecodableAudio(f"No audio data chunk within the first {len(head) // 1024} KiB.")
    wav.check_supported(header, max_duration_seconds=max_duration_seconds)


async def submit_file(
    source: FileSource,
    conversion: Conversion,
    *,
    database: Database,
    store: ObjectStore,
    expires_seconds: float,
    also: Callable[[Session, Job], None] | None = None,
) -> Job:
    """Store the spooled WAV as a one-chunk upload and queue its job; nothing is left if that
    fails."""
    upload_id = uuid.uuid4()
    key = chunk_key(upload_id, 0)
    await anyio.to_thread.run_sync(put_chunk, store, key, source.path)

    def work(session: Session) -> Job:
        upload = Upload(
            id=upload_id,
            user_id=conversion.user_id,
            length=source.size,
            offset=source.size,
            filename=conversion.filename,
            expires_at=utc_now() + timedelta(seconds=expires_seconds),
            options=conversion.options.as_fields(),
        )
        session.add(upload)
        session.add(UploadChunk(upload_id=upload_id, offset=0, size=source.size, key=key))
        job = queue.submit(session, job=new_job(upload, conversion))
        if also is not None:
            also(session, job)
        return job

    try:
        return await database.run(work)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(delete_upload, store, upload_id)
        raise


async def find_job(
    database: Database, *, job_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[Job, Record | None]:
    found = await database.run(
        lambda session: queue.get_with_record(session, job_id=job_id, user_id=user_id)
    )
    if found is None:
        raise JobNotFound()
    return found
