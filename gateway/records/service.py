"""Uploading and fetching recordings; the order of the steps keeps nothing half-written."""

import logging
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.to_thread

from gateway import repositories
from gateway.db import Database
from gateway.errors import RecordNotFound
from gateway.models import Record
from gateway.records.cursor import decode_cursor, encode_cursor
from gateway.storage import (
    ObjectMissing,
    ObjectStore,
    StorageUnavailable,
    peaks_key,
    recording_key,
)
from gateway.tempfiles import temporary_directory
from gateway.transcoder_client import Transcoded, TranscoderClient
from servicekit import wav
from servicekit.audio_options import AudioOptions
from servicekit.errors import NotAWav
from servicekit.peaks import Peaks

logger = logging.getLogger(__name__)

MP3_CONTENT_TYPE = "audio/mpeg"
PEAKS_CONTENT_TYPE = "application/vnd.audiowaveform.dat"
MAX_PEAKS_BYTES = 8 * 1024 * 1024  # 2**20 stereo pixels take 4 MiB


@dataclass(frozen=True, slots=True)
class Upload:
    """What the client sent, already spooled to disk."""

    user_id: uuid.UUID  # authenticated
    wav: Path
    filename: str
    options: AudioOptions = field(default_factory=AudioOptions)  # validated already


def clean_filename(name: str) -> str:
    """The client's file name as kept: control characters (NUL included) replaced, 255 at most."""
    return "".join("_" if unicodedata.category(char) == "Cc" else char for char in name)[:255]


async def add_recording(
    upload: Upload,
    *,
    database: Database,
    store: ObjectStore,
    transcoder: TranscoderClient,
    max_duration_seconds: float,
    request_id: str,
) -> Record:
    """Convert, store the object, then insert the row; on failure, nothing remains."""
    if not wav.sniff(await anyio.to_thread.run_sync(_read_head, upload.wav)):
        raise NotAWav("The file has no RIFF/RF64 WAVE header.")

    async with temporary_directory("riffle-mp3-") as workdir:
        mp3 = await transcoder.transcode(
            upload.wav,
            destination=workdir / "out.mp3",
            max_duration_seconds=max_duration_seconds,
            request_id=request_id,
            options=upload.options,
        )
        record = Record(
            id=uuid.uuid4(),
            user_id=upload.user_id,
            original_filename=clean_filename(upload.filename),
            content_type=MP3_CONTENT_TYPE,
            size_bytes=mp3.size_bytes,
            sha256=mp3.sha256,
            duration_seconds=round(mp3.duration_seconds, 3),
            channels=mp3.channels,
            sample_rate=mp3.sample_rate,
            bitrate=mp3.bitrate,
            **audio_columns(mp3),
        )
        record.object_key = recording_key(record.user_id, record.id)
        record.peaks_key = peaks_key(record.object_key)
        await anyio.to_thread.run_sync(
            lambda: store.put_file(
                record.object_key,
                mp3.path,
                content_type=MP3_CONTENT_TYPE,
                metadata={"original-filename": quote(record.original_filename)},
            )
        )
        try:
            await put_peaks(store, record.peaks_key, mp3.peaks, workdir)
        except BaseException:
            await _delete_objects(store, [record.object_key])
            raise
    try:
        return await database.run(lambda session: repositories.add_record(session, record=record))
    except BaseException:
        # The row is the commit point: without it the objects must not stay behind.
        await _delete_objects(store, [record.object_key, record.peaks_key])
        raise


def audio_columns(mp3: Transcoded) -> dict[str, Any]:
    """The record's columns of section 9: encoder mode and rate, tags, loudness."""
    return {
        "bitrate_kbps": mp3.bitrate_kbps,
        "mode": mp3.mode,
        "tags": dict(mp3.tags),
        "integrated_lufs": mp3.integrated_lufs,
        "true_peak_dbtp": mp3.true_peak_dbtp,
    }


async def put_peaks(store: ObjectStore, key: str, peaks: bytes, workdir: Path) -> None:
    """Store the waveform peaks (audiowaveform .dat) beside the MP3."""
    path = workdir / "peaks.dat"
    await anyio.to_thread.run_sync(path.write_bytes, peaks)
    await anyio.to_thread.run_sync(
        lambda: store.put_file(key, path, content_type=PEAKS_CONTENT_TYPE, metadata={})
    )


async def _delete_objects(store: ObjectStore, keys: list[str | None]) -> None:
    with anyio.CancelScope(shield=True):
        for key in keys:
            if key is None:
                continue
            try:
                await anyio.to_thread.run_sync(store.delete, key)
            except Exception:
                logger.exception("Orphan object %s left behind; reconcile finds it", key)


def _read_head(path: Path) -> bytes:
    with path.open("rb") as wav:
        return wav.read(12)


async def find_record(database: Database, *, record_id: uuid.UUID, user_id: uuid.UUID) -> Record:
    record = await database.run(
        lambda session: repositories.get_record(session, record_id=record_id, user_id=user_id)
    )
    if record is None:
        raise RecordNotFound()
    return record


async def read_peaks(store: ObjectStore, record: Record) -> Peaks:
    """The record's stored waveform peaks; ``RecordNotFound`` when it has none."""
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
    try:
        return await anyio.to_thread.run_sync(store.open_range, record.object_key, start, end)
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
