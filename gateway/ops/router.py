"""Liveness and readiness."""

import anyio.to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from gateway.deps import DatabaseDep, StoreDep, TranscoderDep
from gateway.errors import DependencyUnavailable

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process serves")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database, object storage and transcoder answer",
    responses={503: {"description": "At least one dependency failed; the body names it."}},
)
async def readyz(database: DatabaseDep, store: StoreDep, transcoder: TranscoderDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await database.run(lambda session: session.execute(text("SELECT 1")))
        checks["database"] = "ok"
    except DependencyUnavailable:
        checks["database"] = "unavailable"
    try:
        await anyio.to_thread.run_sync(store.check)
        checks["storage"] = "ok"
    except DependencyUnavailable:
        checks["storage"] = "unavailable"
    try:
        await transcoder.check()
        checks["transcoder"] = "ok"
    except DependencyUnavailable:
        checks["transcoder"] = "unavailable"
    ready = all(state == "ok" for state in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
