"""Setting, removing and reading a user's webhook; no web framework here."""

import base64
import secrets
import uuid

import anyio

from gateway.db import Database
from gateway.errors import WebhookNotFound, WebhookTargetRefused
from gateway.models import Webhook, WebhookDelivery
from gateway.webhooks import repository, targets

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix)
_SECRET_BYTES = 32


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


async def set_webhook(
    database: Database,
    *,
    user_id: uuid.UUID,
    url: str,
    base_url: str,
    timeout_seconds: float,
    allow_private: bool,
) -> Webhook:
    """Check the target (422 if refused), then set the webhook with a new secret."""
    try:
        with anyio.fail_after(timeout_seconds):
            await targets.resolve(url, allow_private=allow_private)
    except TimeoutError:
        raise WebhookTargetRefused(
            f"The host of the URL did not resolve within {timeout_seconds:g} s."
        ) from None
    secret = new_secret()
    return await database.run(
        lambda session: repository.put_webhook(
            session, user_id=user_id, url=url, secret=secret, base_url=base_url
        )
    )


async def remove_webhook(database: Database, *, user_id: uuid.UUID) -> None:
    """Remove it (404 if there is none); deliveries still pending are not attempted again."""
    if not await database.run(lambda session: repository.delete_webhook(session, user_id=user_id)):
        raise WebhookNotFound()


async def latest_deliveries(
    database: Database, *, user_id: uuid.UUID, limit: int
) -> list[WebhookDelivery]:
    return await database.run(
        lambda session: repository.list_deliveries(session, user_id=user_id, limit=limit)
    )
