"""Processes as /proc shows them (Linux only): for tests that check no encoder outlives its
request, and for the benchmark's memory sampler."""

from collections.abc import Iterator
from pathlib import Path


def process_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields of /proc/<pid>/stat after the command name) of every process we can see
    (Linux only): ``fields[0]`` is the state, ``fields[1]`` the parent's pid."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited while we looked
            continue
        # "pid (comm) state ppid …": comm may hold spaces and ")", so split after the last ")"
        yield int(entry.name), stat[stat.rindex(")") + 2 :].split()


def child_pids(pid: int) -> list[int]:
    """Live or zombie children of process ``pid``."""
    return [child for child, fields in process_stats() if int(fields[1]) == pid]


def is_running(pid: int) -> bool:
    """Alive and not a zombie (an orphan may wait a while for its new parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def bytes_written(pid: int) -> int:
    """Every byte process ``pid`` has passed to write(2) and its kin so far (files and pipes;
    sendfile(2) counts too; send(2) on a socket does not)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError(f"no write count for process {pid}")
