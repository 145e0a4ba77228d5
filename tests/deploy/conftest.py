"""The rendered overlays, once per session: ``kubectl kustomize`` for each of deploy/kubernetes."""

import os

import pytest

from tests.deploy import manifests


@pytest.fixture(scope="session")
def kubectl() -> str:
    try:
        return manifests.kubectl()
    except manifests.KubectlMissing as missing:
        if os.environ.get("CI") == "true":  # CI must render, never skip
            pytest.fail(str(missing))
        pytest.skip(str(missing))


@pytest.fixture(scope="session")
def rendered(kubectl: str) -> dict[str, list[manifests.Object]]:
    """Overlay name -> its objects."""
    return {
        name: manifests.render(manifests.OVERLAYS / name, kubectl)
        for name in manifests.overlay_names()
    }
