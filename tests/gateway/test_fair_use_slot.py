"""A fair-use slot freed inside the transaction that stores its upload's record: gone with that
transaction's commit, kept (and freed on the way out) when it rolls back."""

import uuid
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import anyio
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.db import Database, create_db_engine
from gateway.fair_use import Slot, upload_slot
from gateway.models import UploadInFlight
from gateway.users.service import create_user
from testkit.databases import migrate


class Refused(Exception):
    pass


def test_a_slot_released_with_a_transaction_goes_with_its_commit_not_its_rollback(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/riffle.db"
    migrate(url)
    database = Database(create_db_engine(url))

    def slot_of(user_id: uuid.UUID) -> AbstractAsyncContextManager[Slot]:
        return upload_slot(database, user_id=user_id, limit=4, lifetime_seconds=60)

    async def held() -> int:
        return await database.run(lambda s: s.scalar(select(func.count(UploadInFlight.id))) or 0)

    async def scenario() -> None:
        user_id = (await database.run(lambda session: create_user(session, name="u"))).id
        async with slot_of(user_id) as slot:
            assert await held() == 1

            def stored_then_refused(session: Session) -> None:
                slot.release_with(session)
                raise Refused  # the record's transaction rolls back, and the release with it

            with pytest.raises(Refused):
                await database.run(stored_then_refused)
            assert not slot.released
            assert await held() == 1  # still held: the upload is still under way
        assert await held() == 0  # freed on the way out
        async with slot_of(user_id) as slot:
            await database.run(slot.release_with)  # committed, as with the record
            assert slot.released
            assert await held() == 0

    anyio.run(scenario)
    database.engine.dispose()
