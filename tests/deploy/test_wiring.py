"""Every rule of tests/deploy/checks.py holds for every overlay as rendered."""

import pytest

from tests.deploy import checks, manifests


@pytest.mark.parametrize("overlay", manifests.overlay_names())
@pytest.mark.parametrize("check", checks.CHECKS, ids=lambda check: check.__name__)
def test_rendered_overlay_keeps_the_rule(
    rendered: dict[str, list[manifests.Object]], overlay: str, check: checks.Check
) -> None:
    assert check(rendered[overlay]) == []
