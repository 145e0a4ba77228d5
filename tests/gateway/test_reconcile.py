"""reconcile: objects without rows and rows without objects, on both back-ends."""

import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.config import S3Storage, Settings
from gateway.models import Record, User
from gateway.reconcile import main, reconcile
from gateway.storage import ObjectStore, open_store, peaks_key, recording_key
from testkit.databases import migrate
from testkit.s3 import S3_CREDENTIALS, S3Endpoint


@pytest.fixture(params=["postgres+s3", "sqlite+folder"])
def settings(
    request: pytest.FixtureRequest,
    s3_endpoint: S3Endpoint,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Settings]:
    with tempfile.TemporaryDirectory() as workdir:
        if request.param == "postgres+s3":
            postgres_url: str = request.getfixturevalue("postgres_url")
            request.getfixturevalue("clean_postgres")
            env = {
                "DATABASE_URL": postgres_url,
                "STORAGE_URL": f"s3://{bucket}",
                "S3_ENDPOINT_URL": s3_endpoint.url,
                **S3_CREDENTIALS,
            }
        else:
            env = {
                "DATABASE_URL": f"sqlite:///{workdir}/r.db",
                "STORAGE_URL": f"file://{workdir}/o",
            }
            migrate(env["DATABASE_URL"])
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield Settings()


def put(store: ObjectStore, key: str) -> None:
    with tempfile.NamedTemporaryFile() as file:
        file.write(b"ID3 not really")
        file.flush()
        store.put_file(key, Path(file.name), content_type="audio/mpeg", metadata={})


def add_row(sessions: sessionmaker[Session], user_id: uuid.UUID) -> Record:
    record_id = uuid.uuid4()
    record = Record(
        id=record_id,
        user_id=user_id,
        object_key=recording_key(user_id, record_id),
        original_filename="a.wav",
        content_type="audio/mpeg",
        size_bytes=14,
        sha256="0" * 64,
        duration_seconds=1.0,
        channels=1,
        sample_rate=44100,
        bitrate=128000,
        bitrate_kbps=128,
        mode="cbr",
    )
    record.peaks_key = peaks_key(record.object_key)
    with sessions.begin() as session:
        session.add(record)
    return record


def test_reconcile_finds_and_fixes_both_kinds_of_leftover(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_engine(settings.database_url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    store = open_store(settings)
    store.check()  # makes the bucket
    user_id = uuid.uuid4()
    with sessions.begin() as session:
        session.add(User(id=user_id, name="u", token_hash=b"0" * 32))
    healthy = [add_row(sessions, user_id) for _ in range(3)]
    for record in healthy:
        put(store, record.object_key)
        assert record.peaks_key is not None
        put(store, record.peaks_key)
    # An orphan MP3 without peaks, and the peaks of an MP3 whose row is gone.
    rowless = [
        recording_key(user_id, uuid.uuid4()),
        peaks_key(recording_key(user_id, uuid.uuid4())),
    ]
    for key in rowless:
        put(store, key)
    objectless = add_row(sessions, user_id)

    later = datetime.now(UTC) + timedelta(hours=2)
    fresh = reconcile(sessions, store, fix=False)
    assert fresh.orphan_objects == []  # too young: could be an upload in flight
    assert sorted(fresh.recent_orphans) == sorted(rowless)

    found = reconcile(sessions, store, fix=False, now=later)
    assert sorted(found.orphan_objects) == sorted(rowless)
    assert found.missing_objects == [(objectless.object_key, objectless.id)]

    assert main(["--grace-minutes", "0"]) == 1
    assert (
        "2 orphan objects, 1 records without objects, 0 unfinished uploads (found)"
        in capsys.readouterr().out
    )

    fixed = reconcile(sessions, store, fix=True, now=later)
    assert not fixed.clean
    after = reconcile(sessions, store, fix=False, now=later)
    assert after.clean
    assert [item.key for item in store.list_objects("recordings/")] == sorted(
        key for record in healthy for key in (record.object_key, record.peaks_key) if key
    )
    assert main([]) == 0
    store.close()
    engine.dispose()


def begin_unfinished_put(settings: Settings, s3_endpoint: S3Endpoint, key: str) -> None:
    """What a gateway killed in the middle of a large put leaves behind."""
    location = settings.storage_url
    if isinstance(location, S3Storage):
        client = s3_endpoint.client()
        upload = client.create_multipart_upload(Bucket=location.bucket, Key=key)
        client.upload_part(
            Bucket=location.bucket,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=b"x" * 1024,
        )
    else:
        partial = location.root / Path(key).parent / ".partial-k1lled"
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(b"x" * 1024)


def test_reconcile_aborts_puts_that_never_finished(
    settings: Settings, s3_endpoint: S3Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_engine(settings.database_url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    store = open_store(settings)
    store.check()
    key = recording_key(uuid.uuid4(), uuid.uuid4())
    begin_unfinished_put(settings, s3_endpoint, key)
    # As the store dates it (moto's server dates every multipart upload 2010).
    [begun] = [upload.started for upload in store.list_incomplete("recordings/")]
    soon, later = begun + timedelta(minutes=30), begun + timedelta(hours=2)

    assert reconcile(sessions, store, fix=False, now=soon).incomplete_uploads == []  # in flight?
    found = reconcile(sessions, store, fix=False, now=later)
    assert [upload.key for upload in found.incomplete_uploads] == [
        key
        if isinstance(settings.storage_url, S3Storage)
        else f"{Path(key).parent}/.partial-k1lled"
    ]
    assert not found.clean
    assert found.orphan_objects == found.recent_orphans == []  # not an object of its own
    assert main(["--grace-minutes", "0"]) == 1
    assert "1 unfinished uploads (found)" in capsys.readouterr().out

    reconcile(sessions, store, fix=True, now=later)
    assert list(store.list_incomplete("recordings/")) == []
    assert reconcile(sessions, store, fix=False, now=later).clean
    store.close()
    engine.dispose()


def test_both_stores_list_keys_in_byte_order_a_folder_at_a_time(settings: Settings) -> None:
    store = open_store(settings)
    store.check()
    # "/" sorts after "-" and "." but a folder walk meets "a" before "a-b": the order must
    # still be S3's, byte by byte, or reconcile's merge would call healthy objects orphans.
    keys = ["recordings/a/x.mp3", "recordings/a-b.mp3", "recordings/a.c/y.mp3", "recordings/é.mp3"]
    for key in keys:
        put(store, key)
    listed = [item.key for item in store.list_objects("recordings/")]
    assert listed == sorted(keys, key=str.encode)
    store.close()
