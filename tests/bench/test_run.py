"""The benchmark harness end to end on a tiny workload: it runs, checks and reports (no timings
are asserted; ``make bench`` is where times are measured)."""

import json
import subprocess
import sys
from pathlib import Path

from bench.stack import ROOT


def test_quick_run_writes_the_report_and_the_json(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output-dir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    results = json.loads((tmp_path / "benchmarks.json").read_text())
    paths = results["single"][0]["paths"]
    assert set(paths) == {"ffmpeg", "transcoder", "gateway sqlite+folder", "gateway postgres+s3"}
    assert all(path["median_s"] > 0 for path in paths.values())
    backends = {"sqlite+folder", "postgres+s3"}
    assert set(results["concurrency"]) == set(results["download"]) == backends
    markdown = (tmp_path / "benchmarks.md").read_text()
    assert "## Goals (issue 5)" in markdown
    assert "upload via gateway, PostgreSQL + S3" in markdown
