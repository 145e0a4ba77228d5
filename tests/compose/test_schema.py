"""docker-compose.yml is a valid Compose file, by the Compose Specification's own JSON schema.

The schema is the copy that check-jsonschema ships (``builtin_schemas/vendor/compose-spec.json``,
from the compose-spec/compose-spec repository, Apache-2.0, its licence beside it in ``licenses/``):
it comes from PyPI, pinned by uv.lock; ``uv lock --upgrade-package check-jsonschema`` updates it.
"""

import copy
import json
from importlib import resources
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from testkit import compose as stack


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _problems(validator: Draft202012Validator, document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_compose_file_as_written_is_valid(validator: Draft202012Validator) -> None:
    assert _problems(validator, stack.raw()) == []


def test_compose_file_with_env_example_substituted_is_valid(
    validator: Draft202012Validator,
) -> None:
    assert _problems(validator, stack.load()) == []


def test_schema_catches_a_misspelt_key_and_a_bad_condition(
    validator: Draft202012Validator,
) -> None:
    # The check has teeth: the same file with two typical mistakes fails.
    document = copy.deepcopy(stack.load())
    document["services"]["gateway"]["restart_policy"] = "always"
    document["services"]["gateway"]["depends_on"]["migrate"]["condition"] = "service_done"
    problems = _problems(validator, document)
    assert any("restart_policy" in problem for problem in problems), problems
    assert any("service_done" in problem for problem in problems), problems
