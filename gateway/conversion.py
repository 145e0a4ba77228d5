"""The one routine that turns a WAV into a record: WAV source → transcoder → object → row.

The synchronous upload (its spooled file) and the job workers (an upload's stored chunks) both
call ``convert``. The record id is the caller's: a job fixes it when it is made, so running the
same job twice overwrites the same object and inserts the row once.
"""

import logging
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import anyio
import anyio.to_thread
from sqlalchemy.orm import Session

from gateway import repositories
from gateway.db import Database
from gateway.models import Record
from gateway.storage import ObjectStore, recording_key
from gateway.tempfiles import temporary_directory
from gateway.transcoder_client import TranscoderClient
from gateway.webhooks import events as webhook_events
from servicekit import wav
from servicekit.errors import NotAWav

logger = logging.getLogger(__name__)

MP3_CONTENT_TYPE = "audio/mpeg"
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


def clean_filename(name: str) -> str:
    """The client's file name as kept: control characters (NUL included) replaced, 255 at most."""
    return "".join("_" if unicodedata.category(char) == "Cc" else char for char in name)[:255]


async def check_is_wav(source: WavSource) -> None:
    """The cheap check before any CPU is spent: a RIFF/RF64 … WAVE magic, or 415."""
    if not wav.sniff((await source.head())[: wav.MAGIC_BYTES]):
        raise NotAWav("The file has no RIFF/RF64 WAVE header.")


def _insert_once(session: Session, record: Record) -> Record:
    """The row, and in the same transaction its ``record.created`` event (a second run of the
    same job finds the row and announces nothing)."""
    stored = repositories.add_record_once(session, record=record)
    if stored is record:
        webhook_events.record_created(session, record=record)
    return stored


async def convert(
    source: WavSource,
    conversion: Conversion,
    *,
    database: Database,
    store: ObjectStore,
    transcoder: TranscoderClient,
    max_duration_seconds: float,
    request_id: str,
    on_progress: Callable[[int], None] | None = None,
) -> Record:
    """Convert, store the object, then insert the row (once); on failure, nothing remains.

    ``on_progress(bytes)`` is told how much of the WAV the transcoder has taken so far.
    """
    async with temporary_directory("riffle-mp3-") as workdir:
        mp3 = await transcoder.transcode(
            source,
            destination=workdir / "out.mp3",
            max_duration_seconds=max_duration_seconds,
            request_id=request_id,
            on_progress=on_progress,
        )
        record = Record(
            id=conversion.record_id,
            user_id=conversion.user_id,
            object_key=recording_key(conversion.user_id, conversion.record_id),
            original_filename=clean_filename(conversion.filename),
            content_type=MP3_CONTENT_TYPE,
            size_bytes=mp3.size_bytes,
            sha256=mp3.sha256,
            duration_seconds=round(mp3.duration_seconds, 3),
            channels=mp3.channels,
            sample_rate=mp3.sample_rate,
            bitrate=mp3.bitrate,
        )
        await anyio.to_thread.run_sync(
            lambda: store.put_file(
                record.object_key,
                mp3.path,
                content_type=MP3_CONTENT_TYPE,
                metadata={"original-filename": quote(record.original_filename)},
            )
        )
    try:
        return await database.run(lambda session: _insert_once(session, record))
    except BaseException:
        # The row is the commit point: without it the object must not stay behind.
        with anyio.CancelScope(shield=True):
            try:
                await anyio.to_thread.run_sync(store.delete, record.object_key)
            except Exception:
                logger.exception(
                    "Orphan object %s left behind; reconcile finds it", record.object_key
                )
        raise
