"""Credentials at rest and compared: only a hash is stored; every failure does the same work."""

import hashlib
import hmac
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.errors import InvalidCredentials
from gateway.users import service


@pytest.fixture
def sessions(clean_postgres: Engine) -> sessionmaker[Session]:
    return sessionmaker(clean_postgres, expire_on_commit=False)


def test_only_the_sha256_of_the_token_is_stored(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        user = service.create_user(session, name="Alice")
    with sessions.begin() as session:
        row = session.execute(text("SELECT * FROM users")).mappings().one()
    assert bytes(row["token_hash"]) == hashlib.sha256(user.token.encode()).digest()
    stored = " ".join(str(value) for value in row.values())
    assert user.token not in stored
    assert user.token.replace("-", "") not in stored


def test_every_credential_failure_does_one_constant_time_comparison_of_32_bytes(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    with sessions.begin() as session:
        alice = service.create_user(session, name="Alice")
        bob = service.create_user(session, name="Bob")
    compared: list[tuple[int, int]] = []
    compare_digest = hmac.compare_digest

    def spy(left: bytes, right: bytes) -> bool:
        compared.append((len(left), len(right)))
        return compare_digest(left, right)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # what gateway.users.tokens calls
    failures: list[tuple[uuid.UUID | None, str | None]] = [
        (alice.id, None),  # no token
        (alice.id, str(uuid.uuid4())),  # wrong token
        (alice.id, bob.token),  # another user's token
        (alice.id, "not-a-token"),  # malformed token
        (uuid.uuid4(), alice.token),  # no such user
    ]
    for user_id, token in failures:
        compared.clear()
        with sessions.begin() as session, pytest.raises(InvalidCredentials):
            service.authenticate(session, user_id=user_id, token=token)
        assert compared == [(32, 32)], (user_id, token)
    compared.clear()
    with sessions.begin() as session:
        service.authenticate(session, user_id=alice.id, token=alice.token.upper())
    assert compared == [(32, 32)]
