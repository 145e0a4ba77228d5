"""Liveness, readiness and metrics."""

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from gateway.deps import MetricsDep, ResourcesDep
from gateway.openapi import Problem, problem_content
from gateway.ops.readiness import check_readiness
from servicekit.errors import PROBLEM_BASE, DependencyUnavailable
from servicekit.problems import problem_response

router = APIRouter(tags=["operations"])

_CHECKS_EXAMPLE = {"database": "ok", "storage": "unavailable", "transcoder": "ok"}


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Ready(BaseModel):
    status: str = Field(examples=["ok"])
    checks: dict[str, str] = Field(
        description="Each dependency: `ok`, `unavailable` or `timeout`.",
        examples=[{"database": "ok", "storage": "ok", "transcoder": "ok"}],
    )


class NotReady(Problem):
    """The problem document of a failed readiness check, naming what failed."""

    checks: dict[str, str] = Field(examples=[_CHECKS_EXAMPLE])
    failed: list[str] = Field(examples=[["storage"]])


@router.get(
    "/healthz",
    response_model=Health,
    summary="Liveness: the process serves",
    description="Answers 200 while the process serves; calls no dependency.",
)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Ready,
    summary="Readiness: database, object storage and transcoder answer",
    description=(
        "Checks the database, the object storage and the transcoder concurrently, each within "
        "2 s. 200 when all answer; 503 (problem+json) naming each one that did not, and 503 "
        '(`failed`: `["draining"]`) from the moment the process is asked to stop.'
    ),
    responses={
        503: {
            "model": NotReady,
            "description": "At least one dependency failed; `failed` names it.",
            "content": problem_content(
                {
                    "type": PROBLEM_BASE + "not-ready",
                    "title": "Not ready",
                    "status": 503,
                    "detail": "Unavailable: storage.",
                    "checks": _CHECKS_EXAMPLE,
                    "failed": ["storage"],
                }
            ),
        }
    },
)
async def readyz(resources: ResourcesDep) -> Any:
    metrics = resources.metrics
    if resources.draining.active:
        return problem_response(
            503,
            title="Not ready",
            slug="not-ready",
            detail="The gateway is shutting down; uploads in flight are finishing.",
            headers={"Retry-After": str(DependencyUnavailable.retry_after_seconds)},
            checks={},
            failed=["draining"],
        )
    readiness = await check_readiness(resources.database, resources.store, resources.transcoder)
    for name, state in readiness.checks.items():
        metrics.dependency_up.labels(name).set(1 if state == "ok" else 0)
    if readiness.ready:
        return Ready(status="ok", checks=readiness.checks)
    return problem_response(
        503,
        title="Not ready",
        slug="not-ready",
        detail=f"Unavailable: {', '.join(readiness.failed)}.",
        headers={"Retry-After": str(DependencyUnavailable.retry_after_seconds)},
        checks=readiness.checks,
        failed=readiness.failed,
    )


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    description=(
        "Request counts and latencies by route template and status, transcode time, audio "
        "seconds transcoded, bytes received, sent and stored, rejected uploads by reason, "
        "dependency errors by kind; Prometheus text exposition format."
    ),
    responses={
        200: {
            "description": "The metrics.",
            "content": {
                CONTENT_TYPE_LATEST: {
                    "schema": {"type": "string"},
                    "example": 'riffle_http_requests_total{method="POST",route="/users",'
                    'status="201"} 3.0\n',
                }
            },
        }
    },
)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
