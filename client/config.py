"""Where the client's credentials come from: flags, then ``RIFFLE_URL`` / ``RIFFLE_USER`` /
``RIFFLE_TOKEN``, then the config file ``riffle user create`` writes
(``$XDG_CONFIG_HOME/riffle/config.toml``, mode 0600)."""

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/riffle`` (default ``~/.config/riffle``), per the XDG base directories."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "riffle"


def state_dir() -> Path:
    """``$XDG_STATE_HOME/riffle`` (default ``~/.local/state/riffle``): unfinished uploads."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "riffle"


def config_path() -> Path:
    return config_dir() / "config.toml"


@dataclass(frozen=True, slots=True)
class Credentials:
    url: str
    user: str | None
    token: str | None
    name: str | None = None


def load_file() -> dict[str, str]:
    path = config_path()
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        return {}
    return {key: str(value) for key, value in data.items() if isinstance(value, str)}


def resolve(url: str | None, user: str | None, token: str | None) -> Credentials:
    """Flags (already merged with the environment by the command line) over the file."""
    saved = load_file()
    return Credentials(
        url=(url or saved.get("url") or DEFAULT_URL).rstrip("/"),
        user=user or saved.get("user"),
        token=token or saved.get("token"),
        name=saved.get("name"),
    )


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped) + '"'


def save(credentials: Credentials) -> Path:
    """Write the file readable by its owner alone (it holds the token)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = [
        "# Written by `riffle user create`. The token is shown once by riffle: keep this file.",
        f"url = {_toml_string(credentials.url)}",
    ]
    for key in ("user", "token", "name"):
        value = getattr(credentials, key)
        if value:
            lines.append(f"{key} = {_toml_string(value)}")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    path.chmod(0o600)  # also when the file was there before, with looser bits
    return path
