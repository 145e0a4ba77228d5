"""Peak resident memory of process trees, sampled from /proc in a background thread."""

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from testkit.procfs import process_stats

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024


def _stat_table() -> dict[int, tuple[int, int]]:
    """pid → (parent pid, resident bytes) for every process we can see."""
    return {pid: (int(fields[1]), int(fields[21]) * PAGE_BYTES) for pid, fields in process_stats()}


def tree_rss(root: int, table: Mapping[int, tuple[int, int]]) -> int:
    """Resident bytes of ``root`` and all of its descendants."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            total += table[pid][1]
        stack.extend(children.get(pid, ()))
    return total


@dataclass(slots=True)
class Window:
    """Peaks seen while a window was open, per named tree and for the sum of the trees."""

    roots: dict[str, int]
    peaks: dict[str, int] = field(default_factory=dict)
    peak_total: int = 0

    def add(self, table: Mapping[int, tuple[int, int]]) -> None:
        total = 0
        for name, root in self.roots.items():
            rss = tree_rss(root, table)
            total += rss
            self.peaks[name] = max(self.peaks.get(name, 0), rss)
        self.peak_total = max(self.peak_total, total)

    def as_mb(self) -> dict[str, float]:
        out = {name: round(value / MB, 1) for name, value in self.peaks.items()}
        out["total"] = round(self.peak_total / MB, 1)
        return out


class Sampler:
    """Samples every ``interval`` seconds while at least one window is open."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self._windows: list[Window] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @contextmanager
    def window(self, roots: Mapping[str, int]) -> Iterator[Window]:
        """Track the trees under ``roots`` (name → pid) until the block ends."""
        window = Window(dict(roots))
        window.add(_stat_table())
        with self._lock:
            self._windows.append(window)
        try:
            yield window
        finally:
            with self._lock:
                self._windows.remove(window)
            window.add(_stat_table())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                windows = list(self._windows)
            if windows:
                table = _stat_table()
                for window in windows:
                    window.add(table)
