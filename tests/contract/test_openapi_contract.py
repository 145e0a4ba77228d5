"""schemathesis against the live gateway's own /openapi.json: no 5xx, no response outside the
documented statuses, content types, headers and schemas."""

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.core.result import Err

from testkit.gateways import GatewayFactory

# Bounded for the suite; `SCHEMATHESIS_MAX_EXAMPLES=2000 pytest tests/contract` for a long run.
EXAMPLES_PER_OPERATION = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "50"))
# Every check but positive_data_acceptance: it guesses which inputs the server must accept, and
# a schema cannot say "1-100 characters after trimming" (POST /users answers 422 for " ").
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.missing_required_header,
    checks.ignored_auth,
    checks.unsupported_method,
    checks.allow_header_conformance,
    checks.use_after_free,
]
# tus PATCH bodies (and creation-with-upload) are raw bytes under tus's own media type.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


@pytest.fixture(scope="module")
def api_schema(start_gateway: GatewayFactory) -> Iterator[schemathesis.BaseSchema]:
    with start_gateway() as gateway:
        yield schemathesis.openapi.from_url(f"{gateway.url}/openapi.json")


def test_every_operation_answers_within_its_documented_contract(
    api_schema: schemathesis.BaseSchema,
) -> None:
    calls = 0
    for result in api_schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def call(case: schemathesis.Case[Any]) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(checks=CHECKS)

        call()
    assert calls > 0
    print(f"schemathesis: {calls} cases, 0 failures")  # shown by pytest -rA / -s
