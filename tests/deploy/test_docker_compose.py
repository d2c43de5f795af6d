"""docker-compose.yaml is consistent with itself and with the project (no Docker engine here)."""

from __future__ import annotations

import importlib.util
import re
from urllib.parse import urlparse

import pytest

from tests.conftest import REPO
from tests.deploy.compose import load_compose

AIRFLOW_COMPONENTS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}


# What a generated .env holds (SECURITY.md, "Deployment secrets"): compose needs every one.
DEPLOYMENT_ENV = {
    "AIRFLOW_BASE_URL": "https://airflow.example.com",
    "AIRFLOW_JWT_SECRET": "j" * 86,
    "AIRFLOW_API_SECRET_KEY": "s" * 43,
    "AIRFLOW_FERNET_KEY": "7bWOvD0w0uyzU6Y5GD0RkTvBTeL1sC8uVmRJtF4N-Jo=",
    "AIRFLOW_ADMIN_PASSWORD": "a" * 32,
    "POSTGRES_PASSWORD": "p" * 32,
    "REDIS_PASSWORD": "r" * 32,
}


@pytest.fixture(scope="module")
def compose():
    return load_compose(DEPLOYMENT_ENV)


def _env(service):
    env = service.get("environment", {})
    return env if isinstance(env, dict) else dict(item.split("=", 1) for item in env)


def test_every_airflow_component_runs_its_command(compose):
    services = compose["services"]
    for name, command in AIRFLOW_COMPONENTS.items():
        assert services[name]["command"] == command, name
    assert {"postgres", "redis", "airflow-init"} <= set(services)


def test_celery_executor_on_postgres_and_redis_services(compose):
    services = compose["services"]
    for name in AIRFLOW_COMPONENTS:
        env = _env(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        db = urlparse(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert db.scheme.startswith("postgresql") and db.hostname in services
        assert services[db.hostname]["image"].startswith("postgres")
        user = services["postgres"]["environment"]
        assert (db.username, db.password, db.path.lstrip("/")) == (
            user["POSTGRES_USER"],
            user["POSTGRES_PASSWORD"],
            user["POSTGRES_DB"],
        )
        broker = urlparse(env["AIRFLOW__CELERY__BROKER_URL"])
        assert broker.scheme == "redis" and broker.hostname in services
        assert services[broker.hostname]["image"].startswith("redis")
        assert urlparse(env["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+")).hostname == "postgres"


def test_execution_api_points_at_the_api_server_and_secrets_are_shared(compose):
    services = compose["services"]
    secrets = set()
    for name in AIRFLOW_COMPONENTS:
        env = _env(services[name])
        url = urlparse(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert url.hostname == "airflow-apiserver" and url.path == "/execution/"
        published = services["airflow-apiserver"]["ports"][0].split(":")[-1]
        assert str(url.port) == published
        secrets.add((env["AIRFLOW__API_AUTH__JWT_SECRET"], env["AIRFLOW__CORE__FERNET_KEY"]))
    assert len(secrets) == 1, "all components must share the JWT secret and Fernet key"


def test_mounts_are_the_project_folders(compose):
    for name in AIRFLOW_COMPONENTS:
        mounts = {
            v.split(":")[0]: v.split(":")[1]
            for v in compose["services"][name]["volumes"]
            if v.startswith("./")
        }
        for folder in ("dags", "plugins", "include", "infra"):
            assert mounts[f"./{folder}"] == f"/opt/airflow/{folder}"
            assert (REPO / folder).is_dir()


def test_the_image_installs_the_pinned_lock():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:3\.3\.2-python3\.11 AS runtime$", dockerfile, re.M)
    instructions = "\n".join(line for line in dockerfile.splitlines() if not line.startswith("#"))
    runtime, offline = instructions.split("\nFROM runtime AS offline\n")
    assert "pip install --no-cache-dir --require-hashes -r /opt/airflow/requirements.lock" in runtime
    assert (REPO / "requirements.lock").is_file()
    # production carries neither the development lock nor the offline stack or dev tools
    for dev_only in ("requirements-dev", "localaws", "devtools"):
        assert dev_only not in runtime, dev_only
    assert "--require-hashes -r /opt/airflow/requirements-dev.lock" in offline
    assert runtime.rstrip().splitlines()[-1] == "USER airflow"


def test_production_services_use_the_runtime_image_and_the_offline_profile_its_own(compose):
    for name, service in compose["services"].items():
        if "build" not in service:
            continue
        target = "offline" if "offline" in (service.get("profiles") or []) else "runtime"
        assert service["build"]["target"] == target, name


def test_depends_on_names_existing_services(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}) or {}:
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if services[dependency].get("profiles"):
                assert service.get("profiles"), f"{name} always runs but needs profile-only {dependency}"


def test_the_offline_stack_is_a_profile_and_runs_project_modules(compose):
    services = compose["services"]
    offline = {name for name, s in services.items() if "offline" in (s.get("profiles") or [])}
    assert offline == {"localaws", "localaws-provision", "smtp-catcher", "fake-esi"}
    for name in offline:
        module = services[name]["entrypoint"][2]
        assert importlib.util.find_spec(module) is not None, module
    assert all("profiles" not in services[name] for name in AIRFLOW_COMPONENTS)


def test_init_migrates_and_imports_the_pools(compose):
    script = compose["services"]["airflow-init"]["command"][-1]
    assert "airflow db migrate" in script
    assert "airflow pools import /opt/airflow/infra/airflow_pools.json" in script
