"""The load test's asynchronous mode: 200 jobs from 20 users, sent to 2 gateway processes and
worked by 2 worker processes (2 workers each) on one PostgreSQL and one bucket: every job
accepted makes exactly one record and one object, none lost, none twice."""

import asyncio
import contextlib
import itertools

import httpx

from testkit.jobstack import JobStack, new_user
from testkit.live import wait_until
from testkit.wavcorpus import pcm

USERS = 20
JOBS = 200
WAV = pcm(0.3, 22050, 1)


async def submit_all(urls: list[str], users: list[dict[str, str]]) -> list[tuple[int, str]]:
    """(status, job id) of every submission: each user sends its share in a row, to the
    gateways in turn, all users at once."""

    async def one_user(user: dict[str, str]) -> list[tuple[int, str]]:
        answers = []
        async with httpx.AsyncClient(timeout=60) as client:
            for url in itertools.islice(itertools.cycle(urls), JOBS // len(users)):
                response = await client.post(
                    f"{url}/record",
                    data={"user": user["id"], "token": user["token"]},
                    files={"file": ("take.wav", WAV, "audio/wav")},
                    headers={"Prefer": "respond-async"},
                )
                answers.append((response.status_code, response.json().get("id", "")))
        return answers

    results = await asyncio.gather(*(one_user(user) for user in users))
    return [answer for answers in results for answer in answers]


def test_two_hundred_jobs_across_two_gateways_and_two_workers_make_one_record_each(
    job_stack: JobStack,
) -> None:
    with contextlib.ExitStack() as processes:
        # The load, not the fair use (queued jobs count as in flight; see its own tests).
        gateways = [
            processes.enter_context(job_stack.gateway(MAX_UPLOADS_IN_FLIGHT_PER_USER="1000"))
            for _ in range(2)
        ]
        for _ in range(2):
            processes.enter_context(job_stack.worker(JOB_WORKERS="2"))
        users = [new_user(gateways[0].url) for _ in range(USERS)]
        answers = asyncio.run(submit_all([gateway.url for gateway in gateways], users))
        assert [status for status, _ in answers] == [202] * JOBS
        job_ids = {job_id for _, job_id in answers}
        assert len(job_ids) == JOBS

        def all_finished() -> bool:
            return (
                job_stack.scalar(
                    "SELECT count(*) FROM jobs WHERE status IN ('succeeded', 'failed')"
                    " AND user_id IN :users",
                    users=tuple(user["id"] for user in users),
                )
                == JOBS
            )

        wait_until(all_finished, seconds=120, what=f"{JOBS} jobs finished")
    user_ids = {user["id"] for user in users}
    succeeded = job_stack.scalar(
        "SELECT count(*) FROM jobs WHERE status = 'succeeded' AND user_id IN :users",
        users=tuple(user_ids),
    )
    assert succeeded == JOBS
    records = set().union(*(job_stack.records_of(user_id) for user_id in user_ids))
    objects = set().union(*(job_stack.objects_of(user_id) for user_id in user_ids))
    # One record per job (an MP3 and its peaks each): none lost, none twice.
    assert len(records) == 2 * JOBS
    assert records == objects
    distinct = job_stack.scalar(
        "SELECT count(DISTINCT record_id) FROM jobs WHERE user_id IN :users",
        users=tuple(user_ids),
    )
    assert distinct == JOBS
