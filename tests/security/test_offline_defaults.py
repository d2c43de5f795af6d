"""No offline default in a production path: outside the offline stack a missing setting fails at once, named.

The offline stack is recognised by ``PIPELINES_OFFLINE_STACK=1``, which only the offline
tooling sets (``devtools.airflow_env``); a deployment never does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from pipelines import config
from tests.conftest import REPO

OFFLINE_ACCOUNT = "123456789012"
QUEUE = "https://sqs.eu-west-1.amazonaws.com/210987654321/directory-events"


def test_the_queue_url_has_the_offline_default_only_on_the_offline_stack():
    assert config.directory_events_queue_url({"PIPELINES_OFFLINE_STACK": "1"}) == (
        f"https://sqs.us-east-1.amazonaws.com/{OFFLINE_ACCOUNT}/directory-events"
    )
    assert config.directory_events_queue_url({"DIRECTORY_EVENTS_QUEUE_URL": QUEUE}) == QUEUE
    for production in ({}, {"PIPELINES_OFFLINE_STACK": "0"}, {"DIRECTORY_EVENTS_QUEUE_URL": "  "}):
        with pytest.raises(
            config.MissingSetting, match="DIRECTORY_EVENTS_QUEUE_URL.*DirectoryEventsQueueUrl"
        ):
            config.directory_events_queue_url(production)


def _import_the_directory_dag(extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PIPELINES_OFFLINE_STACK", "DIRECTORY_EVENTS_QUEUE_URL")
    }
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('department_directory', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "print(module.QUEUE_URL)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(REPO / "dags" / "department_directory.py")],
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_directory_dag_fails_to_import_without_its_queue_url_outside_the_offline_stack():
    missing = _import_the_directory_dag({})
    assert missing.returncode != 0
    assert "MissingSetting: DIRECTORY_EVENTS_QUEUE_URL is not set" in missing.stderr
    configured = _import_the_directory_dag({"DIRECTORY_EVENTS_QUEUE_URL": QUEUE})
    assert configured.returncode == 0, configured.stderr
    assert configured.stdout.strip().splitlines()[-1] == QUEUE


def test_the_bucket_variable_is_required_outside_the_offline_stack(monkeypatch):
    from airflow.sdk import Variable

    assert config.data_lake_bucket_template({}) == "{{ var.value.data_lake_bucket }}"  # KeyError names it
    assert "pipelines-data-lake" in config.data_lake_bucket_template({"PIPELINES_OFFLINE_STACK": "1"})
    monkeypatch.setattr(Variable, "get", staticmethod(lambda key, default=None: default))
    monkeypatch.delenv("PIPELINES_OFFLINE_STACK", raising=False)
    with pytest.raises(config.MissingSetting, match="Variable data_lake_bucket is not set"):
        config.data_lake_bucket()
    monkeypatch.setenv("PIPELINES_OFFLINE_STACK", "1")
    assert config.data_lake_bucket() == "pipelines-data-lake"
    monkeypatch.setattr(Variable, "get", staticmethod(lambda key, default=None: "prod-lake"))
    monkeypatch.delenv("PIPELINES_OFFLINE_STACK")
    assert config.data_lake_bucket() == "prod-lake"


def test_no_offline_account_or_local_endpoint_is_written_into_the_production_code():
    """The offline account and local endpoints live in pipelines.config's offline defaults only."""
    offenders = []
    for folder in ("src", "dags", "plugins"):
        for path in (REPO / folder).rglob("*.py"):
            if path == REPO / "src" / "pipelines" / "config.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"123456789012|localhost|127\.0\.0\.1|:4566\b", line):
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_offline_tooling_says_it_is_offline_and_compose_production_does_not():
    from devtools.airflow_env import airflow_env

    assert airflow_env(REPO / ".x", "http://127.0.0.1:1", 1)["PIPELINES_OFFLINE_STACK"] == "1"
    compose = (REPO / "docker-compose.yaml").read_text()
    assert "PIPELINES_OFFLINE_STACK: ${PIPELINES_OFFLINE_STACK:-}" in compose  # only what .env says
