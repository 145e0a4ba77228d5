"""``Idempotency-Key`` (IETF httpapi draft) on ``POST /record`` and ``POST /uploads/``: one guard.

The first request with a key claims it (a row, before the work starts); its answer is written to
that row in the same transaction as the work itself (the record, the job, the upload), so a key
is answered either by nothing or by exactly what was done. A repeat of the same request replays
that answer with ``Idempotent-Replayed: true``; a repeat while the first still runs is 409; the
same key on a different request is 422. "The same request" is the user, the route and a digest
of what counts (form fields and file bytes; tus headers and metadata), not the multipart
boundary. A request that fails gives its key back: retrying it does the work.
"""

import hashlib
import json
import uuid
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta

import anyio
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.db import Database
from gateway.models import IdempotencyKey
from gateway.models.base import utc_now
from servicekit.errors import DependencyUnavailable, InvalidInput, ServiceError

HEADER = "Idempotency-Key"
RETENTION = timedelta(hours=24)
MAX_KEY_LENGTH = 255
# Headers of the first answer that a replay repeats.
_REPLAYED_HEADERS = ("Location", "Preference-Applied", "Link", "Upload-Expires", "Upload-Offset")


class KeyInUse(ServiceError):
    status, slug, title = 409, "idempotency-key-in-use", "A request with this key is running"

    def __init__(self) -> None:
        super().__init__(
            "The first request with this Idempotency-Key has not finished; retry later.",
            headers={"Retry-After": "1"},
        )


class KeyReused(ServiceError):
    status, slug, title = 422, "idempotency-key-reused", "Idempotency-Key of another request"

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was used for a different request; use a new key.")


@dataclass(frozen=True, slots=True)
class Claimed:
    """A key this request holds: its answer is to be recorded with ``record``."""

    user_id: uuid.UUID
    key: str

    def record(self, session: Session, response: JSONResponse | Response) -> None:
        """Write ``response`` as the key's answer (call inside the work's own transaction)."""
        body = json.loads(bytes(response.body)) if response.body else None
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.user_id == self.user_id, IdempotencyKey.key == self.key)
            .values(
                status=response.status_code,
                body=body,
                headers={
                    name: response.headers[name]
                    for name in _REPLAYED_HEADERS
                    if name in response.headers
                },
            )
        )


def key_of(request: Request) -> str | None:
    """The request's key, if it sent one (422 when it is empty or too long)."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    key = key.strip().strip('"')  # the draft's key is a structured-field string
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise InvalidInput(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters.")
    return key


def fingerprint(route: str, fields: Mapping[str, str], content_sha256: str = "") -> str:
    """What makes two requests "the same": the route, the fields, the content's digest."""
    canonical = json.dumps([route, sorted(fields.items()), content_sha256], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def claim(
    database: Database,
    *,
    user_id: uuid.UUID,
    key: str,
    fingerprint: str,
    stale_after_seconds: float,
) -> Claimed | Response:
    """Claim ``key`` for this request, or the replay of the first answer; raises 409 / 422.

    A claim older than ``stale_after_seconds`` with no answer is a crashed request's: taken over.
    """

    def work(session: Session) -> Claimed | Response:
        now = utc_now()
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id,
                IdempotencyKey.key == key,
                IdempotencyKey.expires_at < now,
            )
        )
        try:
            with session.begin_nested():
                session.add(
                    IdempotencyKey(
                        user_id=user_id,
                        key=key,
                        fingerprint=fingerprint,
                        created_at=now,
                        expires_at=now + RETENTION,
                    )
                )
            return Claimed(user_id, key)
        except IntegrityError:
            pass
        first = session.get(IdempotencyKey, (user_id, key), with_for_update=True)
        if first is None:  # given back meanwhile: the next try claims it
            raise KeyInUse()
        if first.fingerprint != fingerprint:
            raise KeyReused()
        if first.status is None:
            if (now - first.created_at).total_seconds() < stale_after_seconds:
                raise KeyInUse()
            first.created_at = now
            return Claimed(user_id, key)
        return _replay(first)

    return await database.run(work)


def _replay(first: IdempotencyKey) -> Response:
    headers = {**(first.headers or {}), "Idempotent-Replayed": "true"}
    status = first.status or 200
    if first.body is None:
        return Response(status_code=status, headers=headers)
    return JSONResponse(first.body, status_code=status, headers=headers)


async def give_back(database: Database, claimed: Claimed) -> None:
    """The request failed: forget the key unless its answer was recorded (shielded)."""

    def work(session: Session) -> None:
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.user_id == claimed.user_id,
                IdempotencyKey.key == claimed.key,
                IdempotencyKey.status.is_(None),
            )
        )

    # (If the database is down, the claim goes stale and is taken over later.)
    with anyio.CancelScope(shield=True), suppress(DependencyUnavailable):
        await database.run(work)
