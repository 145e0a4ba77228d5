"""Third-party tus clients, run as their users run them: tuspy in this process, tus-js-client
under Node (installed on first use into ``.tools/node``, cached there)."""

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest
from tusclient.client import TusClient

ROOT = Path(__file__).resolve().parents[2]
NODE_PREFIX = ROOT / ".tools" / "node"
TUS_JS_CLIENT = "tus-js-client@4.3.1"
SCRIPT = Path(__file__).with_name("tus_js_upload.cjs")
CLIENT_SECONDS = 120


@dataclass(frozen=True, slots=True)
class Uploaded:
    url: str  # the upload's
    link: str  # the last answer's Link (rel="monitor", the job)
    client: str  # name and version


def tuspy_upload(
    endpoint: str, path: Path, user: dict[str, str], *, chunk_size: int, checksum: bool
) -> Uploaded:
    """Upload ``path`` with tuspy, retrying (from HEAD) after errors as its docs advise."""
    tus = TusClient(endpoint, headers={"Authorization": f"Bearer {user['token']}"})
    with path.open("rb") as stream:  # (given a path, tuspy never closes the file)
        uploader = tus.uploader(
            file_stream=stream,
            chunk_size=chunk_size,
            metadata={"user": user["id"], "filename": "take.wav"},
            upload_checksum=checksum,
            retries=5,
            retry_delay=0,
        )
        uploader.upload()
    assert uploader.url is not None
    link = uploader.request.response_headers["link"]
    return Uploaded(uploader.url, link, f"tuspy {version('tuspy')}")


def node_or_skip() -> str:
    """The ``node`` executable, after installing tus-js-client if needed; skips (fails with
    CI=true) on a machine without Node.js and npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        message = (
            "the tus-js-client test needs Node.js (18 or later) and npm on PATH, "
            "e.g. `apt-get install nodejs npm`"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    installed = NODE_PREFIX / "node_modules" / "tus-js-client" / "package.json"
    wanted = TUS_JS_CLIENT.rpartition("@")[2]
    if not installed.exists() or json.loads(installed.read_text())["version"] != wanted:
        NODE_PREFIX.mkdir(parents=True, exist_ok=True)
        command = [npm, "install", "--prefix", str(NODE_PREFIX), "--no-audit", "--no-fund"]
        subprocess.run([*command, TUS_JS_CLIENT], check=True, timeout=300, capture_output=True)
    return node


def tus_js_upload(
    node: str, endpoint: str, path: Path, user: dict[str, str], *, chunk_size: int
) -> Uploaded:
    """Upload ``path`` with tus-js-client (its stock retry rule: network errors, 409, 5xx)."""
    command = [node, str(SCRIPT), endpoint, str(path), user["id"], user["token"], str(chunk_size)]
    env = {**os.environ, "NODE_PATH": str(NODE_PREFIX / "node_modules")}
    finished = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=CLIENT_SECONDS, check=False
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    return Uploaded(result["url"], result["link"], f"tus-js-client {result['version']}")
