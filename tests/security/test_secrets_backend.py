"""Production reads connections and Variables from AWS Secrets Manager: proven by a DAG run.

docker-compose.yaml configures ``[secrets] backend`` as the amazon provider's
``SecretsManagerBackend``. Here the same backend, with the same prefixes as compose, is
pointed at the offline stack (moto serves secretsmanager), the ``smtp_default``
connection and the ``alert_emails`` Variable are put there as secrets, and their
``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` environment variables are removed. The failure
e-mail of a failing DAG run arriving at the test SMTP server, addressed to the recipients
from the secret, proves both were resolved from Secrets Manager.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import REPO, load_dag, run_dag

TEST_DAGS = REPO / "tests" / "dags"
SECRETS_RECIPIENT = "oncall-from-secrets-manager@example.com"


def _compose_backend() -> tuple[str, dict]:
    """The secrets backend and its kwargs exactly as docker-compose.yaml sets them."""
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    env = compose["x-airflow-common"]["environment"]
    return env["AIRFLOW__SECRETS__BACKEND"], json.loads(env["AIRFLOW__SECRETS__BACKEND_KWARGS"])


def _clear_secrets_backend_caches() -> None:
    # The task SDK keeps the backends it built once a custom one is configured; the core
    # rebuilds its list whenever it holds only the two defaults (configuration.py).
    from airflow.sdk.configuration import clear_secrets_backends_cache

    clear_secrets_backends_cache()


@pytest.fixture
def secrets_manager(local_aws, airflow_db, monkeypatch):
    """Secrets Manager on the offline stack as Airflow's secrets backend, env connections gone."""
    import boto3

    backend, kwargs = _compose_backend()
    kwargs = {**kwargs, "endpoint_url": local_aws.endpoint_url, "region_name": "us-east-1"}
    local_aws.reset()
    client = boto3.client(
        "secretsmanager",
        endpoint_url=local_aws.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", backend)
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND_KWARGS", json.dumps(kwargs))
    for name in ("AIRFLOW_CONN_SMTP_DEFAULT", "AIRFLOW_VAR_ALERT_EMAILS"):
        monkeypatch.delenv(name, raising=False)
    _clear_secrets_backend_caches()
    yield client, kwargs
    monkeypatch.undo()
    _clear_secrets_backend_caches()


def _put_smtp_and_recipients(client, prefixes: dict, smtp_port: int) -> None:
    smtp_default = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": smtp_port,
        "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10, "retry_limit": 0},
    }
    client.create_secret(
        Name=f"{prefixes['connections_prefix']}/smtp_default", SecretString=json.dumps(smtp_default)
    )
    client.create_secret(Name=f"{prefixes['variables_prefix']}/alert_emails", SecretString=SECRETS_RECIPIENT)


def test_a_dag_run_resolves_smtp_default_and_a_variable_from_secrets_manager(secrets_manager, mailbox):
    import os

    client, kwargs = secrets_manager
    _put_smtp_and_recipients(client, kwargs, mailbox.port)
    assert "AIRFLOW_CONN_SMTP_DEFAULT" not in os.environ and "AIRFLOW_VAR_ALERT_EMAILS" not in os.environ

    run = run_dag(load_dag("alert_check", TEST_DAGS))
    assert run.state == "failed"
    [mail] = mailbox.wait_for(1)
    assert mail.recipients == [SECRETS_RECIPIENT]
    assert "alert_check" in mail.subject and "explode" in mail.subject


def test_the_backend_reads_connections_and_variables_under_compose_prefixes_only(secrets_manager, mailbox):
    from airflow.sdk import Connection, Variable

    client, kwargs = secrets_manager
    _put_smtp_and_recipients(client, kwargs, mailbox.port)
    # a secret outside the prefixes is not an Airflow connection or Variable
    client.create_secret(Name="smtp_default", SecretString='{"conn_type": "smtp", "host": "evil"}')
    client.create_secret(Name="alert_emails", SecretString="attacker@example.com")

    assert Connection.get("smtp_default").port == mailbox.port
    assert Variable.get("alert_emails") == SECRETS_RECIPIENT
