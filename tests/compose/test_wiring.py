"""The compose wiring holds: variables, settings, host names, ports, volumes, start order."""

import re
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

import gateway.config
import transcoder.config
from testkit import compose as stack

# Which settings class a service's command reads, by the package it runs.
SETTINGS: dict[str, type[BaseSettings]] = {
    "gateway": gateway.config.Settings,
    "transcoder": transcoder.config.Settings,
}
# Settings a service may leave to its default on purpose, with the reason.
OPTIONAL_SETTINGS = {
    "FFMPEG_PATH": "the transcoder image puts Debian's ffmpeg on PATH, which wins over the default",
}
STATEFUL_DATA_DIRS = {"postgres": "/var/lib/postgresql/data", "minio": None}  # minio: its command
PIN = re.compile(r"\d")  # a tag that names a version (a digit), not a moving name
CONDITIONS = {"service_healthy", "service_completed_successfully"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return stack.load()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def settings_package(service: dict[str, Any]) -> str | None:
    """The package whose settings the service's command reads (None: not ours)."""
    arguments = stack.command(service)
    if arguments[:3] == ["python", "-m", "uvicorn"]:
        return arguments[3].split(".")[0]
    if arguments[:3] == ["python", "-m", "alembic"]:
        return "gateway"  # gateway/migrations/env.py reads gateway.config.Settings
    return None


def env_names(settings: type[BaseSettings]) -> set[str]:
    prefix = str(settings.model_config.get("env_prefix", ""))
    return {(prefix + name).upper() for name in settings.model_fields}


# --- variables ------------------------------------------------------------------------------------


def test_every_variable_compose_reads_has_a_commented_value_in_env_example() -> None:
    entries = {name: (value, comment) for name, value, comment in stack.env_example_entries()}
    missing = sorted({ref.name for ref in stack.references()} - entries.keys())
    assert missing == [], f"read by docker-compose.yml, absent from .env.example: {missing}"
    uncommented = sorted(name for name, (_value, comment) in entries.items() if not comment)
    assert uncommented == [], f".env.example variables without a comment: {uncommented}"


def test_env_example_holds_only_variables_compose_reads() -> None:
    unused = sorted(stack.env_example().keys() - {ref.name for ref in stack.references()})
    assert unused == [], f"in .env.example but read by nothing: {unused}"


def test_env_example_defaults_agree_with_the_compose_file_defaults() -> None:
    # Someone without a .env gets the same stack as someone who copied .env.example.
    example = stack.env_example()
    disagreeing = {
        ref.name: (ref.argument, example[ref.name])
        for ref in stack.references()
        if ref.operator == ":-" and example.get(ref.name) and example[ref.name] != ref.argument
    }
    assert disagreeing == {}


def test_secrets_are_required_and_their_example_values_are_marked_dev() -> None:
    required = {ref.name for ref in stack.references() if ref.required}
    assert required >= {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"}
    for name, value, comment in stack.env_example_entries():
        if name in required:
            assert value, f"{name} is required: .env.example must give it a value"
            assert "DEV ONLY" in comment, f"{name}: say that the example value is for development"


def test_compose_refuses_to_start_without_the_passwords() -> None:
    env = stack.env_example()
    for secret in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"):
        with pytest.raises(stack.MissingVariable, match=secret):
            stack.load({**env, secret: ""})


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["migrate", "transcoder", "gateway", "worker"])
def test_service_environment_sets_valid_settings_and_nothing_unknown(
    services: dict[str, dict[str, Any]], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = services[name]
    package = settings_package(service)
    assert package, f"{name}: its command runs none of our packages"
    settings, env = SETTINGS[package], stack.environment(service)
    known = env_names(settings)
    assert env.keys() <= known, f"{name}: not settings of {package}: {env.keys() - known}"
    if name != "migrate":  # the one-shot needs only the database
        unset = known - env.keys() - OPTIONAL_SETTINGS.keys()
        assert unset == set(), f"{name}: set these in compose (or .env.example): {unset}"
    for variable in known:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    try:
        settings()
    except ValidationError as error:
        pytest.fail(f"{name}: compose's environment does not validate:\n{error}")


def test_settings_shared_by_gateway_and_transcoder_agree(
    services: dict[str, dict[str, Any]],
) -> None:
    gateway_env = stack.environment(services["gateway"])
    transcoder_env = stack.environment(services["transcoder"])
    for shared in ("MAX_DURATION_SECONDS", "TRANSCODE_TIMEOUT_SECONDS"):
        assert gateway_env[shared] == transcoder_env[shared], shared


def test_migrations_gateway_and_worker_use_the_same_database(
    services: dict[str, dict[str, Any]],
) -> None:
    migrate = stack.environment(services["migrate"])["DATABASE_URL"]
    assert migrate == stack.environment(services["gateway"])["DATABASE_URL"]
    assert migrate == stack.environment(services["worker"])["DATABASE_URL"]


def test_the_worker_tier_runs_the_jobs_and_shares_every_other_setting(
    services: dict[str, dict[str, Any]],
) -> None:
    gateway, worker = (stack.environment(services[name]) for name in ("gateway", "worker"))
    assert gateway.pop("JOB_WORKERS") == "0"
    assert int(worker.pop("JOB_WORKERS")) >= 1
    assert gateway == worker  # one bucket, one database, one transcoder, the same limits


# --- host names and ports -------------------------------------------------------------------------


def test_every_url_names_a_service_and_a_port_it_provides(
    services: dict[str, dict[str, Any]],
) -> None:
    checked = 0
    for name, service in services.items():
        for variable, url in stack.urls(stack.environment(service)).items():
            where = f"{name}.{variable}={url.geturl()}"
            assert url.hostname in services, f"{where}: no service is called {url.hostname}"
            target = services[url.hostname]
            assert url.port is not None, f"{where}: spell the port out"
            assert url.port in stack.exposed_ports(target), f"{where}: {url.hostname} has no port"
            shared = stack.networks(service) & stack.networks(target)
            assert shared, f"{where}: the two services share no network"
            assert url.hostname in service.get("depends_on", {}), f"{where}: not in depends_on"
            checked += 1
    assert checked >= 4  # database twice, S3, transcoder


@pytest.mark.parametrize("name", ["transcoder", "gateway", "worker"])
def test_server_listens_on_every_interface_at_its_exposed_port(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    service, arguments = services[name], stack.command(services[name])
    assert stack.option(arguments, "--host") == "0.0.0.0"
    port = int(stack.option(arguments, "--port") or 0)
    assert service["expose"] == [str(port)]
    assert f"127.0.0.1:{port}/healthz" in " ".join(service["healthcheck"]["test"])


def test_transcoder_is_internal_only(compose: dict[str, Any]) -> None:
    transcoder_service = compose["services"]["transcoder"]
    assert "ports" not in transcoder_service
    for network in stack.networks(transcoder_service):
        assert compose["networks"][network].get("internal") is True, network


def test_gateway_is_published_on_8000_by_default(services: dict[str, dict[str, Any]]) -> None:
    assert services["gateway"]["ports"] == ["0.0.0.0:8000:8000"]


@pytest.mark.parametrize("name", ["postgres", "minio"])
def test_inspection_ports_are_bound_to_loopback_by_default(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    published = services[name]["ports"]
    assert published
    assert all(str(port).startswith("127.0.0.1:") for port in published), published


def test_only_the_gateway_postgres_and_minio_publish_ports(
    services: dict[str, dict[str, Any]],
) -> None:
    assert {name for name, service in services.items() if "ports" in service} == {
        "gateway",
        "postgres",
        "minio",
    }


# --- state ----------------------------------------------------------------------------------------


def _stateful(service: dict[str, Any]) -> str | None:
    image = str(service.get("image", "")).rsplit("/", 1)[-1].split(":")[0]
    return image if image in STATEFUL_DATA_DIRS else None


def test_stateful_services_keep_their_data_on_named_volumes(compose: dict[str, Any]) -> None:
    declared = compose.get("volumes") or {}
    stateful = {name: s for name, s in compose["services"].items() if _stateful(s)}
    assert set(stateful) == {"postgres", "minio"}
    for name, service in stateful.items():
        data_dir = STATEFUL_DATA_DIRS[str(_stateful(service))] or stack.command(service)[1]
        mounts = {}
        for volume in service.get("volumes", []):
            source, _, target = str(volume).partition(":")
            mounts[target.split(":")[0]] = source
        assert data_dir in mounts, f"{name}: nothing mounted at its data directory {data_dir}"
        assert mounts[data_dir] in declared, f"{name}: {mounts[data_dir]} is not a named volume"


def test_postgres_major_version_keeps_data_where_the_volume_is(
    services: dict[str, dict[str, Any]],
) -> None:
    # From PostgreSQL 18 the official image keeps PGDATA under /var/lib/postgresql/<major>/:
    # moving to 18 must move the volume's mount point too.
    major = int(str(stack.image_tag(services["postgres"]["image"])).split(".")[0].split("-")[0])
    assert major <= 17


def test_application_services_keep_no_state(services: dict[str, dict[str, Any]]) -> None:
    for name in ("migrate", "transcoder", "gateway"):
        assert "volumes" not in services[name], name


# --- images ---------------------------------------------------------------------------------------


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name}: name the image (built ones too, so they can be pushed)"
        tag = stack.image_tag(image)
        assert tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} is not pinned"
        if "build" not in service:
            assert PIN.search(tag), f"{name}: {image}: pin a version, not a moving tag"


def test_built_images_use_targets_the_dockerfile_has(services: dict[str, dict[str, Any]]) -> None:
    stages = stack.dockerfile_stages()
    for name, service in services.items():
        if "build" in service:
            build = service["build"]
            assert (stack.ROOT / build["context"] / build["dockerfile"]) == stack.DOCKERFILE
            assert build["target"] in stages, name
            assert build["target"] == settings_package(service), name


# --- start-up order and health --------------------------------------------------------------------


def test_every_dependency_waits_for_a_condition(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on needs the long form"
        for target, spec in depends_on.items():
            condition = spec.get("condition") if isinstance(spec, dict) else None
            assert condition in CONDITIONS, f"{name} -> {target}: condition {condition!r}"
            dependency = services[target]
            if condition == "service_healthy":
                health = dependency.get("healthcheck", {})
                assert health.get("test"), f"{target}: no healthcheck"
                assert not health.get("disable"), f"{target}: healthcheck disabled"
            else:
                assert dependency.get("restart") == "no", f"{target}: a one-shot must not restart"


def test_gateway_starts_after_migrations_and_healthy_dependencies(
    services: dict[str, dict[str, Any]],
) -> None:
    assert services["gateway"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "postgres": {"condition": "service_healthy"},
        "minio": {"condition": "service_healthy"},
        "transcoder": {"condition": "service_healthy"},
    }
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert stack.command(services["migrate"]) == ["python", "-m", "alembic", "upgrade", "head"]


def test_long_running_services_have_a_healthcheck_and_a_restart_policy(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if service.get("restart") == "no":
            continue
        assert service.get("restart") in {"unless-stopped", "always", "on-failure"}, name
        test = service.get("healthcheck", {}).get("test", [])
        assert test, f"{name}: no healthcheck"
        assert test[0] in {"CMD", "CMD-SHELL"}, name
        # Neither the slim Python images nor MinIO's carry curl or wget.
        assert not {"curl", "wget"} & set(" ".join(test).split()), name


def test_postgres_healthcheck_asks_over_tcp(services: dict[str, dict[str, Any]]) -> None:
    check = " ".join(services["postgres"]["healthcheck"]["test"])
    assert "pg_isready" in check
    assert "-h 127.0.0.1" in check
