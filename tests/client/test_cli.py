"""``riffle``, the command-line client, against a live gateway: every command, credentials from
the config file, the environment and flags, a resumed upload, and the exit codes."""

import base64
import stat
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from client.exits import Exit
from client.tus import UploadState, fingerprint
from testkit import wavcorpus
from testkit.gateways import Gateway, GatewayFactory
from testkit.live import free_port
from tests.client.cli import RIFFLE, Home

MAX_DURATION_SECONDS = 20


@pytest.fixture(scope="module")
def riffle(start_gateway: GatewayFactory) -> Iterator[Gateway]:
    with start_gateway("postgres+s3", MAX_DURATION_SECONDS=str(MAX_DURATION_SECONDS)) as running:
        yield running


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path)


def wav(folder: Path, name: str, seconds: float = 1.0) -> Path:
    path = folder / name
    path.write_bytes(wavcorpus.pcm(seconds, rate=8000, channels=1))
    return path


def signed_up(home: Home, riffle: Gateway) -> tuple[str, str]:
    created = home.run("--url", riffle.url, "user", "create", "Grace")
    assert created.returncode == 0, created.stderr
    saved = tomllib.loads(home.config_file.read_text())
    return saved["user"], saved["token"]


def test_help_names_every_command_and_the_exit_codes(home: Home) -> None:
    assert RIFFLE.exists(), "the console script is installed by `make` (uv sync)"
    shown = home.run("--help")
    assert shown.returncode == 0
    for command in ("user", "upload", "ls", "get", "rm", "RIFFLE_TOKEN", "Exit codes"):
        assert command in shown.stdout
    upload_help = home.run("upload", "--help")
    assert "--title" in upload_help.stdout
    assert "--bitrate" in upload_help.stdout
    assert home.run("frobnicate").returncode == Exit.USAGE


def test_user_create_upload_ls_get_rm(home: Home, riffle: Gateway, tmp_path: Path) -> None:
    created = home.run("--url", riffle.url, "user", "create", "Grace")
    assert created.returncode == 0, created.stderr
    assert "shown only this once" in created.stderr
    user_id, token = created.stdout.split()[1], created.stdout.split()[3]
    assert stat.S_IMODE(home.config_file.stat().st_mode) == 0o600
    assert tomllib.loads(home.config_file.read_text()) == {
        "url": riffle.url,
        "user": user_id,
        "token": token,
        "name": "Grace",
    }

    first, second = wav(tmp_path, "first take.wav", 2.0), wav(tmp_path, "second.wav")
    uploaded = home.run("upload", str(first), str(second), "--title", "Demo", "--bitrate", "128")
    assert uploaded.returncode == 0, uploaded.stderr
    links = uploaded.stdout.split()
    assert len(links) == 2
    assert all(link.startswith(f"{riffle.url}/record?id=") for link in links)
    assert "convert first take.wav" in uploaded.stderr
    assert not home.state_file.exists() or UploadState(home.state_file).all() == {}

    listed = home.run("ls", "--json")
    assert listed.returncode == 0, listed.stderr
    names = [line for line in listed.stdout.splitlines() if line]
    assert [httpx.Response(200, content=line).json()["original_filename"] for line in names] == [
        "second.wav",
        "first take.wav",
    ]
    table = home.run("ls")
    assert "first take.wav" in table.stdout
    record_id = httpx.URL(links[0]).params["id"]

    fetched = home.run("get", record_id, cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    mp3 = (tmp_path / "first take.mp3").read_bytes()
    assert mp3 == httpx.get(links[0]).content
    chosen = home.run("get", record_id, "-o", str(tmp_path / "chosen.mp3"))
    assert chosen.returncode == 0
    assert (tmp_path / "chosen.mp3").read_bytes() == mp3

    removed = home.run("rm", record_id)
    assert removed.returncode == 0, removed.stderr
    assert httpx.get(links[0]).status_code == 404
    assert home.run("rm", record_id).returncode == Exit.NOT_FOUND
    assert riffle.record_count(user_id) == 1


def test_credentials_from_the_environment_and_flags(
    home: Home, riffle: Gateway, tmp_path: Path
) -> None:
    user_id, token = signed_up(home, riffle)
    home.config_file.unlink()
    assert home.run("--url", riffle.url, "ls").returncode == Exit.CREDENTIALS
    by_env = home.run("ls", RIFFLE_URL=riffle.url, RIFFLE_USER=user_id, RIFFLE_TOKEN=token)
    assert by_env.returncode == 0, by_env.stderr
    by_flags = home.run("--url", riffle.url, "--user", user_id, "--token", token, "ls")
    assert by_flags.returncode == 0, by_flags.stderr
    # A flag wins over the environment.
    wrong = str(uuid.uuid4())
    rejected = home.run(
        "--token", wrong, "ls", RIFFLE_URL=riffle.url, RIFFLE_USER=user_id, RIFFLE_TOKEN=token
    )
    assert rejected.returncode == Exit.CREDENTIALS
    assert "Invalid credentials" in rejected.stderr
    assert "--user/--token" in rejected.stderr
    upload = home.run(
        "--url",
        riffle.url,
        "--user",
        user_id,
        "--token",
        wrong,
        "upload",
        str(wav(tmp_path, "a.wav")),
    )
    assert upload.returncode == Exit.CREDENTIALS


def test_rejected_files_say_why_and_exit_5(home: Home, riffle: Gateway, tmp_path: Path) -> None:
    user_id, _ = signed_up(home, riffle)
    notes = tmp_path / "notes.wav"
    notes.write_text("not audio at all, just words\n" * 3)
    long = wav(tmp_path, "long.wav", MAX_DURATION_SECONDS + 5)
    fine = wav(tmp_path, "fine.wav")
    result = home.run("upload", str(notes), str(long), str(fine))
    assert result.returncode == Exit.REJECTED  # the first failure's code
    assert "notes.wav: The file is not a WAV file" in result.stderr
    assert "long.wav: The recording is too long" in result.stderr
    assert len(result.stdout.split()) == 1  # fine.wav went through all the same
    assert riffle.record_count(user_id) == 1
    assert home.run("upload", "--bitrate", "5", str(fine)).returncode == Exit.USAGE
    assert home.run("upload", str(tmp_path / "missing.wav")).returncode == Exit.USAGE


def test_an_interrupted_upload_resumes_from_the_servers_offset(
    home: Home, riffle: Gateway, tmp_path: Path
) -> None:
    user_id, token = signed_up(home, riffle)
    path = wav(tmp_path, "session.wav", 10.0)
    data = path.read_bytes()
    half = len(data) // 2
    # What a run stopped half-way leaves: an upload with half the bytes, its URL remembered.
    auth = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    meta = ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}"
        for k, v in {"user": user_id, "filename": path.name}.items()
    )
    created = httpx.post(
        f"{riffle.url}/uploads/",
        headers={**auth, "Upload-Length": str(len(data)), "Upload-Metadata": meta},
    )
    assert created.status_code == 201
    url = created.headers["Location"]
    patched = httpx.patch(
        url,
        headers={
            **auth,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
        content=data[:half],
    )
    assert patched.status_code == 204
    UploadState(home.state_file).put(fingerprint(path, riffle.url, user_id), url)

    resumed = home.run("upload", str(path))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed at byte {half} of {len(data)}" in resumed.stderr
    assert riffle.record_count(user_id) == 1
    assert UploadState(home.state_file).all() == {}
    mp3 = httpx.get(resumed.stdout.strip())
    assert mp3.status_code == 200


def test_an_unreachable_riffle_exits_6(home: Home) -> None:
    result = home.run(
        "--url",
        f"http://127.0.0.1:{free_port()}",
        "--user",
        str(uuid.uuid4()),
        "--token",
        "t",
        "ls",
    )
    assert result.returncode == Exit.UNAVAILABLE
    assert "Cannot reach riffle" in result.stderr
