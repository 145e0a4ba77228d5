"""Find objects (MP3s, and the waveform peaks beside them) without rows, rows without objects
and puts that never finished (S3 multipart uploads, the folder store's partial files); ``--fix``
removes all three.

``python -m gateway.reconcile [--fix] [--grace-minutes N]``, with the gateway's settings. Both sides
are read page by page in key order and merged: memory holds a page (a folder's listing, for the
folder store) and what was found, not every key.
"""

import argparse
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from gateway import repositories
from gateway.config import Settings
from gateway.db import create_db_engine
from gateway.storage import (
    PEAKS_SUFFIX,
    IncompleteUpload,
    ObjectStore,
    StoredObject,
    open_store,
    peaks_key,
)

PREFIX = "recordings/"
_PAGE = 1000


@dataclass
class Report:
    orphan_objects: list[str] = field(default_factory=list)
    missing_objects: list[tuple[str, uuid.UUID]] = field(default_factory=list)
    # Orphans younger than the grace period may belong to an upload still in flight.
    recent_orphans: list[str] = field(default_factory=list)
    # Unfinished puts older than the grace period: their writer is gone.
    incomplete_uploads: list[IncompleteUpload] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.orphan_objects or self.missing_objects or self.incomplete_uploads)


def reconcile(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    *,
    fix: bool,
    grace: timedelta = timedelta(hours=1),
    now: datetime | None = None,
) -> Report:
    """Compare the bucket with the records table; with ``fix``, delete what has no counterpart."""
    cutoff = (now or datetime.now(UTC)) - grace
    report = Report()
    objects = store.list_objects(PREFIX)
    rows = _rows(sessions)
    stored, row = next(objects, None), next(rows, None)
    matched = ""  # the last row's key that had its object
    while stored is not None or row is not None:
        if stored is not None and stored.key.endswith(PEAKS_SUFFIX):
            # A record's peaks sort right after its MP3 (".mp3" < ".peaks"): they belong to a
            # row when that MP3 just matched one.
            if not matched or stored.key != peaks_key(matched):
                _orphan(report, stored, cutoff)
            stored = next(objects, None)
        elif row is None or (stored is not None and stored.key.encode() < row[0].encode()):
            assert stored is not None
            _orphan(report, stored, cutoff)
            stored = next(objects, None)
        elif stored is None or row[0].encode() < stored.key.encode():
            report.missing_objects.append(row)
            row = next(rows, None)
        else:
            matched = row[0]
            stored, row = next(objects, None), next(rows, None)
    report.incomplete_uploads = [
        upload for upload in store.list_incomplete(PREFIX) if upload.started < cutoff
    ]
    if fix:
        for upload in report.incomplete_uploads:
            store.abort_incomplete(upload)
        for key in report.orphan_objects:
            store.delete(key)
        missing_ids = [record_id for _, record_id in report.missing_objects]
        for start in range(0, len(missing_ids), _PAGE):
            with sessions.begin() as session:
                repositories.delete_records(session, record_ids=missing_ids[start : start + _PAGE])
    return report


def _orphan(report: Report, stored: StoredObject, cutoff: datetime) -> None:
    if stored.modified < cutoff:
        report.orphan_objects.append(stored.key)
    else:
        report.recent_orphans.append(stored.key)


def _rows(sessions: sessionmaker[Session]) -> Iterator[tuple[str, uuid.UUID]]:
    after = ""
    while True:
        with sessions.begin() as session:
            page = repositories.object_keys_after(session, after=after, limit=_PAGE)
        if not page:
            return
        yield from page
        after = page[-1][0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.reconcile", description=__doc__)
    parser.add_argument("--fix", action="store_true", help="delete orphan objects and rows")
    parser.add_argument(
        "--grace-minutes",
        type=float,
        default=60,
        help="leave objects younger than this alone: their upload may still be running (60)",
    )
    args = parser.parse_args(argv)
    settings = Settings()
    engine = create_db_engine(
        settings.database_url, timeout_seconds=settings.dependency_timeout_seconds
    )
    store = open_store(settings)
    try:
        report = reconcile(
            sessionmaker(engine), store, fix=args.fix, grace=timedelta(minutes=args.grace_minutes)
        )
    finally:
        store.close()
        engine.dispose()
    verb = "removed" if args.fix else "found"
    for key in report.orphan_objects:
        print(f"orphan object ({verb}): {key}")
    for key, record_id in report.missing_objects:
        print(f"record without object ({verb}): {record_id} -> {key}")
    for upload in report.incomplete_uploads:
        print(f"unfinished upload ({verb}): {upload.key} (begun {upload.started:%Y-%m-%d %H:%M})")
    for key in report.recent_orphans:
        print(f"recent object without row (left alone, may be an upload in flight): {key}")
    print(
        f"{len(report.orphan_objects)} orphan objects, "
        f"{len(report.missing_objects)} records without objects, "
        f"{len(report.incomplete_uploads)} unfinished uploads ({verb})"
    )
    return 0 if report.clean or args.fix else 1


if __name__ == "__main__":
    sys.exit(main())
