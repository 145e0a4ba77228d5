"""The real stack for fault tests: a gateway and a transcoder as live servers, each with its own
TMPDIR, reaching the transcoder, S3 and PostgreSQL through ``TcpProxy``s the test can cut.

The transcoder's "ffmpeg" is a gate in front of the real one: armed, it records that an encode
started and waits for the test to release it, so a fault can be placed in the middle of an upload.
"""

import contextlib
import dataclasses
import os
import signal
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from testkit.live import LiveServer, leftovers, running, wait_until
from testkit.procfs import child_pids, is_running
from testkit.s3 import S3Endpoint
from testkit.tcp_proxy import TcpProxy
from testkit.wavcorpus import ffmpeg_exe

GATEWAY_APP = "gateway.main:create_app"

# A gateway whose every wait is short, so that a hang costs a test seconds: each dependency call
# within 3 s, an encode within 2 s + 0.05 s per second of audio, recordings up to 100 s.
QUICK_DEPENDENCY_SECONDS = 3.0
QUICK_DEADLINE_BASE_SECONDS = 2.0
QUICK_DEADLINE_PER_AUDIO_SECOND = 0.05
QUICK_MAX_DURATION_SECONDS = 100.0
QUICK_SETTINGS = {
    "DEPENDENCY_TIMEOUT_SECONDS": str(QUICK_DEPENDENCY_SECONDS),
    "TRANSCODE_DEADLINE_BASE_SECONDS": str(QUICK_DEADLINE_BASE_SECONDS),
    "TRANSCODE_DEADLINE_PER_AUDIO_SECOND": str(QUICK_DEADLINE_PER_AUDIO_SECOND),
    "MAX_DURATION_SECONDS": str(QUICK_MAX_DURATION_SECONDS),
}

# Marks its start, then, when the gate is armed, waits for "release" (or for its parent to die,
# or a minute), and becomes the real ffmpeg with the same arguments. FAKE_FFMPEG_DELAY_SECONDS
# makes every encode that much slower.
GATED_FFMPEG = """
import os, sys, time
gate = os.environ["FAKE_FFMPEG_GATE_DIR"]
open(os.path.join(gate, "pid-%d" % os.getpid()), "w").close()
time.sleep(float(os.environ.get("FAKE_FFMPEG_DELAY_SECONDS", "0")))
if os.path.exists(os.path.join(gate, "armed")):
    parent = os.getppid()
    open(os.path.join(gate, "waiting-%d" % os.getpid()), "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(gate, "release")):
        if os.getppid() != parent or time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.02)
real = os.environ["REAL_FFMPEG"]
os.execv(real, [real, *sys.argv[1:]])
"""


@dataclass(frozen=True)
class Gate:
    """The control files of ``GATED_FFMPEG``."""

    folder: Path

    def arm(self) -> None:
        self.reset()
        (self.folder / "armed").touch()

    def release(self) -> None:
        (self.folder / "release").touch()

    def reset(self) -> None:
        for entry in self.folder.iterdir():
            if not entry.name.startswith("pid-"):
                entry.unlink()

    def waiting(self) -> bool:
        return any(entry.name.startswith("waiting-") for entry in self.folder.iterdir())

    def encoder_pids(self) -> list[int]:
        """Every encoder process ever started through the gate."""
        return [int(e.name[4:]) for e in self.folder.iterdir() if e.name.startswith("pid-")]


@dataclass(frozen=True)
class Proxies:
    """What the gateway reaches each dependency through: links the test can cut."""

    database: TcpProxy
    s3: TcpProxy
    transcoder: TcpProxy


@dataclass
class Stack:
    """The processes and proxies of one fault-test module, with views for its invariants."""

    gateway: LiveServer
    transcoder: LiveServer
    transcoder_tmp: Path
    gateway_tmp: Path
    gate: Gate
    proxies: Proxies
    database_url: str  # direct, not through the proxy
    gateway_env: dict[str, str]
    s3: S3Endpoint
    bucket: str
    _extra: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def client(self, url: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=url or self.gateway.url, timeout=60)

    def new_user(self) -> dict[str, str]:
        with self.client() as client:
            response = client.post("/users", json={"name": "fault"})
        assert response.status_code == 201, response.text
        user: dict[str, str] = response.json()
        return user

    def object_keys(self) -> set[str]:
        return set(self.s3.keys(self.bucket))

    def row_keys(self) -> set[str]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(text("SELECT object_key, peaks_key FROM records"))
                # A record owns its MP3 and the waveform peaks stored beside it.
                return {key for row in rows for key in row if key is not None}
        finally:
            engine.dispose()

    def user_keys(self, user_id: str) -> tuple[set[str], set[str]]:
        """(rows, objects) of one user."""
        prefix = f"recordings/{user_id}/"
        rows = {key for key in self.row_keys() if key.startswith(prefix)}
        return rows, {key for key in self.object_keys() if key.startswith(prefix)}

    def assert_consistent(self) -> None:
        """No row without object, no object without row, no temp file, no encoder running."""
        assert self.row_keys() == self.object_keys()
        wait_until(lambda: leftovers(self.gateway_tmp) == [], what="gateway temp files gone")
        wait_until(lambda: leftovers(self.transcoder_tmp) == [], what="transcoder temp files gone")
        wait_until(lambda: child_pids(self.transcoder.pid) == [], what="no encoder left")
        wait_until(
            lambda: not any(is_running(pid) for pid in self.gate.encoder_pids()),
            what="every encoder process ended",
        )

    def start_transcoder(self, tmp: Path, **env: str) -> LiveServer:
        """Another transcoder behind the proxy (stopped with the stack)."""
        return start_transcoder(self._extra, self.gate, self.proxies.transcoder, tmp, **env)

    def use_transcoder(self, server: LiveServer, tmp: Path) -> None:
        self.transcoder, self.transcoder_tmp = server, tmp

    @contextlib.contextmanager
    def other_transcoder(self, tmp: Path, **env: str) -> Iterator[LiveServer]:
        """Another transcoder (``env`` over the gated ffmpeg's settings) serves the gateways
        until the block ends; then the stack's own again."""
        own = self.transcoder, self.transcoder_tmp
        with contextlib.ExitStack() as cleanup:
            self.use_transcoder(
                start_transcoder(cleanup, self.gate, self.proxies.transcoder, tmp, **env), tmp
            )
            try:
                yield self.transcoder
            finally:
                self.use_transcoder(*own)
                self.proxies.transcoder.retarget(("127.0.0.1", int(own[0].url.rsplit(":", 1)[1])))

    def start_gateway(
        self, tmp: Path, *, uvicorn_args: Sequence[str] = (), **env: str
    ) -> AbstractContextManager[LiveServer]:
        """Another gateway on the same proxies, with its own TMPDIR (and ``env`` on top of the
        stack's settings)."""
        tmp.mkdir(parents=True, exist_ok=True)
        settings = {**self.gateway_env, "TMPDIR": str(tmp), **env}
        return running(GATEWAY_APP, settings, uvicorn_args=uvicorn_args)

    def through(self, gateway: LiveServer, tmp: Path) -> "Stack":
        """This stack as seen through another of its gateways: uploads go there, and
        ``assert_consistent`` looks at that gateway's TMPDIR."""
        return dataclasses.replace(self, gateway=gateway, gateway_tmp=tmp)

    def close(self) -> None:
        self._extra.close()


def start_transcoder(
    cleanup: contextlib.ExitStack, gate: Gate, proxy: TcpProxy, tmp: Path, **env: str
) -> LiveServer:
    """A transcoder with the gated ffmpeg (unless ``env`` names another), behind ``proxy``."""
    tmp.mkdir(parents=True, exist_ok=True)
    settings = {
        "TMPDIR": str(tmp),
        "FFMPEG_PATH": str(gate.folder.parent / "ffmpeg"),
        "FAKE_FFMPEG_GATE_DIR": str(gate.folder),
        "REAL_FFMPEG": ffmpeg_exe(),
        "ENCODE_IN_PROCESS": "false",  # the gate holds ffmpeg's encodes
        **env,
    }
    server = cleanup.enter_context(running("transcoder.main:create_app", settings))
    proxy.retarget(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
    return server


def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def unique_bucket() -> str:
    return f"riffle-faults-{uuid.uuid4().hex[:12]}"
