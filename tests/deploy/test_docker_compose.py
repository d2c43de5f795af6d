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
# Not secrets, but required (no offline default): the account of the roles, the base image's digest.
DEPLOYMENT_SETTINGS = {
    "AWS_ACCOUNT_ID": "210987654321",
    "AIRFLOW_BASE_DIGEST": "sha256:" + "0" * 64,
}


@pytest.fixture(scope="module")
def compose():
    return load_compose({**DEPLOYMENT_ENV, **DEPLOYMENT_SETTINGS})


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
        if name == "airflow-worker":  # no database access but Celery's result backend
            assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env
            continue
        db = urlparse(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert db.scheme.startswith("postgresql") and db.hostname in services
        assert services[db.hostname]["image"].startswith("postgres")
        user = services["postgres"]["environment"]
        assert (db.username, db.password, db.path.lstrip("/")) == (
            user["POSTGRES_USER"],
            user["POSTGRES_PASSWORD"],
            user["POSTGRES_DB"],
        )
        if name != "airflow-scheduler":  # only the scheduler queues tasks
            assert "AIRFLOW__CELERY__BROKER_URL" not in env, name
            continue
        broker = urlparse(env["AIRFLOW__CELERY__BROKER_URL"])
        assert broker.scheme == "redis" and broker.hostname in services
        assert services[broker.hostname]["image"].startswith("redis")
        assert urlparse(env["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+")).hostname == "postgres"


def test_execution_api_points_at_the_api_server_and_secrets_are_shared(compose):
    services = compose["services"]
    values: dict[str, set[str]] = {}
    for name in AIRFLOW_COMPONENTS:
        env = _env(services[name])
        url = urlparse(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert url.hostname == "airflow-apiserver" and url.path == "/execution/"
        published = services["airflow-apiserver"]["ports"][0].split(":")[-1]
        assert str(url.port) == published
        for setting in (
            "AIRFLOW__API_AUTH__JWT_SECRET",
            "AIRFLOW__CORE__FERNET_KEY",
            "AIRFLOW__API__SECRET_KEY",
        ):
            if setting in env:
                values.setdefault(setting, set()).add(env[setting])
    # the components that hold a secret hold the same one (tokens, cookies, log requests verify)
    assert {setting: len(found) for setting, found in values.items()} == dict.fromkeys(values, 1)


def test_no_service_mounts_the_checkout_the_image_holds_the_code(compose):
    """Code is in the image (read-only to the airflow user); a writable mount would replace it."""
    dockerfile = (REPO / "Dockerfile").read_text()
    for folder in ("dags", "plugins", "include"):
        assert f"COPY --chown=airflow:root {folder} /opt/airflow/{folder}" in dockerfile
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0]
            assert not source.startswith((".", "/")) or volume.endswith(":ro"), (name, volume)


def test_the_image_installs_the_pinned_lock():
    dockerfile = (REPO / "Dockerfile").read_text()
    # pinned by digest (the build argument), the tag kept for readers
    assert re.search(
        r"^FROM apache/airflow:3\.3\.2-python3\.11@\$\{AIRFLOW_BASE_DIGEST\} AS runtime$", dockerfile, re.M
    )
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


# -- least privilege (issue 19.4) ----------------------------------------------------------------

SECRET_SETTINGS = {
    # compose variable (.env) -> how a service receives it
    "POSTGRES_PASSWORD": (
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "POSTGRES_PASSWORD",
    ),
    "REDIS_PASSWORD": ("AIRFLOW__CELERY__BROKER_URL", "REDISCLI_AUTH"),
    "AIRFLOW_FERNET_KEY": ("AIRFLOW__CORE__FERNET_KEY",),
    "AIRFLOW_JWT_SECRET": ("AIRFLOW__API_AUTH__JWT_SECRET",),
    "AIRFLOW_API_SECRET_KEY": ("AIRFLOW__API__SECRET_KEY",),
    "AIRFLOW_ADMIN_PASSWORD": ("AIRFLOW_ADMIN_PASSWORD",),
}


def _secrets_of(service) -> set[str]:
    """The .env secrets a service's environment carries (by value: any setting holding it counts)."""
    env = _env(service)
    return {name for name in SECRET_SETTINGS if any(DEPLOYMENT_ENV[name] in str(v) for v in env.values())}


def security_md_secret_table() -> dict[str, set[str]]:
    """SECURITY.md's "Compose: who gets which secret" table: {service: {secret variable}}."""
    text = (REPO / "SECURITY.md").read_text()
    section = text.split("### Compose: who gets which secret", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table = {}
    for row in rows:
        service, secrets, *_why = (cell.strip() for cell in row.strip("|").split("|"))
        table[service.strip("`")] = {s.strip().strip("`") for s in secrets.split(",") if s.strip() != "none"}
    return table


def test_each_service_gets_only_the_secrets_security_md_lists(compose):
    table = security_md_secret_table()
    assert set(table) == set(compose["services"]), "one row per service"
    for name, service in compose["services"].items():
        assert _secrets_of(service) == table[name], name
    # what the issue found: the worker and the offline services held every secret
    assert "AIRFLOW_JWT_SECRET" not in table["airflow-worker"]
    assert "AIRFLOW_FERNET_KEY" not in table["airflow-worker"]
    for offline in ("localaws", "localaws-provision", "smtp-catcher", "fake-esi"):
        assert table[offline] == set(), offline


def test_offline_services_publish_their_ports_on_the_loopback_only(compose):
    for name, service in compose["services"].items():
        if "offline" not in (service.get("profiles") or []):
            continue
        for port in service.get("ports") or []:
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_every_airflow_service_runs_as_the_airflow_user_init_included(compose):
    for name in (*AIRFLOW_COMPONENTS, "airflow-init"):
        user = compose["services"][name].get("user", "")
        uid = user.split(":", 1)[0]
        assert uid == "50000", (name, user)  # AIRFLOW_UID's default, never 0 (root)


def test_the_build_needs_the_base_image_digest():
    from tests.deploy.compose import MissingRequiredVariable

    with pytest.raises(MissingRequiredVariable) as refused:
        load_compose({**DEPLOYMENT_ENV, "AWS_ACCOUNT_ID": "210987654321"})
    assert refused.value.name == "AIRFLOW_BASE_DIGEST"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ARG AIRFLOW_BASE_DIGEST$", dockerfile, re.M)  # no default: no build without it


def test_the_account_has_no_offline_default_in_compose():
    from tests.deploy.compose import MissingRequiredVariable

    with pytest.raises(MissingRequiredVariable) as refused:
        load_compose({**DEPLOYMENT_ENV, "AIRFLOW_BASE_DIGEST": "sha256:" + "0" * 64})
    assert refused.value.name == "AWS_ACCOUNT_ID"
    model = load_compose({**DEPLOYMENT_ENV, **DEPLOYMENT_SETTINGS})
    for name in AIRFLOW_COMPONENTS:
        env = _env(model["services"][name])
        assert not [k for k, v in env.items() if "123456789012" in str(v)], name  # moto's account
        assert "arn:aws:iam::210987654321:role/pipeline-covid-daily" in env["AIRFLOW_CONN_AWS_COVID"]
        # the bucket is the Variable in Secrets Manager: no empty or offline fallback in the environment
        assert "AIRFLOW_VAR_DATA_LAKE_BUCKET" not in env, name


def test_dockerignore_keeps_env_files_out_of_the_build_context():
    import fnmatch

    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (".env", ".env.offline", ".env.local"):
        assert any(fnmatch.fnmatch(path, pattern) for pattern in patterns), path
