"""HTTP metrics, one registry per app (so each app, and each test, counts alone).

``servicekit.middleware.AccessMiddleware`` records them; each service names them with its prefix.
"""

from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from starlette.types import Scope

# Uploads of long recordings take minutes: the default buckets stop at 10 s.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
UNMATCHED_ROUTE = "unmatched"


def new_registry() -> CollectorRegistry:
    """A registry of its own, already holding this process's CPU, memory and open files."""
    # The client's per-series `_created` timestamps double the output for no reader's gain.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    return registry


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/users/{user_id}/records``), or ``unmatched``."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if template:
        return str(template)
    if "endpoint" in scope and not scope.get("path_params"):
        # A plain route FastAPI adds itself (/openapi.json, /docs): fixed paths, no parameters.
        return str(scope["path"])
    return UNMATCHED_ROUTE


@dataclass(frozen=True, slots=True)
class HttpMetrics:
    """Requests, latency and body bytes, labelled by method and route template (never the raw
    path: ids would explode the label space)."""

    requests: Counter
    request_seconds: Histogram
    received_bytes: Counter
    sent_bytes: Counter

    @classmethod
    def create(
        cls,
        registry: CollectorRegistry,
        *,
        prefix: str,
        received_help: str = "Request body bytes read, by route.",
        sent_help: str = "Response body bytes sent, by route.",
    ) -> "HttpMetrics":
        """``{prefix}_requests``, ``{prefix}_request_duration_seconds``, ``{prefix}_*_bytes``."""
        route = ["method", "route"]
        return cls(
            requests=Counter(
                f"{prefix}_requests",
                "HTTP requests answered, by route template and status.",
                [*route, "status"],
                registry=registry,
            ),
            request_seconds=Histogram(
                f"{prefix}_request_duration_seconds",
                "Time from request start to the end of the response, by route and status.",
                [*route, "status"],
                buckets=REQUEST_BUCKETS,
                registry=registry,
            ),
            received_bytes=Counter(
                f"{prefix}_received_bytes", received_help, route, registry=registry
            ),
            sent_bytes=Counter(f"{prefix}_sent_bytes", sent_help, route, registry=registry),
        )

    def observe(
        self, method: str, route: str, status: int, seconds: float, received: int, sent: int
    ) -> None:
        """Count one answered request."""
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(method, route, str(status)).observe(seconds)
        self.received_bytes.labels(method, route).inc(received)
        self.sent_bytes.labels(method, route).inc(sent)
