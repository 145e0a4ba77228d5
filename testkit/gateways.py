"""A gateway on one of its two back-ends, seen from outside for assertions: in this process or
as a live server, the same ``Gateway`` (its URL, a client, its rows and objects)."""

import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from testkit.databases import migrate
from testkit.s3 import S3_CREDENTIALS, S3Endpoint

BACKENDS = ["postgres+s3", "sqlite+folder"]


@dataclass(frozen=True)
class Backend:
    """Where a gateway keeps rows and objects: its settings (environment names) and a view."""

    settings: dict[str, str]
    database_url: str
    list_keys: Callable[[], list[str]]


@contextmanager
def backend(name: str, *, postgres_url: str, s3_endpoint: S3Endpoint) -> Iterator[Backend]:
    """``postgres+s3``: the session's database and a fresh bucket; ``sqlite+folder``: a new,
    migrated SQLite file and an objects folder, removed at the end."""
    with tempfile.TemporaryDirectory(prefix="riffle-gw-") as workdir:
        if name == "postgres+s3":
            bucket = f"riffle-{uuid.uuid4().hex[:12]}"
            settings = {
                "DATABASE_URL": postgres_url,
                "STORAGE_URL": f"s3://{bucket}",
                "S3_ENDPOINT_URL": s3_endpoint.url,
                **S3_CREDENTIALS,
            }
            yield Backend(settings, postgres_url, lambda: s3_endpoint.keys(bucket))
            return
        database_url = f"sqlite:///{workdir}/riffle.db"
        objects = Path(workdir) / "objects"
        migrate(database_url)

        def list_keys() -> list[str]:
            return sorted(
                str(path.relative_to(objects)) for path in objects.rglob("*") if path.is_file()
            )

        settings = {"DATABASE_URL": database_url, "STORAGE_URL": f"file://{objects}"}
        yield Backend(settings, database_url, list_keys)


@dataclass(frozen=True)
class Gateway:
    """A gateway at ``url`` on ``backend``; ``transport`` makes one per client when the gateway
    runs in this process (None: a live server, reached over TCP)."""

    url: str
    backend: Backend
    transport: Callable[[], httpx.BaseTransport] | None = None

    def client(self, **kwargs: object) -> httpx.Client:
        transport = self.transport() if self.transport is not None else None
        return httpx.Client(base_url=self.url, timeout=60, transport=transport, **kwargs)  # type: ignore[arg-type]

    def record_count(self, user_id: str | uuid.UUID) -> int:
        database_url = self.backend.database_url
        engine = create_engine(database_url)
        try:
            with engine.connect() as connection:
                count = connection.execute(
                    text("SELECT count(*) FROM records WHERE user_id = :user"),
                    {
                        "user": uuid.UUID(str(user_id)).hex
                        if "sqlite" in database_url
                        else str(user_id)
                    },
                ).scalar_one()
        finally:
            engine.dispose()
        return int(count)

    def object_keys(self, user_id: str | uuid.UUID) -> list[str]:
        prefix = f"recordings/{user_id}/"
        return [key for key in self.backend.list_keys() if key.startswith(prefix)]


# ``with factory(backend="postgres+s3", **settings) as gateway``: settings as environment names.
GatewayFactory = Callable[..., AbstractContextManager[Gateway]]
# ``with ops_gateway(output=path, **settings) as url``: a live gateway, its output in a file.
OpsGateway = Callable[..., AbstractContextManager[str]]


def assert_nothing_stored(gateway: Gateway, user_id: str) -> None:
    """No record row and no object of ``user_id``: a failed upload left nothing behind."""
    assert gateway.record_count(user_id) == 0
    assert gateway.object_keys(user_id) == []
