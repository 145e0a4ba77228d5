"""The public HTTP API over httpx; every error answer becomes an ``ApiError`` carrying its
problem document (RFC 9457)."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from client.config import Credentials
from client.exits import Exit, exit_for_status

TIMEOUT = httpx.Timeout(30.0, connect=10.0)


@dataclass
class ApiError(Exception):
    """An answer riffle gave (``status`` > 0) or could not give (``status`` 0: no connection)."""

    status: int
    title: str
    detail: str = ""
    type: str = "about:blank"
    retry_after: int | None = None
    problem: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        text = f"{self.title}: {self.detail}" if self.detail else self.title
        if self.retry_after is not None:
            text += f" (riffle says: try again in {self.retry_after} s)"
        return text

    @property
    def exit_code(self) -> Exit:
        return Exit.UNAVAILABLE if self.status == 0 else exit_for_status(self.status)

    @property
    def transient(self) -> bool:
        return self.exit_code is Exit.UNAVAILABLE and self.type.rsplit("/", 1)[-1] != (
            "transcode-timeout"
        )

    @classmethod
    def from_problem(cls, problem: dict[str, Any]) -> "ApiError":
        return cls(
            status=int(problem.get("status") or 0),
            title=str(problem.get("title") or "Error"),
            detail=str(problem.get("detail") or ""),
            type=str(problem.get("type") or "about:blank"),
            problem=problem,
        )

    @classmethod
    def from_response(cls, response: httpx.Response) -> "ApiError":
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        problem.setdefault("status", response.status_code)
        problem.setdefault("title", response.reason_phrase or f"HTTP {response.status_code}")
        error = cls.from_problem(problem)
        retry_after = response.headers.get("Retry-After", "")
        error.retry_after = int(retry_after) if retry_after.isdigit() else None
        return error

    @classmethod
    def unreachable(cls, url: str, error: Exception) -> "ApiError":
        return cls(status=0, title=f"Cannot reach riffle at {url}", detail=str(error) or "")


def check(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise ApiError.from_response(response)
    return response


@dataclass
class Api:
    """One riffle, as the credentials name it."""

    credentials: Credentials
    http: httpx.Client

    @classmethod
    @contextmanager
    def open(cls, credentials: Credentials) -> Iterator["Api"]:
        with httpx.Client(base_url=credentials.url, timeout=TIMEOUT) as http:
            try:
                yield cls(credentials, http)
            except httpx.TransportError as error:
                raise ApiError.unreachable(credentials.url, error) from error

    @property
    def auth(self) -> dict[str, str]:
        if not (self.credentials.user and self.credentials.token):
            raise ApiError(
                status=401,
                title="Not signed in",
                detail="give --user and --token, set RIFFLE_USER and RIFFLE_TOKEN, "
                "or run `riffle user create NAME` (it saves them)",
            )
        return {"Authorization": f"Bearer {self.credentials.token}"}

    @property
    def user(self) -> str:
        self.auth  # noqa: B018 -- says what is missing when it is
        assert self.credentials.user is not None
        return self.credentials.user

    def create_user(self, name: str) -> dict[str, Any]:
        created: dict[str, Any] = check(self.http.post("/users", json={"name": name})).json()
        return created

    def list_records(self, *, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = self.http.get(f"/users/{self.user}/records", params=params, headers=self.auth)
        page: dict[str, Any] = check(response).json()
        return page

    @contextmanager
    def download(self, record_id: str) -> Iterator[httpx.Response]:
        params = {"id": record_id, "user": self.user}
        with self.http.stream("GET", "/record", params=params) as response:
            if response.is_error:
                response.read()
            yield check(response)

    def delete_record(self, record_id: str) -> None:
        params = {"id": record_id, "user": self.user}
        check(self.http.delete("/record", params=params, headers=self.auth))

    def job(self, job_url: str) -> dict[str, Any]:
        job: dict[str, Any] = check(self.http.get(job_url, headers=self.auth)).json()
        return job
