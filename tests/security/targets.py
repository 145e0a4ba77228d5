"""What the hostile-input tests aim at: a live gateway with its own TMPDIR (``Hardened``), and a
canary HTTP server that counts every request it gets: anything that makes a service fetch a URL
shows up there."""

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from testkit.gateways import Gateway

# Small enough to reach quickly, large enough for every legitimate test file.
MAX_UPLOAD_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Hardened:
    gateway: Gateway
    tmp: Path

    def client(self) -> httpx.Client:
        return self.gateway.client()

    def new_user(self) -> dict[str, str]:
        with self.client() as client:
            response = client.post("/users", json={"name": "target"})
        assert response.status_code == 201
        user: dict[str, str] = response.json()
        return user


class Canary:
    """An HTTP server on loopback that remembers the paths it was asked for."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(404)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "Canary":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
