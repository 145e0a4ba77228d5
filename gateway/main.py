"""The gateway application: wiring only. ``uvicorn gateway.main:create_app --factory``."""

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from gateway.config import Settings
from gateway.deps import Resources
from gateway.jobs.router import router as jobs_router
from gateway.jobs.worker import running_workers
from gateway.metrics import Metrics
from gateway.middleware import install_middleware
from gateway.openapi import DESCRIPTION, TAGS, install_openapi
from gateway.ops.router import router as ops_router
from gateway.records.router import router as records_router
from gateway.shutdown import drain_on_signals
from gateway.storage import StorageUnavailable
from gateway.uploads.router import EXPOSED_HEADERS, TusHeadersMiddleware
from gateway.uploads.router import router as uploads_router
from gateway.users.router import router as users_router
from gateway.web.router import install_web
from gateway.webhooks.router import router as webhooks_router
from servicekit import __version__
from servicekit.logs import configure_logging
from servicekit.malloc import tune_malloc
from servicekit.problems import install_problem_handlers
from servicekit.scratch import claim_scratch

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, resources: Resources | None = None) -> FastAPI:
    """Build the app. The lifespan opens its resources (and closes them), unless ``resources``
    come prebuilt: then they are used as they are, and their owner closes them."""
    # httpx logs every call at INFO with its full URL; the access lines already say what happened.
    tune_malloc()  # before any thread allocates: servicekit.malloc says why
    configure_logging(quiet=["httpx"])
    if resources is not None:
        settings = resources.settings
    settings = settings or Settings()
    metrics = resources.metrics if resources is not None else Metrics.create()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Resources]]:
        await anyio.to_thread.run_sync(claim_scratch)
        async with AsyncExitStack() as stack:
            ready = resources
            if ready is None:
                ready = await stack.enter_async_context(Resources.open(settings, metrics=metrics))
            try:
                # Creates the bucket when it is missing, so operators see it from the first start.
                await anyio.to_thread.run_sync(ready.store.check)
            except StorageUnavailable:
                # Storage may come up after us: readiness reports it, the first upload makes it.
                logger.warning("Object storage unavailable at start-up", exc_info=True)
            stack.callback(
                drain_on_signals(ready.draining, delay_seconds=settings.shutdown_drain_seconds)
            )
            await stack.enter_async_context(running_workers(ready, settings.job_workers))
            yield {"resources": ready}

    app = FastAPI(
        title="riffle",
        version=__version__,
        summary="Upload WAV recordings, download them as MP3s by link.",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        # Operation ids are the endpoint names: `create_user`, `add_record`, `list_records`, …
        generate_unique_id_function=lambda route: route.name,
        lifespan=lifespan,
        # /docs comes from install_web, from the gateway's own files (no CDN); no /redoc.
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app, on_problem=metrics.observe_problem)
    app.add_middleware(TusHeadersMiddleware)
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )
    install_middleware(app, metrics)
    app.include_router(users_router)
    app.include_router(records_router)
    app.include_router(uploads_router)
    app.include_router(jobs_router)
    app.include_router(webhooks_router)
    app.include_router(ops_router)
    install_web(app, settings)
    install_openapi(app)
    return app
