"""MAX_CONCURRENT_ENCODES bounds the encoders running at once; other requests wait their turn."""

import itertools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from testkit import wavcorpus
from testkit.fake_ffmpeg import fake_ffmpeg
from testkit.live import TRANSCODER_APP, running

# Runs the real ffmpeg after a pause, then notes when it ran (CLOCK_MONOTONIC is system-wide).
TIMED_FFMPEG = """
import os, subprocess, sys, time
start = time.monotonic()
time.sleep(0.3)
code = subprocess.call([os.environ["REAL_FFMPEG"], *sys.argv[1:]])
with open(os.path.join(os.environ["FAKE_FFMPEG_LOG_DIR"], str(os.getpid())), "w") as log:
    log.write(f"{start} {time.monotonic()}")
sys.exit(code)
"""


def encode_intervals(folder: Path, limit: int, requests: int) -> list[tuple[float, float]]:
    env = {
        "FFMPEG_PATH": str(fake_ffmpeg(folder / "ffmpeg", TIMED_FFMPEG)),
        "REAL_FFMPEG": wavcorpus.ffmpeg_exe(),
        "FAKE_FFMPEG_LOG_DIR": str(folder),
        "MAX_CONCURRENT_ENCODES": str(limit),
        "ENCODE_IN_PROCESS": "false",  # the timed ffmpeg must run
    }
    wav = wavcorpus.pcm(0.5)
    with running(TRANSCODER_APP, env) as server, httpx.Client(timeout=60) as client:

        def transcode(_: int) -> int:
            return client.post(f"{server.url}/transcode", content=wav).status_code

        with ThreadPoolExecutor(requests) as pool:
            assert list(pool.map(transcode, range(requests))) == [200] * requests
    logs = [path.read_text().split() for path in folder.iterdir() if path.name != "ffmpeg"]
    return sorted((float(start), float(end)) for start, end in logs)


def overlaps(intervals: list[tuple[float, float]]) -> bool:
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(intervals))


def test_with_one_slot_encodes_run_one_after_another(tmp_path: Path) -> None:
    intervals = encode_intervals(tmp_path, limit=1, requests=3)
    assert len(intervals) == 3
    assert not overlaps(intervals)


def test_with_enough_slots_encodes_run_side_by_side(tmp_path: Path) -> None:
    # The control: the same measurement does see concurrency when it is allowed.
    intervals = encode_intervals(tmp_path, limit=3, requests=3)
    assert len(intervals) == 3
    assert overlaps(intervals)


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_limit_below_one_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from transcoder.config import Settings

    monkeypatch.setenv("MAX_CONCURRENT_ENCODES", value)
    with pytest.raises(ValidationError):
        Settings()
