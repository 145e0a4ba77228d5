"""The periodic clean-up of uploads: expired ones go, their chunk objects first."""

import logging
import uuid

import anyio.to_thread
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway.db import Database
from gateway.models import Job, Upload
from gateway.models.base import utc_now
from gateway.models.job import FINISHED
from gateway.storage import ObjectStore
from gateway.uploads.store import delete_upload

logger = logging.getLogger(__name__)

_BATCH = 100


def expired_uploads(session: Session, *, limit: int = _BATCH) -> list[uuid.UUID]:
    """Uploads past their expiry whose job (if any) is finished: nobody needs their bytes."""
    # (Not NULL: a webhook's job has no upload, and NOT IN a list holding NULL matches nothing.)
    busy = select(Job.upload_id).where(Job.status.not_in(FINISHED), Job.upload_id.is_not(None))
    return list(
        session.scalars(
            select(Upload.id)
            .where(Upload.expires_at < utc_now(), Upload.id.not_in(busy))
            .limit(limit)
        )
    )


async def sweep(database: Database, store: ObjectStore) -> int:
    """Remove expired uploads: objects, then rows (a crash between leaves a row the next sweep
    finds again). Returns how many went."""
    removed = 0
    while ids := await database.run(expired_uploads):
        for upload_id in ids:
            await anyio.to_thread.run_sync(delete_upload, store, upload_id)
        await database.run(lambda session: _delete_rows(session, ids))
        removed += len(ids)
        if len(ids) < _BATCH:
            break
    if removed:
        logger.info("Removed %d expired uploads", removed)
    return removed


def _delete_rows(session: Session, ids: list[uuid.UUID]) -> None:
    # Chunk rows go with them (ON DELETE CASCADE; SQLite enforces it with foreign_keys=ON).
    session.execute(delete(Upload).where(Upload.id.in_(ids)))
