import contextlib
from collections.abc import Iterator

import pytest

from testkit.databases import migrated_database
from testkit.jobstack import JobStack, unique_bucket
from testkit.s3 import S3Endpoint


@pytest.fixture(scope="module")
def hook_stack(
    postgres_admin_url: str,
    s3_endpoint: S3Endpoint,
    transcoder_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[JobStack]:
    """One PostgreSQL database and bucket for gateways and worker processes started at will."""
    with contextlib.ExitStack() as cleanup:
        database_url = cleanup.enter_context(migrated_database(postgres_admin_url, prefix="hooks"))
        unused_flag = tmp_path_factory.mktemp("hooks") / "slow"  # encodes at full speed here
        yield JobStack(database_url, s3_endpoint, unique_bucket(), transcoder_url, unused_flag)
