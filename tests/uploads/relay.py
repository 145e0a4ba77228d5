"""A TCP relay in front of a gateway that cuts the connection in the middle of an upload, once,
and counts the request body bytes it passed on: how much a resuming client sent again.

    with CuttingRelay(("127.0.0.1", port), cut_after=2_000_000) as relay:
        ...  # a client uploads through relay.url
    relay.cut_at, relay.body_bytes, relay.requests

When the request bodies passed on reach ``cut_after`` bytes, the relay stops there (mid-body),
closes every open connection both ways, and then relays new connections as before. It parses
HTTP/1.1 requests framed by ``Content-Length`` (what tus clients send), one after another on a
kept-alive connection.
"""

import contextlib
import socket
import threading
from dataclasses import dataclass

_POLL_SECONDS = 0.05


@dataclass
class Relayed:
    """One request as the relay passed it on."""

    method: str
    path: str
    upload_offset: int | None
    content_length: int
    body_bytes: int = 0  # passed on: less than content_length if the cut came in between


class _Stream:
    """The client-to-server byte stream of one connection, split into requests."""

    def __init__(self, relay: "CuttingRelay") -> None:
        self.relay = relay
        self.head = bytearray()
        self.current: Relayed | None = None
        self.remaining = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """What to pass on of ``data``, and whether to cut the connection after it."""
        out = bytearray()
        while data:
            if self.remaining == 0:
                self.head += data
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    out += data
                    return bytes(out), False
                taken = len(data) - (len(self.head) - end - 4)
                out += data[:taken]
                data = data[taken:]
                self._start(bytes(self.head[:end]))
                self.head.clear()
                continue
            size = min(self.remaining, len(data))
            size, cut = self.relay._take(size)
            assert self.current is not None
            self.current.body_bytes += size
            self.remaining -= size
            out += data[:size]
            data = data[size:]
            if cut:
                return bytes(out), True
        return bytes(out), False

    def _start(self, head: bytes) -> None:
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        offset = headers.get("upload-offset")
        request = Relayed(
            method,
            path,
            int(offset) if offset is not None else None,
            int(headers.get("content-length", "0")),
        )
        self.relay._record(request)
        self.current, self.remaining = request, request.content_length


class CuttingRelay:
    def __init__(self, target: tuple[str, int], *, cut_after: int | None) -> None:
        self.target = target
        self.cut_after = cut_after
        self.cut_at: int | None = None  # body bytes passed on when the cut came
        self.requests: list[Relayed] = []
        self.port = 0
        self._passed = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._running = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def body_bytes(self) -> int:
        """Request body bytes passed on to the server, over all requests."""
        with self._lock:
            return self._passed

    def __enter__(self) -> "CuttingRelay":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.settimeout(_POLL_SECONDS)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._running.set()
        self._spawn(self._accept_loop)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._running.clear()
        self._close_all()
        for thread in self._threads:
            thread.join(10)
        if self._listener is not None:
            self._listener.close()

    def _take(self, size: int) -> tuple[int, bool]:
        """How many of ``size`` body bytes may pass before the cut, and whether it comes now."""
        with self._lock:
            if self.cut_after is None or self.cut_at is not None:
                self._passed += size
                return size, False
            allowed = min(size, self.cut_after - self._passed)
            self._passed += allowed
            if self._passed >= self.cut_after:
                self.cut_at = self._passed
                return allowed, True
            return allowed, False

    def _record(self, request: Relayed) -> None:
        with self._lock:
            self.requests.append(request)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while self._running.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            self._spawn(self._outbound, client, upstream)
            self._spawn(self._inbound, upstream, client)

    def _outbound(self, client: socket.socket, upstream: socket.socket) -> None:
        stream = _Stream(self)
        try:
            while data := client.recv(65536):
                passed, cut = stream.feed(data)
                upstream.sendall(passed)
                if cut:
                    self._close_all()
                    return
        except OSError:
            pass
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)

    def _inbound(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while data := upstream.recv(65536):
                client.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
