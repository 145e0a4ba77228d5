"""Dependencies with past denial-of-service fixes are locked at or past the fixed versions, and
the lock exports to a list pip-audit reads (``make audit`` runs the online audit)."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The first release with the fix each entry guards against (DESIGN.md, "Known pitfalls").
FIXED = {
    "python-multipart": (0, 0, 31),  # a run of multipart denial-of-service fixes
    "starlette": (0, 47, 2),  # no part-size limit (< 0.40), blocking file rollover (< 0.47.2)
    "h11": (0, 16, 0),  # lenient chunked-encoding parsing (request smuggling)
}


def locked_versions() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {package["name"]: package["version"] for package in lock["package"]}


@pytest.mark.parametrize("name", sorted(FIXED))
def test_parsers_with_past_cves_are_locked_at_fixed_versions(name: str) -> None:
    version = tuple(int(part) for part in locked_versions()[name].split(".")[:3])
    assert version >= FIXED[name]


def test_the_lock_exports_to_a_requirements_list_pip_audit_collects(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    uv = ROOT / ".tools" / "bin" / "uv"
    export = [str(uv), "export", "--format", "requirements-txt", "--all-groups"]
    export += ["--no-emit-project", "--frozen", "--quiet", "-o", str(requirements)]
    subprocess.run(export, cwd=ROOT, check=True, timeout=60)
    audit = [sys.executable, "-m", "pip_audit", "--dry-run", "--strict", "--disable-pip"]
    audit += ["--no-deps", "-r", str(requirements)]
    run = subprocess.run(audit, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Dry run: would have audited" in run.stderr
