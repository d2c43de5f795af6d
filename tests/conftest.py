"""Shared fixtures: an isolated Airflow home, the offline AWS stack, the SMTP catcher.

The Airflow settings are put in the environment here, before any test imports airflow,
so the tests never touch a developer's own AIRFLOW_HOME.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.airflow_env import airflow_env

REPO = Path(__file__).resolve().parents[1]
TEST_AIRFLOW_HOME = Path(os.environ.get("TEST_AIRFLOW_HOME", REPO / ".airflow-test"))


# Placeholders until the session fixtures start the real servers; ports are filled in then.
os.environ.update(airflow_env(TEST_AIRFLOW_HOME, "http://127.0.0.1:1", 1))
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {
            "name": name,
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(path)},
        }
        for name, path in (("dags-folder", REPO / "dags"), ("test-dags", REPO / "tests" / "dags"))
    ]
)
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"
# Signing keys: task tokens ([api_auth] jwt_secret) and the api-server's requests to the
# log server ([api] secret_key). Left empty, Airflow generates 16 random bytes, which PyJWT
# warns is short for HS512; the session gets 64-byte secrets, as docker-compose.yaml requires.
os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = secrets.token_urlsafe(64)
os.environ["AIRFLOW__API__SECRET_KEY"] = secrets.token_urlsafe(64)


# The Amazon provider announces removals with this class: a test that uses a deprecated
# operator, hook or argument fails. A marker, resolved when the test runs (after this file
# set up the Airflow environment), not a pyproject filter (resolved before it).
PROVIDER_DEPRECATIONS_ARE_ERRORS = pytest.mark.filterwarnings(
    "error::airflow.exceptions.AirflowProviderDeprecationWarning"
)


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        # prepended: a test's own filterwarnings mark (one message, with its reason) wins
        item.add_marker(PROVIDER_DEPRECATIONS_ARE_ERRORS, append=False)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB for ``dag.test()`` (created once per test session)."""
    TEST_AIRFLOW_HOME.mkdir(exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        env=os.environ.copy(),
        capture_output=True,
    )
    return TEST_AIRFLOW_HOME


@pytest.fixture(scope="session")
def local_aws() -> Iterator[object]:
    """The offline AWS stack for the whole session; Airflow's aws_default points at it."""
    from localaws import LocalAWS

    with LocalAWS() as stack:
        os.environ.update(
            {
                k: v
                for k, v in airflow_env(TEST_AIRFLOW_HOME, stack.endpoint_url, 1).items()
                if k.startswith("AIRFLOW_CONN_AWS_")  # aws_default and each pipeline's connection
            }
        )
        os.environ["AWS_ENDPOINT_URL"] = stack.endpoint_url
        yield stack


@pytest.fixture
def aws(local_aws):
    """A clean stack with every resource of ``infra/pipelines.yaml`` provisioned."""
    from infra.provision import provision

    local_aws.reset()
    provision(local_aws.endpoint_url)
    return local_aws


@pytest.fixture(scope="session")
def smtp_catcher():
    """A real SMTP server; Airflow's smtp_default points at it."""
    from devtools.smtp_catcher import SmtpCatcher

    with SmtpCatcher() as catcher:
        os.environ["AIRFLOW_CONN_SMTP_DEFAULT"] = airflow_env(
            TEST_AIRFLOW_HOME, "http://127.0.0.1:1", catcher.port
        )["AIRFLOW_CONN_SMTP_DEFAULT"]
        yield catcher


@pytest.fixture
def mailbox(smtp_catcher):
    smtp_catcher.clear()
    return smtp_catcher


def load_dag(dag_id: str, folder: Path | None = None):
    """The DAG parsed from ``<folder>/<dag_id>.py`` (folder: the project's dags/ by default)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str((folder or REPO / "dags") / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(dag_id)
    # Airflow 3.3's dag.test() cannot finish a run of a DAG with a deadline alert
    # (devtools/dag_test.py says why; `make demo` runs its DAGs through it too)
    from devtools.dag_test import without_deadline

    return without_deadline(dag)


def task_instances(run) -> list:
    """The task instances of a ``dag.test()`` run (mapped ones once per map index)."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        instances = session.query(TaskInstance).filter_by(dag_id=run.dag_id, run_id=run.run_id).all()
        session.expunge_all()
        return instances


def task_states(run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in task_instances(run)}


def run_dag(dag, *, conf: dict | None = None, logical_date=None, retries: int = 0):
    """``dag.test()`` with retries switched off, so a failure test fails at once."""
    for task in dag.tasks:
        task.retries = retries
    kwargs = {"run_conf": conf}
    if logical_date is not None:
        kwargs["logical_date"] = logical_date
    return dag.test(**kwargs)


@contextlib.contextmanager
def simple_auth_manager_env(
    passwords_dir: Path, username: str, password: str, role: str, secret_name: str
) -> Iterator[dict[str, str]]:
    """Airflow's SimpleAuthManager with one user in ``role`` and a fixed JWT secret, in
    ``os.environ`` while inside; each variable's previous value (or absence) is put back after.

    A context manager, not monkeypatch: the api-server fixtures that need it live for a
    module or a package, and the tests of other packages must not inherit these settings.
    """
    passwords = passwords_dir / "passwords.json"
    passwords.write_text(json.dumps({username: password}))
    settings = {
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{username}:{role}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": f"{secret_name}-" + "x" * 64,  # HS512 wants >= 64 bytes
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield settings
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def served(app, name: str, lifespan: str = "auto", timeout: float = 60) -> Iterator[str]:
    """An ASGI app (the api-server's) under uvicorn on a free local port, in a thread."""
    import uvicorn

    from localaws.server import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan)
    )
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start {name}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
