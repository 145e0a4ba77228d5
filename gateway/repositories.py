"""Every database query the gateway makes."""

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, delete, select, tuple_
from sqlalchemy.orm import Session

from gateway.models import Record, UploadChunk, User


def add_user(session: Session, *, user: User) -> User:
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, *, user_id: uuid.UUID) -> User | None:
    return session.get(User, user_id)


def get_user_by_token_hash(session: Session, *, token_hash: bytes) -> User | None:
    return session.scalars(select(User).where(User.token_hash == token_hash)).first()


def add_record_once(session: Session, *, record: Record) -> Record:
    """Insert ``record``, unless a row with its id exists already (a job that ran twice):
    then that row is the answer."""
    existing = session.get(Record, record.id)
    if existing is not None:
        return existing
    session.add(record)
    session.flush()
    return record


def get_record(session: Session, *, record_id: uuid.UUID, user_id: uuid.UUID) -> Record | None:
    return session.scalars(
        select(Record).where(Record.id == record_id, Record.user_id == user_id)
    ).one_or_none()


def list_records(
    session: Session,
    *,
    user_id: uuid.UUID,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[Record]:
    """The user's records newest first, from just after ``before`` (a keyset, not an offset)."""
    query = select(Record).where(Record.user_id == user_id)
    if before is not None:
        query = query.where(tuple_(Record.created_at, Record.id) < tuple_(*before))
    query = query.order_by(Record.created_at.desc(), Record.id.desc()).limit(limit)
    return list(session.scalars(query))


def delete_record(session: Session, *, record_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    """Delete the row; its object key, or ``None`` when there was no such row (or it went first)."""
    return session.scalars(
        delete(Record)
        .where(Record.id == record_id, Record.user_id == user_id)
        .returning(Record.object_key)
    ).one_or_none()


def object_keys_after(session: Session, *, after: str, limit: int) -> list[tuple[str, uuid.UUID]]:
    """(object_key, record id) pairs past ``after``, in byte order of key (as S3 lists them)."""
    # Byte order, whatever the database's locale (SQLite compares bytes already).
    postgres = session.get_bind().dialect.name == "postgresql"
    key: ColumnElement[str] = (
        Record.object_key.collate("C") if postgres else Record.object_key.expression
    )
    rows = session.execute(
        select(Record.object_key, Record.id).where(key > after).order_by(key).limit(limit)
    )
    return [(row.object_key, row.id) for row in rows]


def delete_records(session: Session, *, record_ids: list[uuid.UUID]) -> None:
    session.execute(delete(Record).where(Record.id.in_(record_ids)))


def upload_chunks(session: Session, *, upload_id: uuid.UUID) -> list[UploadChunk]:
    """An upload's committed chunks, in order of offset."""
    return list(
        session.scalars(
            select(UploadChunk)
            .where(UploadChunk.upload_id == upload_id)
            .order_by(UploadChunk.offset)
        )
    )
