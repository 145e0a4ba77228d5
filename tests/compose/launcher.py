"""Run a compose service's own ``command`` on this machine, the way its container would.

The compose file's environment is used with its service host names swapped for the local stand-ins
(``localize``); servers keep their command and arguments except ``--host``/``--port``, which become
127.0.0.1 and a free port. ``python`` is this interpreter, whose environment `make` synced from the
same uv.lock as the images.
"""

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from testkit import compose as stack
from testkit.live import free_port, launched

# What a container has besides its compose environment: a PATH (ffmpeg, if the machine has one).
_BASE_ENV = ("PATH", "TMPDIR", "LANG")


@dataclass(frozen=True, slots=True)
class Running:
    url: str
    port: int


def localize(env: Mapping[str, str], endpoints: Mapping[str, str]) -> dict[str, str]:
    """``env`` with each URL to ``service:port`` replaced by ``endpoints["service:port"]``.

    The replacement is a whole ``scheme://netloc/path?query`` prefix (for a database, also its
    credentials and database name); the path and query of the original are kept when the
    replacement has none.
    """
    localized: dict[str, str] = {}
    for name, value in env.items():
        url = stack.urls({name: value}).get(name)
        if url is None:
            localized[name] = value
            continue
        address = f"{url.hostname}:{url.port}"
        if address not in endpoints:
            raise KeyError(f"{name}={value}: no local stand-in for {address}")
        replacement = urlsplit(endpoints[address])
        if replacement.scheme != url.scheme:
            raise ValueError(f"{name}: {url.scheme} stands in for {replacement.scheme}")
        if replacement.path or replacement.query:
            localized[name] = replacement.geturl()
        else:
            localized[name] = url._replace(netloc=replacement.netloc).geturl()
    return localized


def process_env(env: Mapping[str, str]) -> dict[str, str]:
    """A clean environment: the compose one, plus what any process needs to run here."""
    base = {name: os.environ[name] for name in _BASE_ENV if name in os.environ}
    return {**base, **env}


def local_command(arguments: list[str]) -> list[str]:
    """The compose command with ``python`` as this interpreter."""
    assert arguments[0] == "python", f"not a Python command: {arguments}"
    return [sys.executable, *arguments[1:]]


def run_once(arguments: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a one-shot service's command to completion (as ``migrate`` runs)."""
    return subprocess.run(
        local_command(arguments),
        cwd=stack.ROOT,
        env=process_env(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextlib.contextmanager
def serve(arguments: list[str], env: Mapping[str, str]) -> Iterator[Running]:
    """Start a server's compose command on 127.0.0.1 and a free port; yield when it is healthy."""
    port = free_port()
    command = local_command(arguments)
    for option, value in (("--host", "127.0.0.1"), ("--port", str(port))):
        command[command.index(option) + 1] = value
    url = f"http://127.0.0.1:{port}"
    with launched(command, url, env=process_env(env), cwd=stack.ROOT):
        yield Running(url, port)
