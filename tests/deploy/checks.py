"""The rules riffle's rendered Kubernetes manifests must keep, each a function of the objects.

Each check returns the problems it finds (empty: the rule holds), so the same functions serve the
real overlays (tests/deploy/test_wiring.py) and deliberately broken copies of them
(tests/deploy/test_checks.py, which proves each check catches what it is for).

Which settings must be set (``settings_wired``), for the server containers:
- every setting without a default;
- every setting whose default is the single-machine one (it names loopback, localhost, SQLite, a
  ``file://`` URL or a relative path) or is computed on the machine (``default_factory``, such as
  MAX_CONCURRENT_ENCODES from the CPU count, which in a container counts the node's cores);
- the connection settings whose unset value means "not configured" (``REQUIRED``);
- the shutdown contract (SHUTDOWN_DRAIN_SECONDS; JOB_WORKERS=0 on the gateway, which leaves the
  jobs to the worker tier).
Any other setting may keep its default: it is the same in every deployment. The Settings classes
are read at test time, so a new setting is judged by the same rule without editing this file.
"""

import re
from collections.abc import Callable
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

import gateway.config
import transcoder.config
from testkit.compose import image_tag, option
from tests.deploy.manifests import (
    LONG_RUNNING,
    Object,
    PodTemplate,
    command,
    describe,
    of_kind,
    pod_templates,
    selects,
    strings,
)

Check = Callable[[list[Object]], list[str]]

# What a container runs, by a piece of its command line.
ROLES = {
    "gateway.main:create_app": "gateway",
    "gateway.worker:create_app": "worker",
    "transcoder.main:create_app": "transcoder",
    "alembic upgrade head": "migrate",
    "alembic current --check-heads": "wait-for-schema",
}
SETTINGS: dict[str, type[BaseSettings]] = {
    "gateway": gateway.config.Settings,
    "worker": gateway.config.Settings,  # same image, same settings (issue 11)
    "transcoder": transcoder.config.Settings,
    "migrate": gateway.config.Settings,  # gateway/migrations/env.py reads gateway.config
    "wait-for-schema": gateway.config.Settings,
}
SERVERS = {"gateway", "worker", "transcoder"}
# Unset, these mean "not configured" rather than a value that works anywhere.
REQUIRED = {
    "gateway": {
        "DATABASE_URL",
        "STORAGE_URL",
        "S3_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "TRANSCODER_URL",
        "PUBLIC_BASE_URL",
        "SHUTDOWN_DRAIN_SECONDS",
        "JOB_WORKERS",
    },
    "transcoder": set(),
    "migrate": {"DATABASE_URL"},
}
REQUIRED["worker"] = REQUIRED["gateway"]
REQUIRED["wait-for-schema"] = REQUIRED["migrate"]
# Settings of the lead's contracts that main's Settings classes do not have yet: the manifests set
# them already. An entry is harmless once its setting lands; delete it then.
SINGLE_MACHINE_DEFAULT = re.compile(r"127\.0\.0\.1|localhost|sqlite|file:|(^|[^.])\./")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|CREDENTIAL|ACCESS_KEY|^DATABASE_URL$")
URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s@:]+:[^/\s@]+@", re.IGNORECASE)
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
FROM_SECRET = "<from a Secret>"


# --- reading the render ---------------------------------------------------------------------------


def role(container: Object) -> str | None:
    line = " ".join(command(container))
    found = [name for piece, name in ROLES.items() if piece in line]
    return found[0] if len(found) == 1 else None


def env_names(settings: type[BaseSettings]) -> dict[str, str]:
    """Environment variable name -> field name."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    return {(prefix + name).upper(): name for name in settings.model_fields}


def environment(container: Object, objects: list[Object]) -> dict[str, str]:
    """The variables a container gets: ConfigMaps by envFrom, then env (Secrets as a marker)."""
    config_maps = {item["metadata"]["name"]: item for item in of_kind(objects, "ConfigMap")}
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            data = config_maps.get(source["configMapRef"]["name"], {}).get("data", {})
            values.update({source.get("prefix", "") + key: str(v) for key, v in data.items()})
        if "secretRef" in source:
            values[f"<every key of Secret {source['secretRef']['name']}>"] = FROM_SECRET
    for variable in container.get("env", []):
        reference = variable.get("valueFrom", {})
        if "secretKeyRef" in reference:
            values[variable["name"]] = FROM_SECRET
        elif "configMapKeyRef" in reference:
            ref = reference["configMapKeyRef"]
            data = config_maps.get(ref["name"], {}).get("data", {})
            values[variable["name"]] = str(data.get(ref["key"], ""))
        else:
            values[variable["name"]] = str(variable.get("value", ""))
    return values


def _containers(objects: list[Object]) -> list[tuple[PodTemplate, Object]]:
    return [(pod, container) for pod in pod_templates(objects) for container in pod.containers()]


def _pods_by_role(objects: list[Object]) -> dict[str, list[PodTemplate]]:
    found: dict[str, list[PodTemplate]] = {}
    for pod in pod_templates(objects):
        for container in pod.containers(init=False):
            found.setdefault(role(container) or "other", []).append(pod)
    return found


def _must_be_set(name: str) -> set[str]:
    settings = SETTINGS[name]
    needed = set(REQUIRED[name])
    if name in SERVERS:
        for variable, field_name in env_names(settings).items():
            field = settings.model_fields[field_name]
            computed = field.is_required() or field.default_factory is not None
            if computed or SINGLE_MACHINE_DEFAULT.search(str(field.default)):
                needed.add(variable)
    return needed


def _validates(settings: type[BaseSettings], values: dict[str, str]) -> str | None:
    """None when the values make a valid Settings, read from nothing but these values."""

    class Isolated(settings):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings,)

    fields = env_names(settings)
    try:
        Isolated(**{fields[name]: value for name, value in values.items() if name in fields})
    except ValidationError as error:
        return str(error)
    return None


# --- the checks -----------------------------------------------------------------------------------


def settings_wired(objects: list[Object]) -> list[str]:
    """Every container of ours sets what it must, names only real settings, and validates."""
    problems: list[str] = []
    for pod, container in _containers(objects):
        where = f"{pod.name}/{container['name']}"
        name = role(container)
        if name is None:
            if str(container.get("image", "")).startswith("riffle/"):
                problems.append(f"{where}: runs {command(container)}, none of riffle's commands")
            continue
        settings, env = SETTINGS[name], environment(container, objects)
        known = env_names(settings).keys()
        for variable in sorted(env.keys() - known):
            problems.append(f"{where}: {variable} is no setting of {settings.__module__}")
        for variable in sorted(_must_be_set(name) - env.keys()):
            problems.append(f"{where}: {variable} is not set (docs: tests/deploy/checks.py)")
        error = _validates(settings, {k: v for k, v in env.items() if v != FROM_SECRET})
        if error:
            problems.append(f"{where}: the settings do not validate: {error}")
        if name == "gateway" and env.get("JOB_WORKERS") != "0":
            problems.append(f"{where}: JOB_WORKERS must be 0, the worker tier runs the jobs")
        if name == "worker" and env.get("JOB_WORKERS") == "0":
            problems.append(f"{where}: JOB_WORKERS=0 in the worker tier runs no jobs at all")
    return problems


def shared_settings_agree(objects: list[Object]) -> list[str]:
    """A setting both services read (MAX_DURATION_SECONDS, ...) has one value everywhere."""
    shared = env_names(gateway.config.Settings).keys() & env_names(transcoder.config.Settings)
    seen: dict[str, dict[str, str]] = {}
    for pod, container in _containers(objects):
        if role(container) in SERVERS:
            for variable, value in environment(container, objects).items():
                if variable in shared:
                    seen.setdefault(variable, {})[f"{pod.name}/{container['name']}"] = value
    return [
        f"{variable} differs: {where}"
        for variable, where in sorted(seen.items())
        if len(set(where.values())) > 1
    ]


def secrets_referenced(objects: list[Object]) -> list[str]:
    """No credential in the manifests: no Secret objects, secret settings only by secretKeyRef."""
    secret_fields = {
        variable
        for settings in (gateway.config.Settings, transcoder.config.Settings)
        for variable, field_name in env_names(settings).items()
        if SecretStr in (getattr(settings.model_fields[field_name].annotation, "__args__", ()))
        or settings.model_fields[field_name].annotation is SecretStr
    }
    problems = [
        f"{describe(item)}: a Secret in the repository" for item in of_kind(objects, "Secret")
    ]
    for pod, container in _containers(objects):
        for variable in container.get("env", []):
            name = variable["name"]
            if (SECRET_NAME.search(name) or name in secret_fields) and "value" in variable:
                problems.append(f"{pod.name}/{container['name']}: {name} is a literal value")
    for config_map in of_kind(objects, "ConfigMap"):
        for key in config_map.get("data", {}):
            if SECRET_NAME.search(key) or key in secret_fields:
                problems.append(f"{describe(config_map)}: {key} belongs in a Secret")
    for item in objects:
        for path, value in strings(item):
            if URL_CREDENTIALS.search(value):
                problems.append(f"{describe(item)}: {path} holds a URL with a password")
    return problems


def images_pinned(objects: list[Object]) -> list[str]:
    """Every image (containers and the operators' images) names a version or a digest."""
    problems: list[str] = []
    for item in objects:
        for path, value in strings(item):
            if path.rsplit(".", 1)[-1] not in {"image", "imageName"}:
                continue
            tag = image_tag(value)
            if DIGEST.search(value):
                continue
            if tag is None:
                problems.append(f"{describe(item)}: {path}={value} has no tag")
            elif tag == "latest" or not re.search(r"\d", tag):
                problems.append(f"{describe(item)}: {path}={value} is a moving tag")
    return problems


def probes(objects: list[Object]) -> list[str]:
    """Long-running containers have liveness and readiness probes, on ports they listen on."""
    readiness_path = {"gateway": "/readyz", "worker": "/readyz", "transcoder": "/healthz"}
    problems: list[str] = []
    for pod in pod_templates(objects):
        if pod.kind not in LONG_RUNNING:
            continue
        for container in pod.containers(init=False):
            where = f"{pod.name}/{container['name']}"
            ports = {str(p.get("name")) for p in container.get("ports", [])}
            ports |= {str(p["containerPort"]) for p in container.get("ports", [])}
            for kind in ("livenessProbe", "readinessProbe"):
                probe = container.get(kind)
                if not probe:
                    problems.append(f"{where}: no {kind}")
                    continue
                http = probe.get("httpGet")
                if http and str(http.get("port")) not in ports:
                    problems.append(f"{where}: {kind} asks port {http.get('port')}, not open")
            name = role(container)
            if name in readiness_path:
                listens = option(command(container), "--port")
                if listens not in ports:
                    problems.append(f"{where}: listens on {listens}, declares {sorted(ports)}")
                path = container.get("readinessProbe", {}).get("httpGet", {}).get("path")
                if path != readiness_path[name]:
                    problems.append(f"{where}: readiness asks {path}, not {readiness_path[name]}")
                if container.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
                    problems.append(f"{where}: liveness must ask /healthz (no dependency checks)")
    return problems


def resources_bounded(objects: list[Object]) -> list[str]:
    """Every container, init containers too, requests and limits CPU and memory."""
    problems: list[str] = []
    for pod, container in _containers(objects):
        declared = container.get("resources", {})
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in declared.get(kind, {}):
                    problems.append(f"{pod.name}/{container['name']}: no {kind}.{resource}")
    return problems


def runs_unprivileged(objects: list[Object]) -> list[str]:
    """The "restricted" Pod Security Standard: non-root, no escalation, no capabilities."""
    problems: list[str] = []
    for pod in pod_templates(objects):
        pod_context: Object = pod.spec.get("securityContext", {})
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.spec.get(host):
                problems.append(f"{pod.name}: {host}")
        for container in pod.containers():
            where, context = f"{pod.name}/{container['name']}", container.get("securityContext", {})
            # A container's own securityContext wins over the pod's for the keys both have.
            setting = {**pod_context, **context}.get
            if setting("runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if setting("runAsUser") == 0:
                problems.append(f"{where}: runs as uid 0")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if context.get("privileged"):
                problems.append(f"{where}: privileged")
            if "ALL" not in context.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities not dropped (drop: [ALL])")
            if (setting("seccompProfile") or {}).get("type") not in {"RuntimeDefault", "Localhost"}:
                problems.append(f"{where}: no seccompProfile RuntimeDefault")
    return problems


def transcoder_internal(objects: list[Object]) -> list[str]:
    """The transcoder: ClusterIP only, no route from outside, reached only by gateway and worker."""
    pods = _pods_by_role(objects)
    transcoder_labels = [pod.labels for pod in pods.get("transcoder", [])]
    if not transcoder_labels:
        return ["no transcoder Deployment in the render"]
    problems: list[str] = []

    def reaches_transcoder(service: Object) -> bool:
        selector = service.get("spec", {}).get("selector")
        return selector is not None and any(
            selects(selector, labels) for labels in transcoder_labels
        )

    services = {item["metadata"]["name"]: item for item in of_kind(objects, "Service")}
    internal = {name for name, service in services.items() if reaches_transcoder(service)}
    for name in sorted(internal):
        spec = services[name]["spec"]
        if spec.get("type", "ClusterIP") != "ClusterIP":
            problems.append(f"Service/{name}: type {spec['type']} exposes the transcoder")
        if spec.get("externalIPs"):
            problems.append(f"Service/{name}: externalIPs expose the transcoder")
    for route in (*of_kind(objects, "Ingress"), *of_kind(objects, "HTTPRoute")):
        backends = {
            value for path, value in strings(route.get("spec", {})) if path.endswith("name")
        }
        for name in sorted(backends & internal):
            problems.append(f"{describe(route)}: routes to Service/{name}, the transcoder")
    for pod in pods["transcoder"]:
        if pod.spec.get("hostNetwork") or any(
            "hostPort" in port for c in pod.containers() for port in c.get("ports", [])
        ):
            problems.append(f"{pod.name}: a host port exposes the transcoder")
    problems += _network_policy(objects, pods)
    return problems


def _network_policy(objects: list[Object], pods: dict[str, list[PodTemplate]]) -> list[str]:
    allowed = {pod.name for name in ("gateway", "worker") for pod in pods.get(name, [])}
    every_pod = pod_templates(objects)
    policies = [
        item
        for item in of_kind(objects, "NetworkPolicy")
        if any(selects(item["spec"].get("podSelector", {}), p.labels) for p in pods["transcoder"])
    ]
    if not [p for p in policies if "Ingress" in p["spec"].get("policyTypes", ["Ingress"])]:
        return ["no NetworkPolicy restricts who reaches the transcoder"]
    problems: list[str] = []
    admitted: set[str] = set()
    for policy in policies:  # policies add up: any one of them may open the door
        for index, rule in enumerate(policy["spec"].get("ingress", [])):
            where = f"{describe(policy)} ingress[{index}]"
            if not rule.get("from"):
                problems.append(f"{where}: no `from`, admits every source")
                continue
            if not rule.get("ports"):
                problems.append(f"{where}: no `ports`, admits every port")
            for peer in rule["from"]:
                if "ipBlock" in peer or "namespaceSelector" in peer or "podSelector" not in peer:
                    problems.append(f"{where}: admits sources beyond this namespace's pods")
                    continue
                matched = {p.name for p in every_pod if selects(peer["podSelector"], p.labels)}
                if matched - allowed:
                    problems.append(f"{where}: admits {sorted(matched - allowed)}, not only ours")
                admitted |= matched
    if allowed - admitted:
        problems.append(f"the NetworkPolicy shuts out {sorted(allowed - admitted)}")
    return problems


def _pre_stop_seconds(container: Object) -> float:
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    if "sleep" in pre_stop:
        return float(pre_stop["sleep"]["seconds"])
    arguments = pre_stop.get("exec", {}).get("command", [])
    if arguments[:1] == ["sleep"] and len(arguments) == 2:
        return float(arguments[1])
    return 0.0


def graceful_shutdown(objects: list[Object]) -> list[str]:
    """preStop + drain + uvicorn's graceful timeout fit in terminationGracePeriodSeconds."""
    problems: list[str] = []
    for pod in pod_templates(objects):
        grace = float(pod.spec.get("terminationGracePeriodSeconds", 30))
        for container in pod.containers(init=False):
            if role(container) not in SERVERS:
                continue
            where = f"{pod.name}/{container['name']}"
            pre_stop = _pre_stop_seconds(container)
            if not pre_stop:
                problems.append(f"{where}: no preStop sleep (requests would reach a closing pod)")
            graceful = option(command(container), "--timeout-graceful-shutdown")
            if graceful is None:
                problems.append(f"{where}: no --timeout-graceful-shutdown")
            drain = float(environment(container, objects).get("SHUTDOWN_DRAIN_SECONDS", 0))
            needed = pre_stop + drain + float(graceful or 0)
            if grace < needed:
                problems.append(
                    f"{where}: terminationGracePeriodSeconds {grace:g} < preStop {pre_stop:g}"
                    f" + drain {drain:g} + graceful {graceful}: the pod is killed mid-shutdown"
                )
    return problems


def public_address(objects: list[Object]) -> list[str]:
    """PUBLIC_BASE_URL is a host the Ingress routes; TRANSCODER_URL names the transcoder Service."""
    pods = _pods_by_role(objects)
    problems: list[str] = []
    services = {item["metadata"]["name"]: item for item in of_kind(objects, "Service")}
    hosts = {
        rule.get("host")
        for ingress in of_kind(objects, "Ingress")
        for rule in ingress["spec"].get("rules", [])
    }
    for pod, container in _containers(objects):
        if role(container) not in {"gateway", "worker"}:
            continue
        env, where = environment(container, objects), f"{pod.name}/{container['name']}"
        public = urlsplit(env.get("PUBLIC_BASE_URL", ""))
        if public.hostname not in hosts:
            problems.append(f"{where}: PUBLIC_BASE_URL host {public.hostname} has no Ingress rule")
        target = urlsplit(env.get("TRANSCODER_URL", ""))
        service = services.get(str(target.hostname))
        if service is None:
            problems.append(f"{where}: TRANSCODER_URL names no Service: {target.geturl()}")
            continue
        if not any(selects(service["spec"].get("selector"), p.labels) for p in pods["transcoder"]):
            problems.append(f"{where}: TRANSCODER_URL's Service selects no transcoder pod")
        if target.port not in {port["port"] for port in service["spec"]["ports"]}:
            problems.append(f"{where}: TRANSCODER_URL port {target.port} is not on the Service")
    return problems


def scaling_and_disruption(objects: list[Object]) -> list[str]:
    """Each server tier: an HPA that owns its replica count, and a PodDisruptionBudget."""
    problems: list[str] = []
    autoscaled = {
        item["spec"]["scaleTargetRef"]["name"]
        for item in of_kind(objects, "HorizontalPodAutoscaler")
        if item["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    }
    budgets = [item["spec"].get("selector") for item in of_kind(objects, "PodDisruptionBudget")]
    for name in sorted(SERVERS):
        for pod in _pods_by_role(objects).get(name, []):
            deployment = pod.workload["metadata"]["name"]
            if deployment not in autoscaled:
                problems.append(f"{pod.name}: no HorizontalPodAutoscaler")
            elif "replicas" in pod.workload["spec"]:
                problems.append(f"{pod.name}: sets replicas, which each apply resets under its HPA")
            if not any(selects(selector, pod.labels) for selector in budgets):
                problems.append(f"{pod.name}: no PodDisruptionBudget")
    return problems


def migration_gates_serving(objects: list[Object]) -> list[str]:
    """A Job runs the migration; gateway and worker pods wait for the schema before they serve."""
    pods = _pods_by_role(objects)
    problems = [] if pods.get("migrate") else ["no Job runs `alembic upgrade head`"]
    for pod in [*pods.get("gateway", []), *pods.get("worker", [])]:
        waits = [c for c in pod.spec.get("initContainers", []) if role(c) == "wait-for-schema"]
        if not waits:
            problems.append(f"{pod.name}: may serve before the migration (no wait-for-schema)")
        images = {c["image"] for c in pod.containers()}
        if len(images) != 1:
            problems.append(
                f"{pod.name}: the schema check and the server differ in image: {images}"
            )
    return problems


def one_namespace(objects: list[Object]) -> list[str]:
    """Every namespaced object in the one namespace the overlay names (a Namespace object)."""
    namespaces = [item["metadata"]["name"] for item in of_kind(objects, "Namespace")]
    if len(namespaces) != 1:
        return [f"expected one Namespace object, found {namespaces}"]
    return [
        f"{describe(item)}: namespace {item['metadata'].get('namespace')}, not {namespaces[0]}"
        for item in objects
        if item["kind"] != "Namespace" and item["metadata"].get("namespace") != namespaces[0]
    ]


CHECKS: list[Check] = [
    settings_wired,
    shared_settings_agree,
    secrets_referenced,
    images_pinned,
    probes,
    resources_bounded,
    runs_unprivileged,
    transcoder_internal,
    graceful_shutdown,
    public_address,
    scaling_and_disruption,
    migration_gates_serving,
    one_namespace,
]
