"""Private temporary folders, made and removed in a worker thread (never on the event loop),
inside this process's scratch folder (``servicekit.scratch``)."""

import errno
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread

from gateway.errors import InsufficientStorage


@asynccontextmanager
async def temporary_directory(prefix: str) -> AsyncIterator[Path]:
    """A fresh folder only this request uses; removed with everything in it, whatever happens."""
    path = Path(await anyio.to_thread.run_sync(partial(tempfile.mkdtemp, prefix=prefix)))
    try:
        yield path
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(partial(shutil.rmtree, path, ignore_errors=True))


@contextmanager
def disk_full_is_507() -> Iterator[None]:
    """A full disk (the spool, the MP3, the folder store) is the server's trouble, not the
    client's: 507 with ``Retry-After``; the temporary folders are removed on the way out."""
    try:
        yield
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            refusal = InsufficientStorage()
            refusal.headers["Connection"] = "close"  # the rest of the body is not read
            raise refusal from error
        raise
