"""What routes may ask for: the resources the lifespan built, and the authenticated user, as
Annotated dependencies."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated

import httpx
from fastapi import Depends, Query, Request
from fastapi import Path as PathParameter

from gateway.config import Settings
from gateway.db import Database, create_db_engine
from gateway.metrics import MeteredTranscoderClient, Metrics
from gateway.records import docs
from gateway.shutdown import Draining
from gateway.storage import ObjectStore, open_store
from gateway.transcoder_client import Deadlines, TranscoderClient
from gateway.users.service import check_credentials, user_of_token
from gateway.webhooks.delivery import open_client as open_webhook_client


@dataclass(frozen=True, slots=True)
class Resources:
    """Built once per process (``Resources.open``), closed at shutdown."""

    settings: Settings
    database: Database
    store: ObjectStore
    transcoder: TranscoderClient
    metrics: Metrics
    # Webhook deliveries only (gateway.webhooks.delivery): no redirects, no proxies.
    webhook_client: httpx.AsyncClient
    draining: Draining = field(default_factory=Draining)

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        transcoder_transport: httpx.AsyncBaseTransport | None = None,
    ) -> AsyncIterator["Resources"]:
        """Every client, with its deadlines; ``transcoder_transport`` reaches the transcoder some
        other way than over TCP (an ``httpx.ASGITransport`` in tests)."""
        metrics = metrics or Metrics.create()
        timeout = settings.dependency_timeout_seconds
        database = Database(
            create_db_engine(
                settings.database_url,
                pool_size=settings.database_pool_size,
                timeout_seconds=timeout,
            ),
            timeout_seconds=timeout,
            # Threads a hung database may hold: the pool and its overflow, no more.
            max_threads=2 * settings.database_pool_size,
        )
        store = open_store(settings)
        transcoder = MeteredTranscoderClient(
            settings.transcoder_url,
            deadlines=Deadlines(
                longest=settings.transcode_timeout_seconds,
                base=settings.transcode_deadline_base_seconds,
                per_audio_second=settings.transcode_deadline_per_audio_second,
            ),
            metrics=metrics,
            transport=transcoder_transport,
        )
        webhook_client = open_webhook_client(settings.webhook_timeout_seconds)
        try:
            yield cls(settings, database, store, transcoder, metrics, webhook_client)
        finally:
            await webhook_client.aclose()
            await transcoder.aclose()
            store.close()
            database.dispose()


def get_resources(request: Request) -> Resources:
    """The lifespan's resources (Starlette copies lifespan state into every request's state)."""
    resources: Resources = request.state.resources
    return resources


def get_settings(request: Request) -> Settings:
    return get_resources(request).settings


def get_database(request: Request) -> Database:
    return get_resources(request).database


def get_store(request: Request) -> ObjectStore:
    return get_resources(request).store


def get_transcoder(request: Request) -> TranscoderClient:
    return get_resources(request).transcoder


def get_metrics(request: Request) -> Metrics:
    return get_resources(request).metrics


ResourcesDep = Annotated[Resources, Depends(get_resources)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
TranscoderDep = Annotated[TranscoderClient, Depends(get_transcoder)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if there is one."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


TokenQuery = Annotated[
    str | None,
    Query(
        description="The access token, if not sent as `Authorization: Bearer`. Prefer the "
        "header: query strings end up in proxy logs.",
        examples=[docs.TOKEN_EXAMPLE],
    ),
]


async def _authenticated(
    request: Request, database: Database, user_id: uuid.UUID, token: str | None
) -> uuid.UUID:
    await check_credentials(database, user_id=user_id, token=bearer_token(request) or token)
    return user_id


async def user_in_path(
    request: Request,
    database: DatabaseDep,
    user_id: Annotated[
        uuid.UUID, PathParameter(description="The user id.", examples=[docs.USER_EXAMPLE])
    ],
    token: TokenQuery = None,
) -> uuid.UUID:
    """The path's ``user_id``, once the request's token is checked against it (one 401 for all)."""
    return await _authenticated(request, database, user_id, token)


async def user_in_query(
    request: Request,
    database: DatabaseDep,
    user: Annotated[
        uuid.UUID, Query(description="The owner's user id.", examples=[docs.USER_EXAMPLE])
    ],
    token: TokenQuery = None,
) -> uuid.UUID:
    """The query's ``user``, once the request's token is checked against it."""
    return await _authenticated(request, database, user, token)


# The authenticated user of a token-protected route, named in its path or in its query.
CurrentUser = Annotated[uuid.UUID, Depends(user_in_path)]
RecordOwner = Annotated[uuid.UUID, Depends(user_in_query)]


async def user_of_request_token(
    request: Request, database: DatabaseDep, token: TokenQuery = None
) -> uuid.UUID:
    """The user the request's token belongs to, for routes that name no user (jobs, tus)."""
    presented = bearer_token(request) or token
    return await database.run(lambda session: user_of_token(session, token=presented))


TokenUser = Annotated[uuid.UUID, Depends(user_of_request_token)]
