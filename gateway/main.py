"""The gateway application: wiring only. ``uvicorn gateway.main:create_app --factory``."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from gateway.config import Settings
from gateway.db import Database, create_db_engine
from gateway.deps import Resources
from gateway.errors import install_error_handlers
from gateway.metrics import MeteredTranscoderClient, Metrics
from gateway.middleware import install_middleware
from gateway.openapi import DESCRIPTION, TAGS, install_openapi
from gateway.ops.router import router as ops_router
from gateway.records.router import router as records_router
from gateway.storage import StorageUnavailable, open_store
from gateway.users.router import router as users_router
from servicekit.logs import configure_logging

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; clients are created in the lifespan, so each app (and test) has its own."""
    settings = settings or Settings()
    # httpx logs every call at INFO with its full URL; the access lines already say what happened.
    configure_logging(quiet=["httpx"])
    metrics = Metrics.create()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(
            create_db_engine(settings.database_url, pool_size=settings.database_pool_size)
        )
        store = open_store(settings)
        transcoder = MeteredTranscoderClient(
            settings.transcoder_url,
            timeout_seconds=settings.transcode_timeout_seconds,
            metrics=metrics,
        )
        try:
            # Creates the bucket when it is missing, so operators see it from the first start.
            await anyio.to_thread.run_sync(store.check)
        except StorageUnavailable:
            # Storage may come up after us: readiness reports it, the first upload makes the bucket.
            logger.warning("Object storage unavailable at start-up", exc_info=True)
        app.state.resources = Resources(settings, database, store, transcoder)
        try:
            yield
        finally:
            await transcoder.aclose()
            store.close()
            database.dispose()

    app = FastAPI(
        title="riffle",
        version="1.0.0",
        summary="Upload WAV recordings, download them as MP3s by link.",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        # Operation ids are the endpoint names: `create_user`, `add_record`, `list_records`, …
        generate_unique_id_function=lambda route: route.name,
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    install_error_handlers(app, on_problem=metrics.observe_problem)
    install_middleware(app, metrics)
    app.include_router(users_router)
    app.include_router(records_router)
    app.include_router(ops_router)
    install_openapi(app)
    return app
