"""The checks have teeth: each kind of mistake, made in a copy of a rendered overlay, is caught.

Each case breaks the operator overlay's render in one way and names the check that must object
and a piece of what it must say; the same check passes on the unbroken render (test_wiring.py).
"""

import copy
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.deploy import checks, manifests
from tests.deploy.manifests import Object, find


def pod_spec(objects: list[Object], kind: str, name: str) -> Object:
    spec: Object = manifests.PodTemplate(find(objects, kind, name)).spec
    return spec


def container(objects: list[Object], name: str, index: int = 0) -> Object:
    found: Object = pod_spec(objects, "Deployment", name)["containers"][index]
    return found


def gateway_settings(objects: list[Object]) -> dict[str, str]:
    config_map = next(
        item for item in manifests.of_kind(objects, "ConfigMap") if "STORAGE_URL" in item["data"]
    )
    data: dict[str, str] = config_map["data"]
    return data


def drop_readiness_probe(objects: list[Object]) -> None:
    del container(objects, "riffle-gateway")["readinessProbe"]


def drop_transcoder_liveness_probe(objects: list[Object]) -> None:
    del container(objects, "riffle-transcoder")["livenessProbe"]


def transcoder_as_load_balancer(objects: list[Object]) -> None:
    find(objects, "Service", "riffle-transcoder")["spec"]["type"] = "LoadBalancer"


def transcoder_behind_the_ingress(objects: list[Object]) -> None:
    rule = find(objects, "Ingress", "riffle-gateway")["spec"]["rules"][0]
    rule["http"]["paths"].append(
        {
            "path": "/transcode",
            "pathType": "Prefix",
            "backend": {"service": {"name": "riffle-transcoder", "port": {"number": 8001}}},
        }
    )


def transcoder_on_a_host_port(objects: list[Object]) -> None:
    container(objects, "riffle-transcoder")["ports"][0]["hostPort"] = 8001


def network_policy_open_to_every_namespace(objects: list[Object]) -> None:
    rule = find(objects, "NetworkPolicy", "riffle-transcoder")["spec"]["ingress"][0]
    rule["from"].append({"namespaceSelector": {}})


def network_policy_admits_the_migration(objects: list[Object]) -> None:
    peer = find(objects, "NetworkPolicy", "riffle-transcoder")["spec"]["ingress"][0]["from"][0]
    peer["podSelector"] = {"matchLabels": {"app.kubernetes.io/name": "riffle"}}


def second_policy_admits_everyone(objects: list[Object]) -> None:
    policy = copy.deepcopy(find(objects, "NetworkPolicy", "riffle-transcoder"))
    policy["metadata"]["name"] = "allow-all"
    policy["spec"]["ingress"] = [{}]
    objects.append(policy)


def no_network_policy(objects: list[Object]) -> None:
    objects.remove(find(objects, "NetworkPolicy", "riffle-transcoder"))


def literal_secret_in_env(objects: list[Object]) -> None:
    env = container(objects, "riffle-worker")["env"]
    for variable in env:
        if variable["name"] == "AWS_SECRET_ACCESS_KEY":
            variable.pop("valueFrom")
            variable["value"] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def database_password_in_the_config_map(objects: list[Object]) -> None:
    gateway_settings(objects)["DB"] = "postgresql://riffle:hunter2@riffle-db-rw:5432/riffle"


def secret_object_committed(objects: list[Object]) -> None:
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "riffle-s3", "namespace": "riffle"},
            "stringData": {"AWS_SECRET_ACCESS_KEY": "hunter2"},
        }
    )


def gateway_image_latest(objects: list[Object]) -> None:
    container(objects, "riffle-gateway")["image"] = "riffle/gateway:latest"


def transcoder_image_untagged(objects: list[Object]) -> None:
    container(objects, "riffle-transcoder")["image"] = "riffle/transcoder"


def postgres_image_moving_tag(objects: list[Object]) -> None:
    find(objects, "Cluster", "riffle-db")["spec"]["imageName"] = (
        "ghcr.io/cloudnative-pg/postgresql:stable"
    )


def no_memory_limit(objects: list[Object]) -> None:
    del container(objects, "riffle-transcoder")["resources"]["limits"]["memory"]


def init_container_unbounded(objects: list[Object]) -> None:
    del pod_spec(objects, "Deployment", "riffle-worker")["initContainers"][0]["resources"]


def runs_as_root(objects: list[Object]) -> None:
    security = pod_spec(objects, "Deployment", "riffle-gateway")["securityContext"]
    security["runAsNonRoot"] = False
    security["runAsUser"] = 0


def privilege_escalation(objects: list[Object]) -> None:
    container(objects, "riffle-transcoder")["securityContext"]["allowPrivilegeEscalation"] = True


def public_base_url_unset(objects: list[Object]) -> None:
    del gateway_settings(objects)["PUBLIC_BASE_URL"]


def transcoder_concurrency_left_to_the_cpu_count(objects: list[Object]) -> None:
    transcoder_settings = next(
        item
        for item in manifests.of_kind(objects, "ConfigMap")
        if "MAX_CONCURRENT_ENCODES" in item["data"]
    )
    del transcoder_settings["data"]["MAX_CONCURRENT_ENCODES"]


def misspelt_setting(objects: list[Object]) -> None:
    gateway_settings(objects)["MAX_UPLOAD_BYTE"] = gateway_settings(objects).pop("MAX_UPLOAD_BYTES")


def invalid_setting_value(objects: list[Object]) -> None:
    gateway_settings(objects)["STORAGE_URL"] = "s3://Recordings_Bucket"


def gateway_runs_jobs(objects: list[Object]) -> None:
    for variable in container(objects, "riffle-gateway")["env"]:
        if variable["name"] == "JOB_WORKERS":
            variable["value"] = "2"


def durations_disagree(objects: list[Object]) -> None:
    gateway_settings(objects)["MAX_DURATION_SECONDS"] = "3600"


def grace_shorter_than_shutdown(objects: list[Object]) -> None:
    pod_spec(objects, "Deployment", "riffle-gateway")["terminationGracePeriodSeconds"] = 30


def no_pre_stop(objects: list[Object]) -> None:
    del container(objects, "riffle-worker")["lifecycle"]


def transcoder_url_wrong_port(objects: list[Object]) -> None:
    gateway_settings(objects)["TRANSCODER_URL"] = "http://riffle-transcoder:8000"


def public_host_not_routed(objects: list[Object]) -> None:
    gateway_settings(objects)["PUBLIC_BASE_URL"] = "https://other.example.com"


def replicas_fight_the_autoscaler(objects: list[Object]) -> None:
    find(objects, "Deployment", "riffle-worker")["spec"]["replicas"] = 3


def no_disruption_budget(objects: list[Object]) -> None:
    objects.remove(find(objects, "PodDisruptionBudget", "riffle-transcoder"))


def serves_before_the_migration(objects: list[Object]) -> None:
    del pod_spec(objects, "Deployment", "riffle-gateway")["initContainers"]


def no_migration_job(objects: list[Object]) -> None:
    objects.remove(find(objects, "Job", "riffle-migrate"))


def object_outside_the_namespace(objects: list[Object]) -> None:
    del find(objects, "Ingress", "riffle-gateway")["metadata"]["namespace"]


@dataclass(frozen=True)
class Breakage:
    breaks: Callable[[list[Object]], None]
    check: checks.Check
    says: str


BREAKAGES = [
    Breakage(drop_readiness_probe, checks.probes, "no readinessProbe"),
    Breakage(drop_transcoder_liveness_probe, checks.probes, "no livenessProbe"),
    Breakage(transcoder_as_load_balancer, checks.transcoder_internal, "type LoadBalancer"),
    Breakage(transcoder_behind_the_ingress, checks.transcoder_internal, "routes to Service"),
    Breakage(transcoder_on_a_host_port, checks.transcoder_internal, "host port"),
    Breakage(network_policy_open_to_every_namespace, checks.transcoder_internal, "beyond"),
    Breakage(network_policy_admits_the_migration, checks.transcoder_internal, "riffle-migrate"),
    Breakage(second_policy_admits_everyone, checks.transcoder_internal, "admits every source"),
    Breakage(no_network_policy, checks.transcoder_internal, "no NetworkPolicy"),
    Breakage(
        literal_secret_in_env, checks.secrets_referenced, "AWS_SECRET_ACCESS_KEY is a literal"
    ),
    Breakage(database_password_in_the_config_map, checks.secrets_referenced, "with a password"),
    Breakage(secret_object_committed, checks.secrets_referenced, "a Secret in the repository"),
    Breakage(gateway_image_latest, checks.images_pinned, "riffle/gateway:latest is a moving"),
    Breakage(transcoder_image_untagged, checks.images_pinned, "has no tag"),
    Breakage(postgres_image_moving_tag, checks.images_pinned, "postgresql:stable is a moving"),
    Breakage(no_memory_limit, checks.resources_bounded, "no limits.memory"),
    Breakage(init_container_unbounded, checks.resources_bounded, "wait-for-schema: no requests"),
    Breakage(runs_as_root, checks.runs_unprivileged, "runs as uid 0"),
    Breakage(privilege_escalation, checks.runs_unprivileged, "allowPrivilegeEscalation"),
    Breakage(public_base_url_unset, checks.settings_wired, "PUBLIC_BASE_URL is not set"),
    Breakage(
        transcoder_concurrency_left_to_the_cpu_count,
        checks.settings_wired,
        "MAX_CONCURRENT_ENCODES is not set",
    ),
    Breakage(misspelt_setting, checks.settings_wired, "MAX_UPLOAD_BYTE is no setting"),
    Breakage(invalid_setting_value, checks.settings_wired, "storage_url"),
    Breakage(gateway_runs_jobs, checks.settings_wired, "JOB_WORKERS must be 0"),
    Breakage(durations_disagree, checks.shared_settings_agree, "MAX_DURATION_SECONDS differs"),
    Breakage(grace_shorter_than_shutdown, checks.graceful_shutdown, "killed mid-shutdown"),
    Breakage(no_pre_stop, checks.graceful_shutdown, "no preStop"),
    Breakage(transcoder_url_wrong_port, checks.public_address, "port 8000 is not on the Service"),
    Breakage(public_host_not_routed, checks.public_address, "has no Ingress rule"),
    Breakage(replicas_fight_the_autoscaler, checks.scaling_and_disruption, "sets replicas"),
    Breakage(no_disruption_budget, checks.scaling_and_disruption, "no PodDisruptionBudget"),
    Breakage(serves_before_the_migration, checks.migration_gates_serving, "may serve before"),
    Breakage(no_migration_job, checks.migration_gates_serving, "no Job runs"),
    Breakage(object_outside_the_namespace, checks.one_namespace, "Ingress/riffle-gateway"),
]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda breakage: breakage.breaks.__name__)
def test_check_catches_the_breakage(rendered: dict[str, list[Object]], breakage: Breakage) -> None:
    objects = copy.deepcopy(rendered["operators"])
    assert breakage.check(objects) == []
    breakage.breaks(objects)
    problems = breakage.check(objects)
    assert any(breakage.says in problem for problem in problems), problems


def test_every_check_is_exercised_by_a_breakage() -> None:
    assert {breakage.check for breakage in BREAKAGES} == set(checks.CHECKS)
