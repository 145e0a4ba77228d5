"""Each process's temporary files in a folder of its own, swept when the process is gone.

``claim_scratch()`` (called by each service's lifespan) makes ``$TMPDIR/riffle-<pid>-<random>/``,
holds an exclusive ``flock`` on a lock file inside it for as long as the process lives, and points
``tempfile`` there, so every spool, MP3 and segment of this process lands in it. At start-up it
first removes the folders whose lock nobody holds: what a process killed with SIGKILL (or a
crashed container on a shared volume) left behind. A lock, not a pid check: pids are reused.
"""

import atexit
import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

PREFIX = "riffle-"
LOCK_NAME = ".lock"

_claimed: Path | None = None
_claim_lock = threading.Lock()


def claim_scratch() -> Path:
    """This process's scratch folder (made, locked and made ``tempfile``'s default on the first
    call; later calls return it)."""
    global _claimed
    with _claim_lock:
        if _claimed is None:
            base = Path(tempfile.gettempdir())
            swept = sweep(base)
            if swept:
                logger.info("Removed %d temporary folders of processes that are gone", swept)
            _claimed = _make(base)
            tempfile.tempdir = str(_claimed)
        return _claimed


def _make(base: Path) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))
    # Locked before it gets its name: a sweep never sees an unlocked lock file of a live process.
    pending = folder / f"{LOCK_NAME}-pending"
    lock = os.open(pending, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    pending.rename(folder / LOCK_NAME)
    # The descriptor stays open (and locked) until the process ends, however it ends.
    atexit.register(_release, folder, lock)
    return folder


def _release(folder: Path, lock: int) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    os.close(lock)


def sweep(base: Path) -> int:
    """Remove the scratch folders under ``base`` whose owner is gone; returns how many."""
    removed = 0
    for folder in base.glob(f"{PREFIX}*"):
        lock_path = folder / LOCK_NAME
        try:
            lock = os.open(lock_path, os.O_RDWR)
        except OSError:
            continue  # not one of ours, or being made right now
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its process is alive
        finally:
            with contextlib.suppress(OSError):
                os.close(lock)
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed
