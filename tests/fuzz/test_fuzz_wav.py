"""A short, seeded atheris run over ``servicekit.wav`` (the long one: see ``fuzz_wav.py``)."""

import re
import subprocess
import sys
from pathlib import Path

from tests.fuzz.seeds import write_seeds

ROOT = Path(__file__).resolve().parents[2]
RUNS = 100_000


def test_a_seeded_fuzz_run_over_wav_headers_finds_no_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_seeds(corpus)
    command = [sys.executable, "-m", "tests.fuzz.fuzz_wav", f"-runs={RUNS}", "-seed=1"]
    command += [f"-artifact_prefix={tmp_path}/", "-timeout=10", "-rss_limit_mb=1024", str(corpus)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    assert re.search(rf"Done {RUNS} runs", run.stderr), run.stderr[-2000:]
    assert not list(tmp_path.glob("crash-*"))
