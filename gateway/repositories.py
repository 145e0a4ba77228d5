"""Every database query the gateway makes."""

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.models import Record, User


def add_user(session: Session, *, user: User) -> User:
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, *, user_id: uuid.UUID) -> User | None:
    return session.get(User, user_id)


def add_record(session: Session, *, record: Record) -> Record:
    session.add(record)
    session.flush()
    return record


def get_record(session: Session, *, record_id: uuid.UUID, user_id: uuid.UUID) -> Record | None:
    return session.scalars(
        select(Record).where(Record.id == record_id, Record.user_id == user_id)
    ).one_or_none()
