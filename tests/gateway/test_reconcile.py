"""reconcile: objects without rows and rows without objects, on both back-ends."""

import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.config import Settings
from gateway.models import Record, User
from gateway.reconcile import main, reconcile
from gateway.storage import ObjectStore, open_store, recording_key
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
    )
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
    rowless = [recording_key(user_id, uuid.uuid4()) for _ in range(2)]
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
    assert "2 orphan objects, 1 records without objects (found)" in capsys.readouterr().out

    fixed = reconcile(sessions, store, fix=True, now=later)
    assert not fixed.clean
    after = reconcile(sessions, store, fix=False, now=later)
    assert after.clean
    assert [item.key for item in store.list_objects("recordings/")] == sorted(
        record.object_key for record in healthy
    )
    assert main([]) == 0
    store.close()
    engine.dispose()
