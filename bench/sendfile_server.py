"""``python -m bench.sendfile_server PORT FILE``: the least an HTTP server can do to serve one file.

It parses nothing but the request target, answers ``/healthz`` with ``ok`` and every other GET
with the whole of FILE by ``os.sendfile`` (the kernel copies page cache to socket; no byte passes
through Python). Its throughput on loopback is the ceiling for any HTTP server on this machine,
which the large-download table shows beside the gateway's.
"""

import contextlib
import os
import socketserver
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from testkit.live import LiveServer, free_port, launched


class _Handler(socketserver.StreamRequestHandler):
    served: Path  # set on the subclass that main() builds

    def handle(self) -> None:
        while request_line := self.rfile.readline():
            parts = request_line.split()
            target = parts[1] if len(parts) > 1 else b"/"
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # headers: nothing here depends on them
            if target == b"/healthz":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            else:
                self._send_file()

    def _send_file(self) -> None:
        with self.served.open("rb") as source:
            size = os.fstat(source.fileno()).st_size
            self.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
            offset = 0
            while offset < size:
                sent = os.sendfile(self.connection.fileno(), source.fileno(), offset, size - offset)
                if sent == 0:
                    return  # the client went away
                offset += sent


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


@contextlib.contextmanager
def serving(served: Path) -> Iterator[LiveServer]:
    """This server in a process of its own (off the benchmark's GIL), on a free local port."""
    port = free_port()
    command = [sys.executable, "-m", "bench.sendfile_server", str(port), str(served)]
    root = Path(__file__).resolve().parents[1]
    url = f"http://127.0.0.1:{port}"
    with launched(command, url, cwd=root, output=subprocess.DEVNULL) as server:
        yield server


def main(argv: list[str]) -> None:
    port, served = int(argv[0]), Path(argv[1])
    handler = type("Handler", (_Handler,), {"served": served})
    with _Server(("127.0.0.1", port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
