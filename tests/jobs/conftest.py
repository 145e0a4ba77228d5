import contextlib
from collections.abc import Iterator

import pytest

from testkit.databases import migrated_database
from testkit.jobstack import JobStack, start_transcoder, unique_bucket
from testkit.s3 import S3Endpoint


@pytest.fixture(scope="module")
def job_stack(
    postgres_admin_url: str, s3_endpoint: S3Endpoint, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JobStack]:
    with contextlib.ExitStack() as cleanup:
        database_url = cleanup.enter_context(migrated_database(postgres_admin_url, prefix="jobs"))
        transcoder_url, flag = start_transcoder(cleanup, tmp_path_factory.mktemp("slow-ffmpeg"))
        yield JobStack(database_url, s3_endpoint, unique_bucket(), transcoder_url, flag)


@pytest.fixture(autouse=True)
def encodes_at_full_speed(job_stack: JobStack) -> Iterator[None]:
    job_stack.slow_flag.unlink(missing_ok=True)
    job_stack.forget_started()
    yield
    job_stack.slow_flag.unlink(missing_ok=True)
