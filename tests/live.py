"""Run an ASGI app factory as a real uvicorn server in a subprocess, for end-to-end tests.

    with serve("transcoder.main:create_app", {"TRANSCODE_TIMEOUT_SECONDS": "5"}) as base_url:
        httpx.get(f"{base_url}/healthz")

``running()`` is the same but yields a ``LiveServer`` that also has the process id. Both take
``port=`` (to restart a server where clients already point) and ``output=`` (a file that receives
the server's stdout and stderr, for assertions on its logs).
"""

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

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
    app: str, env: dict[str, str], *, port: int | None = None, output: Path | None = None
) -> Iterator[LiveServer]:
    """Like ``serve``, yielding the URL and the server's process id.

    ``port``: listen there instead of on a free port. ``output``: append stdout and stderr there.
    """
    port = port or free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with contextlib.ExitStack() as files:
        sink = files.enter_context(output.open("ab")) if output is not None else None
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=sink, stderr=sink)
        files.enter_context(_stopping(process))
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, process)
        yield LiveServer(url=url, pid=process.pid)


@contextlib.contextmanager
def _stopping(process: "subprocess.Popen[bytes]") -> Iterator[None]:
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(url: str, process: "subprocess.Popen[bytes]") -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    with httpx.Client(timeout=1.0) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the server exited with {process.returncode}")
            try:
                if client.get(f"{url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: not healthy within {STARTUP_SECONDS:g} s")
            time.sleep(0.05)  # the poll interval, not synchronisation: the loop has a deadline


def child_pids(pid: int) -> list[int]:
    """Live or zombie children of process ``pid`` (a /proc scan, Linux only)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited while we looked
            continue
        # "pid (comm) state ppid …": comm may hold spaces and ")", so split after the last ")"
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            children.append(int(entry.name))
    return children


def wait_until(condition: Callable[[], bool], *, seconds: float = 10.0, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {seconds:g} s: {what or condition}")
        time.sleep(0.02)
