"""Fakes of ffmpeg for the faults real ffmpeg cannot be made to show (hanging, ignoring SIGTERM)."""

import stat
import sys
from pathlib import Path

# Records its pid in $FAKE_FFMPEG_PID_DIR, ignores SIGTERM and never finishes: only SIGKILL ends it.
HANGING_FFMPEG = """
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
pid_dir = os.environ.get("FAKE_FFMPEG_PID_DIR")
if pid_dir:
    open(os.path.join(pid_dir, str(os.getpid())), "w").close()
time.sleep(120)
"""


def fake_ffmpeg(path: Path, source: str) -> Path:
    """An executable at ``path`` running the Python ``source`` with this interpreter.

    Without ``site`` (``-S``, so ``source`` has the standard library only): it starts at once, and
    no .pth hook runs in it (under ``make coverage``, coverage's would delay it past deadlines).
    """
    path.write_text(f"#!{sys.executable} -S\n{source}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path
