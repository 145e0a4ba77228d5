"""docs/kubernetes.md stays true to the manifests and the checks, and the README points to it."""

from tests.deploy import checks, manifests

DOC = manifests.ROOT / "docs" / "kubernetes.md"


def test_readme_links_the_kubernetes_guide() -> None:
    assert "(docs/kubernetes.md)" in (manifests.ROOT / "README.md").read_text()


def test_guide_lists_every_check_and_every_overlay() -> None:
    text = DOC.read_text()
    missing = [check.__name__ for check in checks.CHECKS if f"| `{check.__name__}` |" not in text]
    assert missing == [], f"docs/kubernetes.md's table of checks lacks {missing}"
    for overlay in manifests.overlay_names():
        assert f"overlays/{overlay}" in text, overlay
