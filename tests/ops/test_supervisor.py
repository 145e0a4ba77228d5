"""`make run`'s supervisor with real processes and real signals: the stack of infra/run-local.sh
(SQLite + a folder) with its programs killed and stopped, and the supervisor on tiny programs of
the tests' own for the back-off, the process groups and the grace period."""

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from testkit.live import free_port, wait_until
from testkit.procfs import child_pids, is_running, process_stats
from testkit.wavcorpus import ffmpeg_exe, pcm

ROOT = Path(__file__).resolve().parents[2]
WAV = pcm(0.3, 8000, 1)
SERVER_GRACE_SECONDS = 5  # SHUTDOWN_GRACE_SECONDS of the stacks here: the supervisor waits 10 s
STARTUP_SECONDS = 60.0
HEAL_SECONDS = 10.0  # back-off (0.5 s) + a server's start, with room for a loaded machine


# --- looking at process trees and the supervisor's log ---------------------------------------


def tree(pid: int) -> dict[int, int]:
    """{pid: process group} of ``pid`` and every descendant."""
    stats = dict(process_stats())
    members = {pid: int(stats[pid][2])} if pid in stats else {}
    grown = True
    while grown:
        grown = False
        for member, fields in stats.items():
            if member not in members and int(fields[1]) in members:
                members[member] = int(fields[2])
                grown = True
    return members


def still_running(members: dict[int, int]) -> list[int]:
    """Live processes of a tree seen before: its pids, or anything else in its process groups."""
    groups = set(members.values())
    return [
        pid
        for pid, fields in process_stats()
        if (pid in members or int(fields[2]) in groups) and fields[0] != "Z"
    ]


def restarts(log: Path) -> list[dict[str, Any]]:
    """The supervisor's restart lines in ``log`` (JSON lines: stderr is not a terminal)."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if "restart_in_seconds" in line]


def stop(process: "subprocess.Popen[bytes]", grace_seconds: float) -> None:
    """End a supervisor and all under it, whatever state a test left it in."""
    members = tree(process.pid)
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace_seconds + 5)
    for group in set(members.values()):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    process.wait()


# --- the stack of `make run` -------------------------------------------------------------------


@dataclass(frozen=True)
class LocalStack:
    process: "subprocess.Popen[bytes]"  # infra/run-local.sh, which became the supervisor
    gateway_url: str
    transcoder_url: str
    log: Path

    def pid_of(self, program: str) -> int | None:
        """The live child of the supervisor that serves ``program`` ("gateway", "transcoder")."""
        app = f"{program}.main:create_app".encode()
        pids = [pid for pid in child_pids(self.process.pid) if app in _cmdline(pid)]
        assert len(pids) <= 1, pids
        return pids[0] if pids else None

    def answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"run-local.sh exited with {self.process.returncode}")
        return _healthy(self.gateway_url) and _healthy(self.transcoder_url)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def local_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment `make run` gets, on a throwaway SQLite file and objects folder."""
    env = {key: value for key, value in os.environ.items() if key != "TRANSCODER_URL"}
    return {
        **env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "DATABASE_URL": f"sqlite:///{tmp_path}/riffle.db",
        "STORAGE_URL": f"file://{tmp_path}/objects",
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "TRANSCODER_PORT": str(free_port()),
        "SHUTDOWN_GRACE_SECONDS": str(SERVER_GRACE_SECONDS),
        **settings,
    }


@contextlib.contextmanager
def local_stack(tmp_path: Path, **settings: str) -> Iterator[LocalStack]:
    """infra/run-local.sh in a session of its own (as a terminal runs it), once both answer."""
    env = local_env(tmp_path, **settings)
    log = tmp_path / "run-local.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [str(ROOT / "infra" / "run-local.sh")],
            env=env,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
        )
    stack = LocalStack(
        process=process,
        gateway_url=f"http://127.0.0.1:{env['PORT']}",
        transcoder_url=f"http://127.0.0.1:{env['TRANSCODER_PORT']}",
        log=log,
    )
    try:
        wait_until(stack.answers, seconds=STARTUP_SECONDS, what="the gateway and transcoder answer")
        yield stack
    finally:
        stop(process, SERVER_GRACE_SECONDS + 5)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with local_stack(tmp_path) as started:
        yield started


def new_user(client: httpx.Client) -> dict[str, str]:
    response = client.post("/users", json={"name": "supervised"})
    assert response.status_code == 201, response.text
    user: dict[str, str] = response.json()
    return user


def upload(client: httpx.Client, user: dict[str, str]) -> httpx.Response:
    fields = {"user": user["id"], "token": user["token"]}
    return client.post("/record", data=fields, files={"file": ("take.wav", WAV, "audio/wav")})


def test_transcoder_killed_uploads_are_503_until_it_is_restarted_then_201(
    stack: LocalStack, record_property: Any
) -> None:
    with httpx.Client(base_url=stack.gateway_url, timeout=60) as client:
        user = new_user(client)
        assert upload(client, user).status_code == 201
        gateway, transcoder = stack.pid_of("gateway"), stack.pid_of("transcoder")
        assert gateway is not None
        assert transcoder is not None

        os.kill(transcoder, signal.SIGKILL)
        killed_at = time.monotonic()
        statuses: list[int] = []

        def healed() -> bool:
            response = upload(client, user)  # a refused connection raises: the gateway stays up
            statuses.append(response.status_code)
            if response.status_code == 503:
                assert int(response.headers["Retry-After"]) > 0
                return False
            assert response.status_code == 201, response.text
            return True

        wait_until(healed, seconds=HEAL_SECONDS, what="an upload answers 201 again")
        heal_seconds = time.monotonic() - killed_at

    record_property("heal_seconds", round(heal_seconds, 2))
    print(f"healed {heal_seconds:.2f} s after the SIGKILL; {statuses.count(503)} uploads got 503")
    assert statuses[0] == 503  # the first upload after the kill found it down
    assert stack.pid_of("gateway") == gateway
    assert stack.pid_of("transcoder") not in (None, transcoder)
    [restart] = restarts(stack.log)
    assert restart["program"] == "transcoder"
    assert restart["exit"] == "killed by SIGKILL"
    assert restart["restart_in_seconds"] == 0.5


def test_gateway_killed_is_restarted_and_answers_again(stack: LocalStack) -> None:
    gateway, transcoder = stack.pid_of("gateway"), stack.pid_of("transcoder")
    assert gateway is not None

    os.kill(gateway, signal.SIGKILL)
    wait_until(
        lambda: stack.pid_of("gateway") not in (None, gateway) and _healthy(stack.gateway_url),
        seconds=HEAL_SECONDS,
        what="a new gateway answers",
    )

    assert stack.pid_of("transcoder") == transcoder
    with httpx.Client(base_url=stack.gateway_url, timeout=60) as client:
        assert upload(client, new_user(client)).status_code == 201
    [restart] = restarts(stack.log)
    assert (restart["program"], restart["exit"]) == ("gateway", "killed by SIGKILL")


def test_ctrl_c_lets_the_upload_in_flight_finish_then_leaves_no_process(tmp_path: Path) -> None:
    # An ffmpeg that takes a second to start: the SIGINT lands in the middle of the encode.
    slow_ffmpeg = tmp_path / "ffmpeg"
    slow_ffmpeg.write_text(f'#!/bin/sh\nsleep 1\nexec "{ffmpeg_exe()}" "$@"\n')
    slow_ffmpeg.chmod(0o755)
    with (
        local_stack(tmp_path, FFMPEG_PATH=str(slow_ffmpeg), ENCODE_IN_PROCESS="false") as stack,
        httpx.Client(base_url=stack.gateway_url, timeout=60) as client,
        ThreadPoolExecutor(1) as pool,
    ):
        user = new_user(client)
        transcoder = stack.pid_of("transcoder")
        assert transcoder is not None
        in_flight = pool.submit(upload, client, user)
        wait_until(lambda: child_pids(transcoder) != [], what="the encode has started")
        members = tree(stack.process.pid)
        assert len(members) >= 4  # supervisor, gateway, transcoder, the encoder

        os.killpg(stack.process.pid, signal.SIGINT)  # what Ctrl-C sends: the terminal's group
        asked_at = time.monotonic()
        returncode = stack.process.wait(SERVER_GRACE_SECONDS + 5)
        stopped_seconds = time.monotonic() - asked_at

        assert in_flight.result().status_code == 201
    assert returncode == 0
    assert stopped_seconds < SERVER_GRACE_SECONDS
    assert still_running(members) == []
    assert restarts(stack.log) == []


def test_a_failed_migration_fails_make_run_with_its_message(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder-not-a-database"
    folder.mkdir()
    env = local_env(tmp_path, DATABASE_URL=f"sqlite:///{folder}")
    process = subprocess.Popen(
        [str(ROOT / "infra" / "run-local.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=STARTUP_SECONDS)
    finally:
        stop(process, SERVER_GRACE_SECONDS + 5)  # should it have gone on to serve
    assert process.returncode != 0
    assert b"unable to open database file" in stderr
    assert b"riffle: gateway on" not in stdout  # the supervisor never started


# --- the supervisor on programs of the tests' own ----------------------------------------------


@dataclass(frozen=True)
class Supervised:
    process: "subprocess.Popen[bytes]"
    log: Path

    def children(self) -> list[int]:
        return [pid for pid in child_pids(self.process.pid) if is_running(pid)]


@contextlib.contextmanager
def supervised(
    tmp_path: Path, *programs: tuple[str, str], grace_seconds: float = 2.0, **backoff: float
) -> Iterator[Supervised]:
    """``python -m tests.ops.supervised`` on (name, Python source) programs."""
    spec = {
        "grace_seconds": grace_seconds,
        "backoff": {"initial": 0.1, "maximum": 0.4, "reset_after": 60.0, **backoff},
        "programs": [
            {"name": name, "argv": [sys.executable, "-c", code]} for name, code in programs
        ],
    }
    log = tmp_path / "supervisor.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.ops.supervised", json.dumps(spec)],
            cwd=ROOT,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
        )
    try:
        yield Supervised(process, log)
    finally:
        stop(process, grace_seconds)


def test_a_program_that_keeps_exiting_is_restarted_with_doubling_delays(tmp_path: Path) -> None:
    with supervised(tmp_path, ("crasher", "raise SystemExit(3)")) as supervisor:
        wait_until(lambda: len(restarts(supervisor.log)) >= 5, what="five restarts")
        supervisor.process.terminate()
        assert supervisor.process.wait(10) == 0

    lines = restarts(supervisor.log)
    assert [line["restart_in_seconds"] for line in lines[:5]] == [0.1, 0.2, 0.4, 0.4, 0.4]
    assert {(line["program"], line["exit"]) for line in lines} == {("crasher", "exited with 3")}
    moments = [datetime.fromisoformat(line["ts"].replace("Z", "+00:00")) for line in lines[:5]]
    waited = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(moments)]
    assert all(
        seconds >= delay - 0.002
        for seconds, delay in zip(waited, [0.1, 0.2, 0.4, 0.4], strict=True)
    ), waited  # really waited (log timestamps are to the millisecond)


def test_a_run_that_lasts_starts_the_backoff_over(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.touch()
    # Runs 1, 2 and 4 exit at once; run 3 stays up longer than reset_after.
    code = (
        f"import pathlib, time; runs = pathlib.Path({str(runs)!r})\n"
        "runs.write_text(runs.read_text() + 'x')\n"
        "if len(runs.read_text()) == 3: time.sleep(0.6)\n"
        "raise SystemExit(1)"
    )
    with supervised(tmp_path, ("flaky", code), reset_after=0.5) as supervisor:
        wait_until(lambda: len(restarts(supervisor.log)) >= 4, what="four restarts")

    delays = [line["restart_in_seconds"] for line in restarts(supervisor.log)[:4]]
    assert delays == [0.1, 0.2, 0.1, 0.2]


def test_what_a_program_started_dies_with_it_and_it_is_restarted(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)"
    )
    with supervised(tmp_path, ("parent", code)) as supervisor:
        wait_until(pid_file.exists, what="the grandchild started")
        wait_until(lambda: pid_file.read_text() != "", what="its pid written")
        grandchild = int(pid_file.read_text())
        [parent] = supervisor.children()
        pid_file.unlink()

        os.kill(parent, signal.SIGKILL)
        wait_until(lambda: not is_running(grandchild), what="the grandchild ended with its parent")
        wait_until(pid_file.exists, what="the program started again")
        assert supervisor.children() != [parent]


def deaf_to_sigterm(folder: Path) -> str:
    """A program that notes SIGTERM in ``folder``/asked and goes on; ``folder``/ready once up."""
    return (
        "import pathlib, signal, time\n"
        f"folder = pathlib.Path({str(folder)!r})\n"
        "signal.signal(signal.SIGTERM, lambda *_: (folder / 'asked').touch())\n"
        "(folder / 'ready').touch()\n"
        "time.sleep(60)"
    )


def test_a_program_deaf_to_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    programs = [("deaf", deaf_to_sigterm(tmp_path)), ("polite", "import time; time.sleep(60)")]
    with supervised(tmp_path, *programs, grace_seconds=1.0) as supervisor:
        wait_until((tmp_path / "ready").exists, what="the deaf program started")
        members = tree(supervisor.process.pid)
        supervisor.process.send_signal(signal.SIGTERM)
        asked_at = time.monotonic()
        assert supervisor.process.wait(10) == 1  # not a clean stop
        assert 1.0 <= time.monotonic() - asked_at < 5.0
    assert (tmp_path / "asked").exists()
    assert still_running(members) == []
    assert "deaf still running; killing it" in supervisor.log.read_text()


def test_a_second_ctrl_c_kills_without_waiting_for_the_grace(tmp_path: Path) -> None:
    with supervised(
        tmp_path, ("deaf", deaf_to_sigterm(tmp_path)), grace_seconds=60.0
    ) as supervisor:
        wait_until((tmp_path / "ready").exists, what="the deaf program started")
        members = tree(supervisor.process.pid)
        supervisor.process.send_signal(signal.SIGINT)
        wait_until((tmp_path / "asked").exists, what="SIGTERM forwarded")
        supervisor.process.send_signal(signal.SIGINT)
        assert supervisor.process.wait(10) == 1
    assert still_running(members) == []
