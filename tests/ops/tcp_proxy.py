"""A TCP forwarder on a fixed local port that can be stopped (connections refused, open ones cut)
and started again: a dependency going away and coming back, as its clients see it."""

import contextlib
import socket
import threading
from collections.abc import Callable

ACCEPT_POLL_SECONDS = 0.05


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to whatever ``connect()`` opens."""

    def __init__(self, connect: Callable[[], socket.socket], port: int) -> None:
        self._connect = connect
        self.port = port
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._acceptor: threading.Thread | None = None
        self._pipes: list[threading.Thread] = []
        # Touched by the accepting thread while it runs, by stop() only after it ended.
        self._sockets: list[socket.socket] = []

    def start(self) -> None:
        assert self._listener is None, "already started"
        self._stopping.clear()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(ACCEPT_POLL_SECONDS)
        self._acceptor = threading.Thread(target=self._accept_loop, args=(self._listener,))
        self._acceptor.start()

    def stop(self) -> None:
        """Stop listening and cut every open connection; returns when all threads ended."""
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join()  # after this, no new connection or pipe appears
            self._acceptor = None
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for pipe in self._pipes:
            pipe.join()
        self._pipes.clear()
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> "TcpProxy":
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            self._sockets.append(client)
            try:
                upstream = self._connect()
            except OSError:
                client.shutdown(socket.SHUT_RDWR)
                continue
            self._sockets.append(upstream)
            for source, target in ((client, upstream), (upstream, client)):
                pipe = threading.Thread(target=_pipe, args=(source, target), daemon=True)
                self._pipes.append(pipe)
                pipe.start()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            target.sendall(chunk)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)
