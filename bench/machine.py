"""Facts about the machine a result was measured on, for the report."""

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stack import ROOT


def facts(ffmpeg: str) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "memory_gib": round(_memory_kib() / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "ffmpeg": _first_line([ffmpeg, "-version"]),
        "commit": _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "load_average": _load_average(),
        "worktree_changed": bool(_first_line(["git", "-C", str(ROOT), "status", "--porcelain"])),
    }


def _load_average() -> str:
    """Other work on the machine skews every figure: the report shows how busy it was."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def _memory_kib() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _first_line(command: list[str]) -> str:
    try:
        output = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, check=False, timeout=10
        )
    except OSError:
        return "unknown"
    lines = output.stdout.strip().splitlines()
    return lines[0] if lines else ""
