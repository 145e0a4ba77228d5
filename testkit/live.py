"""Run servers as real subprocesses for end-to-end tests (and the benchmark), and wait on them.

    with serve("transcoder.main:create_app", {"TRANSCODE_TIMEOUT_SECONDS": "5"}) as base_url:
        httpx.get(f"{base_url}/healthz")

``running()`` is the same but yields a ``LiveServer`` that also has the process id. Both take
``port=`` (to restart a server where clients already point) and ``output=`` (a file that receives
the server's stdout and stderr, for assertions on its logs). ``launched()`` starts any command
that serves HTTP (a compose service's own command, moto's server) and waits until it answers.
"""

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from servicekit.supervisor import GATEWAY_UVICORN_OPTIONS

GATEWAY_APP = "gateway.main:create_app"
TRANSCODER_APP = "transcoder.main:create_app"
STARTUP_SECONDS = 30.0
SHUTDOWN_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class LiveServer:
    url: str
    pid: int


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def serve(
    app: str, env: dict[str, str], *, port: int | None = None, output: Path | None = None
) -> Iterator[str]:
    """Serve ``app`` (``module:factory``) with ``env`` over os.environ; yields the base URL."""
    with running(app, env, port=port, output=output) as server:
        yield server.url


@contextlib.contextmanager
def running(
    app: str,
    env: dict[str, str],
    *,
    port: int | None = None,
    output: Path | None = None,
    uvicorn_args: Sequence[str] = (),
    plain: bool = False,
    tls: tuple[Path, Path] | None = None,
) -> Iterator[LiveServer]:
    """Like ``serve``, yielding the URL and the server's process id.

    ``port``: listen there instead of on a free port. ``output``: append stdout and stderr there.
    ``uvicorn_args``: more options for uvicorn (``--timeout-graceful-shutdown 5``). ``plain``:
    the gateway on uvicorn's own protocol, not the zero-copy one every launcher gives it.
    ``tls``: (key, certificate) PEM files to serve HTTPS with; the URL is then ``https://``.
    """
    port = port or free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--factory", *uvicorn_args]
    if app == GATEWAY_APP and not plain:  # as every launcher runs it
        command += GATEWAY_UVICORN_OPTIONS
    verify: ssl.SSLContext | bool = True
    if tls is not None:
        key, certificate = tls
        command += ["--ssl-keyfile", str(key), "--ssl-certfile", str(certificate)]
        verify = ssl.create_default_context(cafile=str(certificate))
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with contextlib.ExitStack() as files:
        sink = files.enter_context(output.open("ab")) if output is not None else None
        url = f"{'http' if tls is None else 'https'}://127.0.0.1:{port}"
        server = launched(command, url, env={**os.environ, **env}, output=sink, verify=verify)
        yield files.enter_context(server)


@contextlib.contextmanager
def launched(
    command: Sequence[str],
    url: str,
    *,
    ready_path: str = "/healthz",
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    output: IO[bytes] | int | None = None,
    startup_seconds: float = STARTUP_SECONDS,
    verify: ssl.SSLContext | bool = True,
) -> Iterator[LiveServer]:
    """Run ``command``, a server at ``url``, until the block ends; yield once ``ready_path``
    answers 200.

    ``env``: its whole environment (default: this one). ``output``: where its stdout and stderr
    go, as ``subprocess`` takes it (default: this process's). ``verify``: how an ``https`` URL's
    certificate is checked, as httpx takes it.
    """
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=output, stderr=output)
    try:
        _wait_answers(f"{url}{ready_path}", process, startup_seconds, verify)
        yield LiveServer(url=url, pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_answers(
    url: str, process: "subprocess.Popen[bytes]", seconds: float, verify: ssl.SSLContext | bool
) -> None:
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=1.0, verify=verify) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the server exited with {process.returncode}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: no answer within {seconds:g} s")
            time.sleep(0.05)  # the poll interval, not synchronisation: the loop has a deadline


def wait_until(condition: Callable[[], bool], *, seconds: float = 10.0, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {seconds:g} s: {what or condition}")
        time.sleep(0.02)


def leftovers(tmpdir: Path) -> list[Path]:
    """What a server left in its TMPDIR: everything but its scratch folder (``servicekit.scratch``)
    and that folder's lock file, which live as long as the server."""
    found = []
    for path in tmpdir.rglob("*"):
        scratch = path.parent == tmpdir and path.is_dir() and path.name.startswith("riffle-")
        if not scratch and path.name != ".lock":
            found.append(path)
    return found
