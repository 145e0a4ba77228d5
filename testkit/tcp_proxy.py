"""A TCP relay between a service and one of its dependencies, to cause network faults for real.

    proxy = TcpProxy(("127.0.0.1", 5432))   # or a Unix socket path; port= to choose the port
    proxy.start()        # listens on 127.0.0.1:proxy.port (the same port after every restart)
    proxy.stop()         # the dependency is "down": connections refused, open ones cut
    proxy.pause()        # the dependency "hangs": connections stay open, no byte moves
    proxy.retarget(...)  # a restarted dependency behind the same address

``with proxy:`` starts it and stops it at the end. It also remembers the HTTP request lines it
relayed (``requests()``), so a test can tell "the object was put, then deleted" from "the object
was never put".
"""

import contextlib
import re
import socket
import threading
from dataclasses import dataclass, field

Address = tuple[str, int] | str  # (host, port) or the path of a Unix socket

_POLL_SECONDS = 0.05
_REQUEST_LINE = re.compile(rb"(GET|HEAD|PUT|POST|DELETE) (/\S*) HTTP/1\.[01]\r\n")


@dataclass
class _Connection:
    client: socket.socket
    upstream: socket.socket
    sent: bytearray = field(default_factory=bytearray)

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class TcpProxy:
    """Relays 127.0.0.1:port to ``target`` with one thread per direction per connection.

    ``port``: listen there; by default on a free port, chosen at the first start.
    """

    def __init__(self, target: Address, port: int = 0) -> None:
        self.target = target
        self.port = port
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._connections: list[_Connection] = []
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()
        self._request_lines: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "TcpProxy":
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        assert self._listener is None, "already started"
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(_POLL_SECONDS)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._running.set()
        self._spawn(self._accept_loop, listener)

    def stop(self) -> None:
        """Close the listening socket and cut every open connection; returns once its threads
        ended (waiting up to 10 s for each)."""
        self._running.clear()
        with self._lock:
            connections, self._connections = self._connections, []
            threads, self._threads = self._threads, []
        for connection in connections:
            connection.close()
        for thread in threads:
            thread.join(10)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def pause(self) -> None:
        """Stop moving bytes (both ways) without closing anything: a hung dependency."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def retarget(self, target: Address) -> None:
        """New connections go to ``target``; open ones are cut."""
        self.stop()
        self.target = target
        self.start()

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every HTTP request relayed so far, in order per connection."""
        with self._lock:
            seen = list(self._request_lines)
            for connection in self._connections:
                seen += _request_lines(bytes(connection.sent))
        return seen

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._running.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = self._connect()
            except OSError:
                client.close()  # the target itself is down: so are we
                continue
            connection = _Connection(client, upstream)
            with self._lock:
                if not self._running.is_set():
                    connection.close()
                    return
                self._connections.append(connection)
            self._spawn(self._pump, connection, client, upstream, True)
            self._spawn(self._pump, connection, upstream, client, False)

    def _connect(self) -> socket.socket:
        if isinstance(self.target, str):
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.target)
            except OSError:
                upstream.close()
                raise
            return upstream
        return socket.create_connection(self.target, timeout=5)

    def _pump(
        self, connection: _Connection, source: socket.socket, sink: socket.socket, outbound: bool
    ) -> None:
        source.settimeout(None)
        try:
            while data := source.recv(65536):
                while not self._flowing.wait(_POLL_SECONDS):
                    if not self._running.is_set():
                        return
                if outbound:
                    connection.sent += data
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
            self._finish(connection, outbound)

    def _finish(self, connection: _Connection, outbound: bool) -> None:
        if not outbound:
            return
        # The client side ended: remember what it asked for, then release the sockets.
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)
                self._request_lines += _request_lines(bytes(connection.sent))
            else:
                return
        connection.close()


def _request_lines(stream: bytes) -> list[tuple[str, str]]:
    return [(m[1].decode(), m[2].decode()) for m in _REQUEST_LINE.finditer(stream)]
