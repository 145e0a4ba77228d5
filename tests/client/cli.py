"""Run the ``riffle`` console script as a person or a script would: a real process, its own
XDG folders (config, unfinished uploads), no RIFFLE_* variables unless the test gives them."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

RIFFLE = Path(sys.executable).with_name("riffle")


@dataclass(frozen=True)
class Home:
    """A user's home for the client: ``XDG_CONFIG_HOME`` and ``XDG_STATE_HOME`` in it."""

    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / "config" / "riffle" / "config.toml"

    @property
    def state_file(self) -> Path:
        return self.root / "state" / "riffle" / "uploads.json"

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("RIFFLE_")}
        return {
            **base,
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_STATE_HOME": str(self.root / "state"),
            "COLUMNS": "120",
            **extra,
        }

    def run(
        self, *args: str, cwd: Path | None = None, **env: str
    ) -> "subprocess.CompletedProcess[str]":
        return subprocess.run(
            [str(RIFFLE), *args],
            env=self.env(**env),
            cwd=cwd or self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
