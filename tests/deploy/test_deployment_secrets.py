"""docker-compose.yaml is secure by default: no secret in the file, none defaulted, all required.

The probes of issue 13: a JWT secret printed in the file (tokens forged with it were
accepted), ``admin``/``admin``, an empty Fernet key, ``airflow/airflow`` on Postgres, Redis
without a password, a base URL defaulting to localhost. Each is checked here on the parsed
file, interpolated as `docker compose` does (tests/deploy/compose.py).
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
from urllib.parse import urlparse

import pytest

from tests.conftest import REPO
from tests.deploy.compose import (
    COMPOSE_FILE,
    MissingRequiredVariable,
    interpolate,
    load_compose,
    raw_compose,
    references,
    string_values,
)
from tests.deploy.test_docker_compose import AIRFLOW_COMPONENTS, DEPLOYMENT_ENV, DEPLOYMENT_SETTINGS

# compose must refuse to start without each of these
REQUIRED = {
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_ADMIN_PASSWORD",
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "AIRFLOW_BASE_URL",
}
SECRET_NAME = re.compile(
    r"JWT_SECRET|SECRET_KEY|SECRET_ACCESS_KEY|ACCESS_KEY_ID|PASSWORD|PASSWD|TOKEN|FERNET|REDISCLI_AUTH", re.I
)
# Variables with a secret-sounding name that may be left empty, and why.
OPTIONAL_SECRETS = {
    # empty: boto3 uses the instance/task role (the production case); never a default value
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
}
# The offline stack (moto) takes any credentials: its services say "testing", moto's own
# placeholder, and never run in production (profile `offline`).
OFFLINE_PLACEHOLDER_CREDENTIAL = "testing"
# Values that were (or commonly are) shipped as secrets: none may appear anywhere in the file.
KNOWN_WEAK = ["change-me", "changeme", "admin:admin", "airflow:airflow", "redis://:@", '"admin"', "secret123"]


def _secret_references():
    return [ref for text in string_values(raw_compose()) for ref in references(text)]


def test_every_deployment_secret_and_the_base_url_is_required():
    by_name = {}
    for ref in _secret_references():
        by_name.setdefault(ref.name, set()).add(ref.op)
    for name in REQUIRED:
        assert by_name.get(name) == {":?"}, (
            f"{name} must be ${{{name}:?message}} everywhere, is {by_name.get(name)}"
        )


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_compose_refuses_to_start_without_each_secret(missing):
    env = {
        name: value for name, value in {**DEPLOYMENT_ENV, **DEPLOYMENT_SETTINGS}.items() if name != missing
    }
    with pytest.raises(MissingRequiredVariable) as refused:
        load_compose(env)
    assert refused.value.name == missing
    # an empty value is no better than none (":?" refuses both)
    with pytest.raises(MissingRequiredVariable):
        load_compose({**env, missing: ""})


def test_the_refusal_message_says_what_to_set():
    for ref in _secret_references():
        if ref.op == ":?":
            assert ref.name in ref.word, f"the message for {ref.name} should name it: {ref.word!r}"


def test_no_secret_variable_has_a_default():
    for ref in _secret_references():
        if not SECRET_NAME.search(ref.name):
            continue
        if ref.name in OPTIONAL_SECRETS:
            assert ref.op == ":-" and ref.word == "", f"{ref.name} may only default to empty"
        else:
            assert ref.op == ":?", f"{ref.name} has a default or may be empty ({ref.op!r} {ref.word!r})"


def _environments(model):
    for name, service in model["services"].items():
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        yield name, service, env


def test_no_literal_secret_in_the_file():
    """Grep-proof: every secret-named setting is a variable, and every password in a URL too."""
    model = raw_compose()
    for name, service, env in _environments(model):
        offline = "offline" in (service.get("profiles") or [])
        for key, value in env.items():
            if not SECRET_NAME.search(key) or value is None:
                continue
            value = str(value)
            if offline and value == OFFLINE_PLACEHOLDER_CREDENTIAL:
                continue
            literal = re.sub(r"\$\{[^}]*\}", "", value)
            assert literal == "", f"{name}: {key} holds a literal {literal!r}"
        for key, value in env.items():
            for url in re.findall(r"[a-z+]+://[^\s'\"]+", str(value or "")):
                password = urlparse(url).password
                if password is not None:
                    assert password.startswith("${") and password.endswith("}"), (
                        f"{name}: {key} has a literal password in {url}"
                    )
    text = COMPOSE_FILE.read_text()
    for weak in KNOWN_WEAK:
        assert weak not in text, weak


def test_postgres_and_redis_require_their_passwords():
    compose_env = {**DEPLOYMENT_ENV, **DEPLOYMENT_SETTINGS}
    model = load_compose(compose_env)
    services = model["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == compose_env["POSTGRES_PASSWORD"]
    redis = services["redis"]
    assert redis["environment"]["REDISCLI_AUTH"] == compose_env["REDIS_PASSWORD"]
    # the server requires it ($$ is compose's escape for the container's own $)
    assert "--requirepass" in " ".join(redis["command"])
    assert "$REDISCLI_AUTH" in redis["command"][-1]
    for name in AIRFLOW_COMPONENTS:
        env = services[name]["environment"]
        # each component holds only some of these (SECURITY.md, "Compose: who gets which secret");
        # where it holds one, it is the password the server requires
        if "AIRFLOW__CELERY__BROKER_URL" in env:
            assert urlparse(env["AIRFLOW__CELERY__BROKER_URL"]).password == compose_env["REDIS_PASSWORD"]
        if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in env:
            assert (
                urlparse(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).password
                == compose_env["POSTGRES_PASSWORD"]
            )
        assert env["AIRFLOW__API__BASE_URL"] == compose_env["AIRFLOW_BASE_URL"]
        assert (
            env.get("AIRFLOW__CORE__FERNET_KEY", compose_env["AIRFLOW_FERNET_KEY"])
            == compose_env["AIRFLOW_FERNET_KEY"]
        )


def test_the_production_auth_manager_is_fabs_and_it_is_installed():
    model = load_compose({**DEPLOYMENT_ENV, **DEPLOYMENT_SETTINGS})
    for name in AIRFLOW_COMPONENTS:
        manager = model["services"][name]["environment"]["AIRFLOW__CORE__AUTH_MANAGER"]
        assert manager == "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
        assert "SIMPLE_AUTH_MANAGER" not in json.dumps(model["services"][name]["environment"])
    # pinned in the runtime lock (with hashes), so the production image has it
    lock = (REPO / "requirements.lock").read_text()
    assert re.search(r"^apache-airflow-providers-fab==[\d.]+ \\\n\s+--hash=sha256:", lock, re.M)
    from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager

    assert FabAuthManager.__name__ == manager.rsplit(".", 1)[1]
    # init creates the admin from the required password, never a default one
    init = model["services"]["airflow-init"]
    assert init["environment"]["AIRFLOW_ADMIN_PASSWORD"] == DEPLOYMENT_ENV["AIRFLOW_ADMIN_PASSWORD"]
    assert '--password "${AIRFLOW_ADMIN_PASSWORD}"' in init["command"][-1]


def test_connections_and_variables_come_from_secrets_manager():
    from airflow.providers.amazon.aws.secrets.secrets_manager import SecretsManagerBackend
    from airflow.sdk.module_loading import import_string

    model = load_compose({**DEPLOYMENT_ENV, **DEPLOYMENT_SETTINGS})
    for name in AIRFLOW_COMPONENTS:
        env = model["services"][name]["environment"]
        assert import_string(env["AIRFLOW__SECRETS__BACKEND"]) is SecretsManagerBackend
        kwargs = json.loads(env["AIRFLOW__SECRETS__BACKEND_KWARGS"])
        backend = SecretsManagerBackend(**kwargs)
        assert (backend.connections_prefix, backend.variables_prefix) == (
            "airflow/connections",
            "airflow/variables",
        )
        assert backend.config_prefix is None  # no Secrets Manager call per configuration read
        # an empty endpoint is AWS itself for boto3 (an empty endpoint_url extra would break it)
        assert "endpoint_url" not in env["AIRFLOW_CONN_AWS_DEFAULT"]


# --- the .env one-liner, as documented ------------------------------------------------------


def _documented_one_liner(path) -> str:
    (line,) = [line.strip() for line in path.read_text().splitlines() if line.strip().startswith("make env ")]
    return line


def test_readme_and_security_md_document_the_same_one_liner():
    assert _documented_one_liner(REPO / "README.md") == _documented_one_liner(REPO / "SECURITY.md")


def _run_one_liner(directory):
    """The documented `make env ...`, run from the checkout, writing ``directory/.env``."""
    command = _documented_one_liner(REPO / "SECURITY.md").split()
    assert command[:2] == ["make", "env"]
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), *command[1:], f"ENV_FILE={directory / '.env'}"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )


def _read_env_file(path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


def test_the_one_liner_writes_a_private_env_that_compose_starts_with(tmp_path):
    from cryptography.fernet import Fernet

    done = _run_one_liner(tmp_path)
    assert done.returncode == 0, done.stderr
    env_file = tmp_path / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    env = _read_env_file(env_file)
    assert REQUIRED <= set(env)
    model = load_compose(
        {**env, **DEPLOYMENT_SETTINGS}
    )  # no secret missing (the two settings are not secrets)
    Fernet(env["AIRFLOW_FERNET_KEY"].encode())  # a valid key
    assert len(env["AIRFLOW_JWT_SECRET"].encode()) >= 64  # HS512
    for name in ("AIRFLOW_ADMIN_PASSWORD", "POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        assert len(env[name]) >= 24 and re.fullmatch(r"[A-Za-z0-9_-]+", env[name]), name  # URL-safe
    db = urlparse(
        model["services"]["airflow-scheduler"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    )
    assert db.password == env["POSTGRES_PASSWORD"]


def test_the_one_liner_never_overwrites_an_existing_env(tmp_path):
    assert _run_one_liner(tmp_path).returncode == 0
    first = (tmp_path / ".env").read_text()
    again = _run_one_liner(tmp_path)
    assert again.returncode != 0 and "never overwritten" in again.stderr
    assert (tmp_path / ".env").read_text() == first  # the Fernet key that encrypted the DB survives


def test_two_runs_generate_different_secrets(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert _run_one_liner(tmp_path / "a").returncode == 0
    assert _run_one_liner(tmp_path / "b").returncode == 0
    a, b = _read_env_file(tmp_path / "a" / ".env"), _read_env_file(tmp_path / "b" / ".env")
    for name in REQUIRED - {"AIRFLOW_BASE_URL"}:
        assert a[name] != b[name], name


def test_the_env_file_is_never_committed():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO)
    assert ignored.returncode == 0, ".env must be git-ignored"


def test_interpolation_follows_the_compose_rules():
    # the helper the tests above rely on, against the specification's examples
    assert interpolate("$${X}", {"X": "1"}) == "${X}"
    assert interpolate("${X:-d}", {"X": ""}) == "d" and interpolate("${X-d}", {"X": ""}) == ""
    assert interpolate("${X:+y}", {"X": "1"}) == "y" and interpolate("${X:+y}", {}) == ""
    assert interpolate("a $X b", {"X": "1"}) == "a 1 b"
    with pytest.raises(MissingRequiredVariable):
        interpolate("${X:?set X}", {"X": ""})
    assert interpolate("${X?set X}", {"X": ""}) == ""
