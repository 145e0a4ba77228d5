"""The Dockerfile installs what `make` installs (`uv sync --locked`) and builds sound images."""

import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testkit import compose as stack

UV = stack.ROOT / ".tools" / "bin" / "uv"
TARGETS = ("gateway", "transcoder")


@pytest.fixture(scope="module")
def stages() -> dict[str, stack.Stage]:
    return stack.dockerfile_stages()


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = stack.load()["services"]
    return found


def uv_sync_command(stages: dict[str, stack.Stage]) -> list[str]:
    """The ``uv sync ...`` the Dockerfile runs (``RUN --mount=... uv sync ...``)."""
    runs = [run for stage in stages.values() for run in stage.all("RUN") if " uv sync " in run]
    assert len(runs) == 1, f"one install step, found {runs}"
    words = shlex.split(runs[0])
    return words[words.index("uv") :]


# --- one source of truth for dependencies ---------------------------------------------------------


def test_install_step_is_uv_sync_locked_from_the_lock_file_alone(
    stages: dict[str, stack.Stage],
) -> None:
    builder = stages["builder"]
    sync = uv_sync_command(stages)
    assert sync[:2] == ["uv", "sync"]
    assert "--locked" in sync
    assert "--no-dev" in sync
    # The lock file and the project file are copied, then synced, before any code: a code change
    # reuses the cached dependency layer.
    order = [f"{keyword} {arguments}" for keyword, arguments in builder.instructions]
    copy_at = order.index("COPY pyproject.toml uv.lock ./")
    sync_at = next(i for i, line in enumerate(order) if " uv sync " in line)
    assert copy_at < sync_at
    assert [line for line in order if line.startswith("COPY")] == [order[copy_at]]


def test_makefile_installs_with_the_same_uv_sync_locked() -> None:
    assert "$(UV) sync --locked" in stack.MAKEFILE.read_text()


def test_images_use_the_makefiles_uv_version(stages: dict[str, stack.Stage]) -> None:
    arguments = dict(arg.partition("=")[::2] for arg in stages["builder"].all("ARG"))
    assert arguments["UV_VERSION"] == stack.makefile_variable("UV_VERSION")
    assert any("uv==${UV_VERSION}" in run for run in stages["builder"].all("RUN"))


@pytest.mark.skipif(not UV.exists(), reason="make installs uv into .tools/ before the tests")
def test_images_install_step_resolves_from_uv_lock(
    stages: dict[str, stack.Stage], tmp_path: Path
) -> None:
    # The Dockerfile's own command, in a folder holding only what the image's build context gives
    # it at that step; only the interpreter differs (the image's python3 is this one's version).
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(stack.ROOT / name, tmp_path / name)
    sync = uv_sync_command(stages)
    sync[sync.index("--python") + 1] = sys.executable
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv"),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_OFFLINE": "1",
    }
    result = subprocess.run(
        [str(UV), *sync[1:], "--dry-run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    installs = result.stderr + result.stdout
    assert "+ uvicorn==" in installs
    assert "+ alembic==" in installs
    assert "+ pytest==" not in installs  # --no-dev


# --- runtime images -------------------------------------------------------------------------------


def test_base_images_are_pinned_slim_python(stages: dict[str, stack.Stage]) -> None:
    external = {stage.base for stage in stages.values() if stage.base not in stages}
    assert len(external) == 1
    (base,) = external
    tag = stack.image_tag(base) or ""
    assert base.startswith("python:3.11"), base
    assert "-slim" in tag, base
    assert tag != "latest"


@pytest.mark.parametrize("target", TARGETS)
def test_runtime_image_runs_as_a_non_root_user(stages: dict[str, stack.Stage], target: str) -> None:
    user = stages[target].last("USER")
    assert user.split(":")[0] not in {"root", "0"}, user


@pytest.mark.parametrize("target", TARGETS)
def test_image_command_is_exec_form_and_matches_compose(
    stages: dict[str, stack.Stage], services: dict[str, dict[str, Any]], target: str
) -> None:
    command = json.loads(stages[target].last("CMD"))
    assert command == stack.command(services[target])


@pytest.mark.parametrize("target", TARGETS)
def test_image_healthcheck_is_a_python_one_liner_like_compose(
    stages: dict[str, stack.Stage], services: dict[str, dict[str, Any]], target: str
) -> None:
    healthcheck = stages[target].last("HEALTHCHECK")
    exec_form = json.loads(healthcheck[healthcheck.index("CMD ") + 4 :])
    assert exec_form[:2] == ["python", "-c"]
    assert ["CMD", *exec_form] == services[target]["healthcheck"]["test"]
    assert stages[target].last("EXPOSE") == services[target]["expose"][0]


def test_runtime_images_take_the_virtualenv_from_the_builder(
    stages: dict[str, stack.Stage],
) -> None:
    for target in TARGETS:
        copies = stages[target].all("COPY")
        assert "--from=builder /app/.venv /app/.venv" in copies, target
        assert stages[target].base == "base"  # no uv, no build tools in the runtime image


def test_transcoder_image_has_debian_ffmpeg_without_recommends(
    stages: dict[str, stack.Stage],
) -> None:
    (install,) = [run for run in stages["transcoder"].all("RUN") if "apt-get install" in run]
    assert "--no-install-recommends ffmpeg" in install
    assert "rm -rf /var/lib/apt/lists/*" in install
    assert "ffmpeg" not in " ".join(stages["gateway"].all("RUN"))


def test_images_copy_what_their_commands_need(stages: dict[str, stack.Stage]) -> None:
    assert "alembic.ini ./" in stages["gateway"].all("COPY")  # the migrate service's command
    assert "gateway ./gateway" in stages["gateway"].all("COPY")
    assert "transcoder ./transcoder" in stages["transcoder"].all("COPY")
    for target in TARGETS:  # the logging, request-id and HTTP-metrics code both services import
        assert "servicekit ./servicekit" in stages[target].all("COPY"), target


# --- build context --------------------------------------------------------------------------------


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/").removeprefix("**/")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.rsplit("/", 1)[-1], pattern):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_build_context() -> None:
    patterns = [
        line.strip()
        for line in stack.DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (".venv", ".tools", "var", ".git", ".env", ".pytest_cache", ".mypy_cache"):
        assert _ignored(path, patterns), f"{path} would be sent to the Docker daemon"
    assert _ignored("gateway/__pycache__", patterns)
    for path in ("pyproject.toml", "uv.lock", "alembic.ini", "gateway", "transcoder", "servicekit"):
        assert not _ignored(path, patterns), f"the images need {path}"
