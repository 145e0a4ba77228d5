"""``GET /jobs/<id>`` and its event stream."""

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Request
from fastapi import Path as PathParameter
from fastapi.responses import StreamingResponse

from gateway.deps import DatabaseDep, SettingsDep, TokenUser
from gateway.errors import InvalidCredentials, JobNotFound
from gateway.jobs import service
from gateway.jobs.links import job_out
from gateway.jobs.schemas import JobOut
from gateway.models.job import FAILED, SUCCEEDED
from gateway.openapi import TOKEN_SECURITY, problem_responses

router = APIRouter(tags=["jobs"])

# The stream looks at the job this often, and says where it is at least once a second.
POLL_SECONDS = 0.25
PROGRESS_EVERY_SECONDS = 1.0

JobId = Annotated[
    uuid.UUID,
    PathParameter(
        description="The job id (a tus upload's id too).",
        examples=["9a4e1c7b-2d3f-4e5a-8b6c-7d8e9f0a1b2c"],
    ),
]


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    summary="A conversion job: status, progress, then its record or its problem",
    description=(
        "Needs the owner's token (`Authorization: Bearer` or `token`); another user's job and "
        "an unknown id answer 404 alike."
    ),
    openapi_extra=TOKEN_SECURITY,
    responses=problem_responses(InvalidCredentials, JobNotFound),
)
async def get_job(
    request: Request,
    job_id: JobId,
    user_id: TokenUser,
    settings: SettingsDep,
    database: DatabaseDep,
) -> JobOut:
    job, record = await service.find_job(database, job_id=job_id, user_id=user_id)
    return job_out(request, settings, job, record)


@router.get(
    "/jobs/{job_id}/events",
    summary="The job's progress as Server-Sent Events",
    description=(
        "`text/event-stream`. The first event is the current state; while the job runs, "
        '`progress` events (`{"progress": 0.42}`) at least once a second, never decreasing; '
        'then one `succeeded` (`{"record": …}`) or `failed` (`{"error": <problem>}`), and the '
        "stream ends. The token may come as the `token` query parameter (EventSource sends no "
        "headers)."
    ),
    openapi_extra=TOKEN_SECURITY,
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The event stream.",
            "content": {
                "text/event-stream": {
                    "schema": {"type": "string"},
                    "example": 'event: progress\ndata: {"progress":0.42}\n\n'
                    'event: progress\ndata: {"progress":0.97}\n\n'
                    'event: succeeded\ndata: {"record":{"id":"6f1c2a4e-…","url":"http://…"}}\n\n',
                }
            },
        },
        **problem_responses(InvalidCredentials, JobNotFound),
    },
)
async def job_events(
    request: Request,
    job_id: JobId,
    user_id: TokenUser,
    settings: SettingsDep,
    database: DatabaseDep,
) -> StreamingResponse:
    # Found (or 404) before the stream starts, so errors are answered as problems.
    await service.find_job(database, job_id=job_id, user_id=user_id)

    async def events() -> AsyncIterator[str]:
        reported = -1.0
        last_sent = -PROGRESS_EVERY_SECONDS
        while True:
            job, record = await service.find_job(database, job_id=job_id, user_id=user_id)
            view = job_out(request, settings, job, record)
            if view.status == SUCCEEDED:
                assert view.record is not None
                yield _event("succeeded", {"record": view.record.model_dump(mode="json")})
                return
            if view.status == FAILED:
                yield _event("failed", {"error": view.error})
                return
            # Never backwards: a job run again after its worker died starts over at 0.
            progress = max(reported, view.progress)
            now = anyio.current_time()
            if progress > reported or now - last_sent >= PROGRESS_EVERY_SECONDS:
                yield _event("progress", {"progress": round(progress, 4)})
                reported, last_sent = progress, now
            await anyio.sleep(POLL_SECONDS)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
