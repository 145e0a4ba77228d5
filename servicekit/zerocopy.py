"""Zero-copy downloads: the ASGI extension ``http.response.zerocopysend``, both halves.

uvicorn copies every response body through Python (it offers no sendfile: its issue #35). Where
an object is a file (the folder store), a download could instead go from the page cache to the
socket with ``os.sendfile``. ``ZeroCopyH11Protocol`` is uvicorn's h11 protocol offering the
extension (``uvicorn --http servicekit.zerocopy:ZeroCopyH11Protocol``); ``FileSpanResponse`` is
the app half, for when the server offers it. Under any other server the extension is not in
the scope and downloads stream as before.

The extension: https://asgi.readthedocs.io/en/latest/extensions.html#zero-copy-send
"""

import asyncio
import os
from collections.abc import Sequence
from typing import Any, BinaryIO

import h11
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle

ZEROCOPY_SEND = "http.response.zerocopysend"
BODY_MESSAGES = frozenset({"http.response.body", ZEROCOPY_SEND})


def offered(scope: Scope) -> bool:
    """Whether the server serving ``scope`` takes ``http.response.zerocopysend`` messages."""
    return ZEROCOPY_SEND in scope.get("extensions", {})


def body_bytes(message: Message) -> int:
    """How many body bytes a message of ``BODY_MESSAGES`` carries."""
    if message["type"] == ZEROCOPY_SEND:
        return int(message["count"])
    return len(message.get("body", b""))


class FileSpanResponse(Response):
    """``count`` bytes of ``file`` from ``offset``, sent by the server with zero-copy send (only
    where ``offered``); the file is closed once they are sent, or not."""

    def __init__(
        self,
        file: BinaryIO,
        *,
        offset: int,
        count: int,
        status_code: int,
        headers: dict[str, str],
    ) -> None:
        super().__init__(status_code=status_code, headers=headers)
        self.file, self.offset, self.count = file, offset, count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self.file:
            start = {"type": "http.response.start", "status": self.status_code}
            await send({**start, "headers": self.raw_headers})
            span = {"offset": self.offset, "count": self.count}
            await send({"type": ZEROCOPY_SEND, "file": self.file, **span})


class _Span:
    """A placeholder body h11 frames and counts (``len``) without holding the bytes."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count


class ZeroCopyCycle(RequestResponseCycle):
    """uvicorn's request/response cycle, plus ``http.response.zerocopysend``."""

    async def send(self, message: Message) -> None:  # type: ignore[override]
        if message["type"] != ZEROCOPY_SEND:
            await super().send(message)  # type: ignore[arg-type]
            return
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started or self.response_complete:
            raise RuntimeError(f"Unexpected ASGI message {ZEROCOPY_SEND!r} outside a body.")
        if self.scope["method"] != "HEAD":
            await self._send_file(message["file"], message.get("offset"), message.get("count"))
        if not self.disconnected and not message.get("more_body", False):
            # The response ends as uvicorn ends one: an empty last body message.
            await super().send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_file(self, file: BinaryIO, offset: int | None, count: int | None) -> None:
        if offset is None:
            offset = file.tell()
        if count is None:
            count = os.fstat(file.fileno()).st_size - offset
        span = _Span(count)
        # h11 counts the span against Content-Length and returns it among the framing bytes.
        data = h11.Data(data=span)  # type: ignore[arg-type]
        pieces: Sequence[object] = self.conn.send_with_data_passthrough(data) or []
        loop = asyncio.get_running_loop()
        for piece in pieces:
            if isinstance(piece, bytes):
                self.transport.write(piece)
                continue
            if not count:
                continue  # (sendfile reads a count of 0 as "to the end")
            try:
                sent = await loop.sendfile(self.transport, file, offset, count)
            except OSError:  # the client went away mid-file
                sent = -1
            if sent != count:  # gone, or the file is shorter than promised: end the connection
                self.disconnected = True
                self.transport.close()
                return


class ZeroCopyH11Protocol(H11Protocol):
    """uvicorn's h11 protocol whose requests are offered ``http.response.zerocopysend``."""

    _cycle: RequestResponseCycle

    @property
    def cycle(self) -> RequestResponseCycle:
        return self._cycle

    @cycle.setter
    def cycle(self, cycle: RequestResponseCycle | None) -> None:
        # uvicorn builds each request's cycle inline; it is upgraded here, before its task runs.
        if cycle is not None:
            cycle.__class__ = ZeroCopyCycle
            extensions: dict[str, Any] = dict(cycle.scope.get("extensions") or {})
            cycle.scope["extensions"] = {**extensions, ZEROCOPY_SEND: {}}
        self._cycle = cycle  # type: ignore[assignment]  # None before the first request, as in uvicorn
