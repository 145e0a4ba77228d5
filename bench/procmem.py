"""Peak resident memory of process trees, sampled from /proc in a background thread.

RSS (from /proc/PID/stat) is read every tick; PSS (from /proc/PID/smaps_rollup, which makes the
kernel walk the page tables, so dearer) every ``pss_every`` ticks, for the watched trees only.
PSS shares each page among the processes that map it, so a tree's PSS does not count twice the
pages that forked children (or two servers) share, as RSS does.
"""

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


def tree_pids(root: int, table: Mapping[int, tuple[int, int]]) -> list[int]:
    """``root`` and all of its descendants that are in ``table``."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def resident_mb(roots: Mapping[str, int]) -> dict[str, float]:
    """RSS of each named tree now, and ``total``, their sum (MB)."""
    table = _stat_table()
    now = {
        name: sum(table[pid][1] for pid in tree_pids(root, table)) for name, root in roots.items()
    }
    return _mb(now, sum(now.values()))


def pss_bytes(pid: int) -> int:
    """Proportional set size of one process (0 if it has gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            for line in rollup:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


@dataclass(slots=True)
class Window:
    """Peaks seen while a window was open, per named tree and for the sum of the trees."""

    roots: dict[str, int]
    peaks: dict[str, int] = field(default_factory=dict)
    peak_total: int = 0
    pss_peaks: dict[str, int] = field(default_factory=dict)
    pss_peak_total: int = 0

    def add(self, table: Mapping[int, tuple[int, int]], *, with_pss: bool = False) -> None:
        total = pss_total = 0
        for name, root in self.roots.items():
            pids = tree_pids(root, table)
            rss = sum(table[pid][1] for pid in pids)
            total += rss
            self.peaks[name] = max(self.peaks.get(name, 0), rss)
            if with_pss:
                pss = sum(pss_bytes(pid) for pid in pids)
                pss_total += pss
                self.pss_peaks[name] = max(self.pss_peaks.get(name, 0), pss)
        self.peak_total = max(self.peak_total, total)
        self.pss_peak_total = max(self.pss_peak_total, pss_total)

    def as_mb(self) -> dict[str, float]:
        """Peak RSS per tree, and ``total``: the peak of their sum (MB)."""
        return _mb(self.peaks, self.peak_total)

    def pss_as_mb(self) -> dict[str, float]:
        """The same for PSS, sampled less often (so it may miss a short peak that RSS saw)."""
        return _mb(self.pss_peaks, self.pss_peak_total)


def _mb(peaks: Mapping[str, int], total: int) -> dict[str, float]:
    out = {name: round(value / MB, 1) for name, value in peaks.items()}
    out["total"] = round(total / MB, 1)
    return out


class Sampler:
    """Samples every ``interval`` seconds while at least one window is open (PSS every
    ``pss_every`` samples, and when a window opens and closes)."""

    def __init__(self, interval: float = 0.02, pss_every: int = 5) -> None:
        self.interval = interval
        self.pss_every = pss_every
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
        window.add(_stat_table(), with_pss=True)
        with self._lock:
            self._windows.append(window)
        try:
            yield window
        finally:
            with self._lock:
                self._windows.remove(window)
            window.add(_stat_table(), with_pss=True)

    def _loop(self) -> None:
        ticks = 0
        while not self._stop.wait(self.interval):
            with self._lock:
                windows = list(self._windows)
            if windows:
                ticks += 1
                table = _stat_table()
                for window in windows:
                    window.add(table, with_pss=ticks % self.pss_every == 0)
