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
        timeout=300,  # a hang guard only: a busy 2-core machine makes the quick run slow
    )
    results = json.loads((tmp_path / "benchmarks.json").read_text())
    paths = results["single"][0]["paths"]
    assert set(paths) == {"ffmpeg", "transcoder", "gateway sqlite+folder", "gateway postgres+s3"}
    assert all(path["median_s"] > 0 for path in paths.values())
    backends = {"sqlite+folder", "postgres+s3"}
    assert set(results["concurrency"]) == set(results["download"]) == backends
    # The large download: one client on every side; the sendfile ceiling where the store is a file.
    assert results["setup"]["download_client_is_curl"]
    folder, s3 = results["download"]["sqlite+folder"], results["download"]["postgres+s3"]
    assert folder["direct_what"].startswith("the file itself")
    assert s3["direct_what"].startswith("a presigned GET")
    assert folder["sendfile_mib_s"] > 0
    assert s3["sendfile_mib_s"] is None
    for row in (folder, s3):
        assert min(row[name] for name in ("gateway_mib_s", "direct_mib_s", "in_process_mib_s")) > 0
        assert row["gateway_cpu_s_per_download"] >= 0
    # Quality: every speed path on both materials, gaplessly decoded to the input's length.
    quality = {(row["material"], row["path"]): row for row in results["quality"]}
    assert set(quality) == {
        (material, path)
        for material in ("pink noise", "music-like")
        for path in ("reference", "default", "ffmpeg", "split")
    }
    assert all(row["samples_equal"] and row["snr_db"] > 5 for row in quality.values())
    assert all(quality[material, "reference"]["delta_snr_db"] == 0 for material, _ in quality)
    # One row per target of issue 15; those a quick run does not measure say so.
    targets = {row["figure"]: row for row in results["targets"]}
    assert len(targets) == 14
    assert targets["600 s upload, end to end, postgres+s3, vs raw CLI"]["met"] is None
    assert targets["4 clients vs 1, sqlite+folder, audio-seconds per second"]["met"] is not None
    markdown = (tmp_path / "benchmarks.md").read_text()
    assert "## Targets (issue 15)" in markdown
    assert "## Quality of each speed path" in markdown
    assert "upload via gateway, PostgreSQL + S3" in markdown
    assert "sendfile server (HTTP ceiling)" in markdown
