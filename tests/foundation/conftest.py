"""A running api-server (Airflow's whole app, plugins loaded) with a token, for links and triggers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests.conftest import served

USERNAME, PASSWORD = "operator", "operator-password"


@pytest.fixture(scope="module")
def running_api_server(airflow_db, tmp_path_factory) -> Iterator[str]:
    """``airflow api-server``'s app under uvicorn on a real port; an *op* user (may trigger DAGs)."""

    passwords = tmp_path_factory.mktemp("auth") / "passwords.json"
    passwords.write_text(json.dumps({USERNAME: PASSWORD}))
    settings = {
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:op",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": "foundation-tests-" + "x" * 64,  # HS512 wants >= 64 bytes
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    from airflow import plugins_manager
    from airflow.api_fastapi.app import create_app, purge_cached_app

    purge_cached_app()
    app = create_app()
    _, import_errors = plugins_manager._get_plugins()
    assert not import_errors, import_errors
    with served(app, "foundation-api-server") as url:
        yield url
    purge_cached_app()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def api_token(running_api_server) -> str:
    import requests

    response = requests.post(
        f"{running_api_server}/auth/token", json={"username": USERNAME, "password": PASSWORD}, timeout=30
    )
    response.raise_for_status()
    return response.json()["access_token"]
