"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 in a thread of the test
process that verifies every delivery with the ``standardwebhooks`` library and answers by a
plan (a status per arrival, or ``HANG`` to answer nothing), then 204.

    with Receiver(plan=[500, HANG]) as receiver:   # listening
        ...
    receiver = Receiver(); receiver.url; ...; receiver.start()   # not listening until start()
"""

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from testkit.live import free_port

HANG = "hang"  # read the request, answer nothing (until the receiver closes)
HANG_LIMIT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Arrival:
    """One request the receiver got: its headers, body, and what verification said."""

    at: float  # time.monotonic()
    path: str
    headers: dict[str, str]
    body: bytes
    event: dict[str, Any] | None  # the verified payload; None if verification failed
    verify_error: str | None
    answer: int | str


class Receiver:
    def __init__(self, *, plan: Sequence[int | str] = (), port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.plan = list(plan)
        self.secret: str | None = None  # set once the webhook's PUT answered
        self.arrivals: list[Arrival] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver._arrived(self.path, headers, body, self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def _arrived(
        self, path: str, headers: dict[str, str], body: bytes, handler: BaseHTTPRequestHandler
    ) -> None:
        event: dict[str, Any] | None = None
        error: str | None = None
        try:
            assert self.secret is not None, "a delivery before the webhook's secret was known"
            event = Webhook(self.secret).verify(body, headers)
        except (AssertionError, WebhookVerificationError) as failure:
            error = str(failure)
        with self._lock:
            answer = self.plan[len(self.arrivals)] if len(self.arrivals) < len(self.plan) else 204
            self.arrivals.append(
                Arrival(time.monotonic(), path, headers, body, event, error, answer)
            )
        if answer == HANG:
            self._closing.wait(HANG_LIMIT_SECONDS)
            return
        handler.send_response(int(answer))
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def received(self) -> list[Arrival]:
        with self._lock:
            return list(self.arrivals)

    def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "Receiver":
        return self.start() if self._server is None else self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
