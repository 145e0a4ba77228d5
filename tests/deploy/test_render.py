"""Every overlay renders, and every object in it is valid by the Kubernetes API's own schemas.

The schemas come with kubernetes-validate (PyPI, pinned by uv.lock): the OpenAPI definitions of
each Kubernetes release, offline. The two operators' custom resources have no schema there and no
package ships theirs: they are skipped by name only (a typo in a built-in kind's apiVersion still
fails), and their few fields that riffle depends on are checked below.
"""

import copy
import tomllib

import kubernetes_validate
import pytest
import yaml

from tests.deploy import manifests

# The oldest release the manifests are for (the preStop `sleep` action is on by default from
# 1.30) and the newest the schemas know.
KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
CUSTOM_RESOURCES = {("postgresql.cnpg.io/v1", "Cluster"), ("minio.min.io/v2", "Tenant")}


def schema_problems(objects: list[manifests.Object], version: str) -> list[str]:
    problems: list[str] = []
    for item in objects:
        try:
            kubernetes_validate.validate(item, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            if (item.get("apiVersion"), item.get("kind")) not in CUSTOM_RESOURCES:
                problems.append(
                    f"{manifests.describe(item)}: no schema for {item.get('apiVersion')}"
                )
        except kubernetes_validate.ValidationError as error:
            path = ".".join(map(str, error.path))
            problems.append(f"{manifests.describe(item)}: {path}: {error.message}")
    return problems


def test_there_are_the_two_overlays() -> None:
    assert manifests.overlay_names() == ["external", "operators"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", manifests.overlay_names())
def test_every_rendered_object_is_valid(
    rendered: dict[str, list[manifests.Object]], overlay: str, version: str
) -> None:
    assert schema_problems(rendered[overlay], version) == []


def test_schema_validation_catches_a_misspelt_field_and_an_old_api(
    rendered: dict[str, list[manifests.Object]],
) -> None:
    objects = copy.deepcopy(rendered["external"])
    deployment = manifests.find(objects, "Deployment", "riffle-gateway")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    manifests.find(objects, "HorizontalPodAutoscaler", "riffle-worker")["apiVersion"] = (
        "autoscaling/v2beta1"
    )
    problems = schema_problems(objects, KUBERNETES_VERSIONS[-1])
    assert any("readinesProbe" in problem for problem in problems), problems
    assert any("autoscaling/v2beta1" in problem for problem in problems), problems


def test_base_images_are_the_project_version() -> None:
    # A release bumps pyproject.toml's version; the manifests must deploy that release.
    version = tomllib.loads((manifests.ROOT / "pyproject.toml").read_text())["project"]["version"]
    kustomization = yaml.safe_load(
        (manifests.KUSTOMIZE_ROOT / "base/kustomization.yaml").read_text()
    )
    assert {image["name"]: image["newTag"] for image in kustomization["images"]} == {
        "riffle/gateway": version,
        "riffle/transcoder": version,
    }


def test_operator_overlay_runs_postgres_on_three_instances(
    rendered: dict[str, list[manifests.Object]],
) -> None:
    cluster = manifests.find(rendered["operators"], "Cluster", "riffle-db")["spec"]
    assert cluster["instances"] == 3
    assert cluster["bootstrap"]["initdb"]["database"] == "riffle"
    assert cluster["affinity"]["podAntiAffinityType"] == "required"  # one instance per node
    # CloudNativePG names the owner's Secret <cluster>-app; DATABASE_URL reads its uri.
    gateway = manifests.find(rendered["operators"], "Deployment", "riffle-gateway")
    references = {
        variable["name"]: variable["valueFrom"]["secretKeyRef"]
        for variable in gateway["spec"]["template"]["spec"]["containers"][0]["env"]
        if "valueFrom" in variable
    }
    assert references["DATABASE_URL"] == {"name": "riffle-db-app", "key": "uri"}


def test_operator_overlay_runs_minio_erasure_coded_on_four_servers(
    rendered: dict[str, list[manifests.Object]],
) -> None:
    tenant = manifests.find(rendered["operators"], "Tenant", "riffle-s3")["spec"]
    (pool,) = tenant["pools"]
    assert pool["servers"] == 4
    assert pool["servers"] * pool["volumesPerServer"] >= 4  # erasure coding needs 4 drives or more
    assert {bucket["name"] for bucket in tenant["buckets"]} == {"recordings"}
    # The gateway's S3 keys come from the Secret the operator makes riffle's MinIO user from.
    assert [user["name"] for user in tenant["users"]] == ["riffle-s3"]
    settings = next(
        item
        for item in manifests.of_kind(rendered["operators"], "ConfigMap")
        if "STORAGE_URL" in item["data"]
    )
    assert settings["data"]["STORAGE_URL"] == "s3://recordings"


def test_external_overlay_adds_no_state(rendered: dict[str, list[manifests.Object]]) -> None:
    kinds = {item["kind"] for item in rendered["external"]}
    assert not kinds & {"StatefulSet", "PersistentVolumeClaim", "Cluster", "Tenant"}
