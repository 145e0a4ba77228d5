"""Private temporary folders, made and removed in a worker thread (never on the event loop)."""

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread


@asynccontextmanager
async def temporary_directory(prefix: str) -> AsyncIterator[Path]:
    """A fresh folder only this request uses; removed with everything in it, whatever happens."""
    path = Path(await anyio.to_thread.run_sync(partial(tempfile.mkdtemp, prefix=prefix)))
    try:
        yield path
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(partial(shutil.rmtree, path, ignore_errors=True))
