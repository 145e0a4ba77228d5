"""Creating users and checking their credentials."""

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from gateway import repositories
from gateway.db import Database
from gateway.errors import InvalidCredentials
from gateway.models import User
from gateway.users.tokens import hash_token, new_token, token_matches, well_formed


@dataclass(frozen=True, slots=True)
class NewUser:
    id: uuid.UUID
    name: str
    token: str


def create_user(session: Session, *, name: str) -> NewUser:
    token = new_token()
    user = repositories.add_user(
        session, user=User(id=uuid.uuid4(), name=name, token_hash=hash_token(token))
    )
    return NewUser(id=user.id, name=user.name, token=token)


def authenticate(session: Session, *, user_id: uuid.UUID | None, token: str | None) -> None:
    """Raise ``InvalidCredentials`` unless ``token`` belongs to ``user_id``: one answer for all."""
    user = repositories.get_user(session, user_id=user_id) if user_id else None
    if not token_matches(token, user.token_hash if user else None):
        raise InvalidCredentials()


async def check_credentials(database: Database, *, user_id: uuid.UUID, token: str | None) -> None:
    """``authenticate`` in a short transaction of its own (no connection held afterwards)."""
    await database.run(lambda session: authenticate(session, user_id=user_id, token=token))


def user_of_token(session: Session, *, token: str | None) -> uuid.UUID:
    """The user whose token this is; ``InvalidCredentials`` when it is no one's (or malformed).

    For the routes that name no user (tus after creation, jobs): the token alone identifies it.
    """
    if token is None or not well_formed(token):
        raise InvalidCredentials()
    # Found by the hash itself: SHA-256 of a random UUID leaks nothing through lookup timing.
    user = repositories.get_user_by_token_hash(session, token_hash=hash_token(token))
    if user is None:
        raise InvalidCredentials()
    return user.id
