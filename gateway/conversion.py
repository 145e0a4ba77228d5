"""The one routine that turns a WAV into a record: WAV source → transcoder → object → row.

The synchronous upload (its spooled file) and the job workers (an upload's stored chunks) both
call ``convert``. The record id is the caller's: a job fixes it when it is made, so running the
same job twice overwrites the same object and inserts the row once.
"""

import logging
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import anyio
import anyio.to_thread
from sqlalchemy.orm import Session

from gateway import repositories
from gateway.db import Database
from gateway.fair_use import check_quota
from gateway.models import Record
from gateway.storage import ObjectStore, peaks_key, recording_key
from gateway.tempfiles import temporary_directory
from gateway.transcoder_client import Transcoded, TranscoderClient
from gateway.webhooks import events as webhook_events
from servicekit import wav
from servicekit.audio_options import AudioOptions
from servicekit.errors import NotAWav

logger = logging.getLogger(__name__)

MP3_CONTENT_TYPE = "audio/mpeg"
PEAKS_CONTENT_TYPE = "application/vnd.audiowaveform.dat"
HEAD_BYTES = 1024 * 1024  # as far as a WAV header may reach (the transcoder looks as far)
_CHUNK_BYTES = 1024 * 1024


class WavSource(Protocol):
    """The bytes of an uploaded WAV, wherever they are."""

    @property
    def size(self) -> int: ...

    async def head(self) -> bytes:
        """The first bytes (up to ``HEAD_BYTES``): enough for the header."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """Every byte, in order, in pieces of bounded size."""
        ...


@dataclass(frozen=True, slots=True)
class FileSource:
    """A WAV spooled to a local file (the synchronous upload)."""

    path: Path
    size: int

    async def head(self) -> bytes:
        return await anyio.to_thread.run_sync(_read_head, self.path)

    async def chunks(self) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self.path, "rb") as source:
            while chunk := await source.read(_CHUNK_BYTES):
                yield chunk


def _read_head(path: Path) -> bytes:
    with path.open("rb") as source:
        return source.read(HEAD_BYTES)


@dataclass(frozen=True, slots=True)
class Conversion:
    """What to convert, and for whom: the record that will exist once it is done."""

    record_id: uuid.UUID
    user_id: uuid.UUID
    filename: str
    options: AudioOptions = field(default_factory=AudioOptions)  # validated already


def clean_filename(name: str) -> str:
    """The client's file name as kept: control characters (NUL included) replaced, 255 at most."""
    return "".join("_" if unicodedata.category(char) == "Cc" else char for char in name)[:255]


async def check_is_wav(source: WavSource) -> None:
    """The cheap check before any CPU is spent: a RIFF/RF64 … WAVE magic, or 415."""
    if not wav.sniff((await source.head())[: wav.MAGIC_BYTES]):
        raise NotAWav("The file has no RIFF/RF64 WAVE header.")


async def convert(
    source: WavSource,
    conversion: Conversion,
    *,
    database: Database,
    store: ObjectStore,
    transcoder: TranscoderClient,
    max_duration_seconds: float,
    request_id: str,
    quota_bytes: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    also: Callable[[Session, Record], None] | None = None,
) -> Record:
    """Convert, store the object, then insert the row (once); on failure, nothing remains.

    ``quota_bytes``: the user's quota of stored MP3s, checked with the insert (413).
    ``on_progress(bytes)`` is told how much of the WAV the transcoder has taken so far.
    ``also(session, record)`` runs in the insert's transaction (an idempotency key's answer).
    """
    async with temporary_directory("riffle-mp3-") as workdir:
        mp3 = await transcoder.transcode(
            source,
            destination=workdir / "out.mp3",
            max_duration_seconds=max_duration_seconds,
            request_id=request_id,
            options=conversion.options,
            on_progress=on_progress,
        )
        object_key = recording_key(conversion.user_id, conversion.record_id)
        peaks_object_key = peaks_key(object_key)
        record = Record(
            id=conversion.record_id,
            user_id=conversion.user_id,
            object_key=object_key,
            peaks_key=peaks_object_key,
            original_filename=clean_filename(conversion.filename),
            content_type=MP3_CONTENT_TYPE,
            size_bytes=mp3.size_bytes,
            sha256=mp3.sha256,
            duration_seconds=round(mp3.duration_seconds, 3),
            channels=mp3.channels,
            sample_rate=mp3.sample_rate,
            bitrate=mp3.bitrate,
            **audio_columns(mp3),
        )
        await _put_objects(store, record, mp3, workdir)
    try:
        return await database.run(lambda session: _insert(session, record, quota_bytes, also))
    except BaseException:
        # The row is the commit point: without it the objects must not stay behind.
        await _delete_objects(store, [object_key, peaks_object_key])
        raise


def audio_columns(mp3: Transcoded) -> dict[str, Any]:
    """The record's columns of API section 9: encoder mode and rate, tags, loudness."""
    return {
        "bitrate_kbps": mp3.bitrate_kbps,
        "mode": mp3.mode,
        "tags": dict(mp3.tags),
        "integrated_lufs": mp3.integrated_lufs,
        "true_peak_dbtp": mp3.true_peak_dbtp,
    }


async def _put_objects(store: ObjectStore, record: Record, mp3: Transcoded, workdir: Path) -> None:
    """Store the MP3 and its waveform peaks (audiowaveform .dat) side by side, two requests in
    flight on S3; if either fails, neither stays, and the first failure is raised."""
    assert record.peaks_key is not None  # convert's record has one
    peaks = workdir / "peaks.dat"
    await anyio.to_thread.run_sync(peaks.write_bytes, mp3.peaks)
    original = {"original-filename": quote(record.original_filename)}
    objects = [
        (record.object_key, mp3.path, MP3_CONTENT_TYPE, original),
        (record.peaks_key, peaks, PEAKS_CONTENT_TYPE, {}),
    ]
    stored: list[str] = []
    failures: list[Exception] = []

    async def put(key: str, path: Path, content_type: str, metadata: dict[str, str]) -> None:
        try:
            await anyio.to_thread.run_sync(
                lambda: store.put_file(key, path, content_type=content_type, metadata=metadata)
            )
        except Exception as error:  # raised below, once both puts have ended
            failures.append(error)
        else:
            stored.append(key)

    try:
        async with anyio.create_task_group() as group:
            for key, path, content_type, metadata in objects:
                group.start_soon(put, key, path, content_type, metadata)
        if failures:
            raise failures[0]
    except BaseException:
        await _delete_objects(store, stored)
        raise


async def _delete_objects(store: ObjectStore, keys: list[str]) -> None:
    with anyio.CancelScope(shield=True):
        for key in keys:
            try:
                await anyio.to_thread.run_sync(store.delete, key)
            except Exception:
                logger.exception("Orphan object %s left behind; reconcile finds it", key)


def _insert(
    session: Session,
    record: Record,
    quota_bytes: int | None,
    also: Callable[[Session, Record], None] | None,
) -> Record:
    existing = session.get(Record, record.id)
    if existing is None:
        check_quota(session, record.user_id, quota_bytes, record.size_bytes)
    stored = repositories.add_record_once(session, record=record)
    if stored is record:  # new: announced in the same transaction (a re-run announces nothing)
        webhook_events.record_created(session, record=record)
    if also is not None:
        also(session, stored)
    return stored
