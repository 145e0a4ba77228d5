"""Headless Chromium for the page's tests: Debian's ``chromium`` package driven by Playwright
(Playwright's own browser download is not used). Absent, the tests skip and say what to
install, except under ``CI=true``, where they fail."""

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ViewportSize

INSTALL_HINT = "apt-get install chromium (Debian's package; or set CHROMIUM to a Chromium binary)"
AXE_SCRIPT = Path(__file__).parent / "vendor" / "axe.min.js"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)
SIZES = {"desktop": DESKTOP, "phone": PHONE}


def chromium_executable() -> str:
    """The Chromium binary, or skip (fail under CI) with what to install."""
    candidates = [os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser"]
    for candidate in filter(None, candidates):
        found = shutil.which(candidate)
        if found:
            return found
    message = f"the browser tests need Chromium: {INSTALL_HINT}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.0/2.1/2.2 level A and AA violations on the page as it is now."""
    if not page.evaluate("() => Boolean(window.axe)"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    result = page.evaluate(
        """async () => (await axe.run(document, {
            runOnly: {type: "tag",
                      values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]},
        })).violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => n.target.join(" ") + ": " + n.failureSummary)}))"""
    )
    violations: list[dict[str, Any]] = result
    return violations


def screenshot(page: Any, name: str) -> Path:
    """``var/screenshots/<name>.png``, the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
