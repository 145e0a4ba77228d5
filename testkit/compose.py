"""Read the compose stack as docker compose would: the YAML, `.env` variables, the Dockerfile.

No Docker needed. ``interpolate`` implements the Compose Specification's variable syntax
(``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``,
``${VAR?error}``, ``${VAR:+other}``, ``${VAR+other}``), enough for this repository's files.
"""

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "infra" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
MAKEFILE = ROOT / "Makefile"

_VARIABLE = re.compile(
    r"\$\$"
    r"|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


class MissingVariable(ValueError):
    """A ``${VAR:?message}`` whose variable is unset (or empty): compose refuses to start."""


@dataclass(frozen=True)
class Reference:
    """One ``${...}`` in the compose file."""

    name: str
    operator: str | None  # None, "-", ":-", "?", ":?", "+", ":+"
    argument: str

    @property
    def required(self) -> bool:
        return self.operator in {"?", ":?"}


def raw() -> dict[str, Any]:
    """docker-compose.yml as YAML, anchors and merge keys resolved, nothing interpolated."""
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def env_example() -> dict[str, str]:
    """``.env.example`` as docker compose reads a ``.env``: ``NAME=value`` lines, ``#`` comments."""
    return {name: value for name, value, _comment in env_example_entries()}


def env_example_entries() -> list[tuple[str, str, str]]:
    """(name, value, the comment lines just above it) for each variable in ``.env.example``."""
    entries: list[tuple[str, str, str]] = []
    comment: list[str] = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        stripped = line.strip()
        if not stripped:
            comment = []
        elif stripped.startswith("#"):
            comment.append(stripped.lstrip("# "))
        else:
            name, separator, value = stripped.partition("=")
            if not separator:
                raise ValueError(f".env.example: not NAME=value: {line!r}")
            entries.append((name.strip(), value.strip(), " ".join(comment)))
            comment = []
    return entries


def references(node: object = None) -> list[Reference]:
    """Every variable reference in the compose file's values."""
    found: list[Reference] = []
    for text in _strings(raw() if node is None else node):
        for match in _VARIABLE.finditer(text):
            name = match["braced"] or match["bare"]
            if name:
                found.append(Reference(name, match["op"], match["arg"] or ""))
    return found


def interpolate(node: object, env: dict[str, str]) -> Any:
    """``node`` with every string's variables substituted from ``env``, as compose does."""
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, str):
        return _VARIABLE.sub(lambda match: _substitute(match, env), node)
    return node


def load(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file as compose runs it with ``env`` as ``.env`` (default: .env.example)."""
    document: dict[str, Any] = interpolate(raw(), env_example() if env is None else env)
    return document


def _substitute(match: re.Match[str], env: dict[str, str]) -> str:
    if match[0] == "$$":
        return "$"
    name = match["braced"] or match["bare"]
    operator, argument = match["op"], match["arg"] or ""
    value = env.get(name)
    is_set, is_non_empty = value is not None, bool(value)
    present = is_non_empty if operator and operator.startswith(":") else is_set
    if operator in {"-", ":-"}:
        return value if present and value is not None else argument
    if operator in {"?", ":?"}:
        if not present or value is None:
            raise MissingVariable(f"{name}: {argument}")
        return value
    if operator in {"+", ":+"}:
        return argument if present else ""
    return value or ""


def _strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [text for value in node.values() for text in _strings(value)]
    if isinstance(node, list):
        return [text for item in node for text in _strings(item)]
    return [node] if isinstance(node, str) else []


# --- services -------------------------------------------------------------------------------------


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment`` (mapping or ``NAME=value`` list form) as a dict of strings."""
    declared = service.get("environment", {})
    if isinstance(declared, list):
        return dict(item.partition("=")[::2] for item in declared)
    return {name: "" if value is None else str(value) for name, value in declared.items()}


def command(service: dict[str, Any]) -> list[str]:
    declared = service.get("command", [])
    return shlex.split(declared) if isinstance(declared, str) else [str(part) for part in declared]


def option(arguments: list[str], name: str) -> str | None:
    """The value after ``name`` (``--port 8000``) or in ``name=value`` form."""
    for index, argument in enumerate(arguments):
        if argument == name and index + 1 < len(arguments):
            return arguments[index + 1]
        if argument.startswith(name + "="):
            return argument.partition("=")[2]
    return None


def exposed_ports(service: dict[str, Any]) -> set[int]:
    """Container ports a service offers: ``expose`` and the container side of ``ports``."""
    ports = {int(str(port).split("/")[0]) for port in service.get("expose", [])}
    for published in service.get("ports", []):
        if isinstance(published, dict):
            ports.add(int(published["target"]))
        else:
            ports.add(int(str(published).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def urls(values: dict[str, str]) -> dict[str, SplitResult]:
    """The values that are URLs naming a host (``scheme://host[:port]...``)."""
    found: dict[str, SplitResult] = {}
    for name, value in values.items():
        if "://" in value:
            url = urlsplit(value)
            # s3://<bucket> and file://<folder> name a bucket and a folder, not a host.
            if url.hostname and url.scheme not in {"s3", "file"}:
                found[name] = url
    return found


def networks(service: dict[str, Any]) -> set[str]:
    declared = service.get("networks", ["default"])
    return set(declared)


def image_tag(image: str) -> str | None:
    """The tag of ``registry/name:tag`` (None when there is none)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.partition(":")[2] or None


# --- Dockerfile -----------------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arguments for instruction, arguments in self.instructions if instruction == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"stage {self.name} has no {keyword}"
        return found[-1]


def dockerfile_stages() -> dict[str, Stage]:
    """The Dockerfile's stages by name, base images with global ``ARG`` defaults substituted."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    global_args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        instruction, arguments = instruction.upper(), " ".join(arguments.split())
        if instruction == "FROM":
            words = arguments.split()
            base = _VARIABLE.sub(lambda match: global_args.get(match["braced"] or "", ""), words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            current = stages[name] = Stage(name, base)
        elif current is None:
            if instruction == "ARG":
                key, _, default = arguments.partition("=")
                global_args[key] = default
        else:
            current.instructions.append((instruction, arguments))
    return stages


def makefile_variable(name: str) -> str:
    match = re.search(rf"^{name}\s*:?=\s*(\S+)", MAKEFILE.read_text(), re.MULTILINE)
    assert match, f"Makefile defines no {name}"
    return match[1]
