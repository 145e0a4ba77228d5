"""The worker tier: job workers without the public API. ``uvicorn gateway.worker:create_app
--factory --port 8002``; it serves only ``/healthz``, ``/readyz`` and ``/metrics``.

Same image, same settings as the gateway; run as many as the conversions need
(``docker compose up --scale worker=N``), with ``JOB_WORKERS`` workers each.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from gateway.config import Settings
from gateway.deps import Resources
from gateway.jobs.worker import running_workers
from gateway.metrics import Metrics
from gateway.middleware import install_middleware
from gateway.ops.router import router as ops_router
from gateway.shutdown import drain_on_signals
from servicekit import __version__
from servicekit.logs import configure_logging
from servicekit.problems import install_problem_handlers
from servicekit.scratch import claim_scratch


def create_app(settings: Settings | None = None) -> FastAPI:
    configure_logging(quiet=["httpx"])
    settings = settings or Settings()
    metrics = Metrics.create()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Resources]]:
        await anyio.to_thread.run_sync(claim_scratch)
        async with Resources.open(settings, metrics=metrics) as resources:
            restore = drain_on_signals(resources.draining, delay_seconds=0)
            try:
                async with running_workers(resources, max(1, settings.job_workers)):
                    yield {"resources": resources}
            finally:
                restore()

    app = FastAPI(title="riffle worker", version=__version__, lifespan=lifespan)
    install_problem_handlers(app, on_problem=metrics.observe_problem)
    install_middleware(app, metrics)
    app.include_router(ops_router)
    return app
