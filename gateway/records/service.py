"""Uploading and fetching recordings; the order of the steps keeps nothing half-written."""

import contextlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

import anyio.to_thread

from gateway import repositories
from gateway.db import Database
from gateway.errors import RecordNotFound
from gateway.models import Record
from gateway.records.cursor import decode_cursor, encode_cursor
from gateway.storage import ObjectMissing, ObjectStore, StorageUnavailable, peaks_key

if TYPE_CHECKING:
    from servicekit.peaks import Peaks

logger = logging.getLogger(__name__)

# 2**18 stereo pixels take 1 MiB; records converted by earlier builds hold up to 2**20 (4 MiB).
MAX_PEAKS_BYTES = 8 * 1024 * 1024


async def find_record(database: Database, *, record_id: uuid.UUID, user_id: uuid.UUID) -> Record:
    record = await database.run(
        lambda session: repositories.get_record(session, record_id=record_id, user_id=user_id)
    )
    if record is None:
        raise RecordNotFound()
    return record


async def read_peaks(store: ObjectStore, record: Record) -> "Peaks":
    """The record's stored waveform peaks; ``RecordNotFound`` when it has none."""
    # Imported here: numpy costs ~15 MB resident, which a gateway nobody asks for a waveform
    # never needs (tests/test_footprint.py).
    from servicekit.peaks import Peaks

    key = record.peaks_key
    if key is None:
        raise RecordNotFound()
    try:
        raw = await anyio.to_thread.run_sync(
            lambda: b"".join(store.open_range(key, 0, MAX_PEAKS_BYTES - 1))
        )
        return Peaks.from_dat(raw)
    except ObjectMissing:
        logger.error("Record %s has no peaks at %s; run reconcile", record.id, key)
        raise RecordNotFound() from None


async def open_object(store: ObjectStore, record: Record, start: int, end: int) -> Iterator[bytes]:
    """The object's bytes ``start..end``, fetched before the response starts."""
    with _object_missing_is_not_found(record):
        return await anyio.to_thread.run_sync(store.open_range, record.object_key, start, end)


async def open_object_file(store: ObjectStore, record: Record) -> BinaryIO | None:
    """The object as an open local file, or ``None`` where the store keeps no files."""
    with _object_missing_is_not_found(record):
        return await anyio.to_thread.run_sync(store.open_file, record.object_key)


@contextlib.contextmanager
def _object_missing_is_not_found(record: Record) -> Iterator[None]:
    try:
        yield
    except ObjectMissing:
        logger.error("Record %s has no object at %s; run reconcile", record.id, record.object_key)
        raise RecordNotFound() from None


@dataclass(frozen=True, slots=True)
class Page:
    records: list[Record]
    next_cursor: str | None


async def list_recordings(
    database: Database, *, user_id: uuid.UUID, limit: int, cursor: str | None
) -> Page:
    """One page of the (authenticated) user's records, newest first."""
    before = decode_cursor(cursor) if cursor else None
    records = await database.run(
        lambda session: repositories.list_records(
            session, user_id=user_id, limit=limit + 1, before=before
        )
    )
    if len(records) <= limit:
        return Page(records, None)
    last = records[limit - 1]
    return Page(records[:limit], encode_cursor(last.created_at, last.id))


async def delete_recording(
    database: Database,
    store: ObjectStore,
    *,
    record_id: uuid.UUID,
    user_id: uuid.UUID,
) -> None:
    """Delete the row, then its object: a crash between leaves an orphan ``reconcile`` removes."""
    object_key = await database.run(
        lambda session: repositories.delete_record(session, record_id=record_id, user_id=user_id)
    )
    if object_key is None:
        raise RecordNotFound()
    try:
        await anyio.to_thread.run_sync(store.delete, object_key)
        # Deleting a key that is not there (a record older than peaks) is no error.
        await anyio.to_thread.run_sync(store.delete, peaks_key(object_key))
    except StorageUnavailable:
        # The record is gone for the user either way; the object waits for reconcile.
        logger.exception("Object %s of deleted record %s was not removed", object_key, record_id)
