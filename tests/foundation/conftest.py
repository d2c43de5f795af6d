"""A running api-server (Airflow's whole app, plugins loaded) with a token, for links and triggers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import served, simple_auth_manager_env

USERNAME, PASSWORD = "operator", "operator-password"


@pytest.fixture(scope="module")
def running_api_server(airflow_db, tmp_path_factory) -> Iterator[str]:
    """``airflow api-server``'s app under uvicorn on a real port; an *op* user (may trigger DAGs)."""
    with simple_auth_manager_env(
        tmp_path_factory.mktemp("auth"), USERNAME, PASSWORD, "op", "foundation-tests"
    ):
        from airflow import plugins_manager
        from airflow.api_fastapi.app import create_app, purge_cached_app

        purge_cached_app()
        app = create_app()
        _, import_errors = plugins_manager._get_plugins()
        assert not import_errors, import_errors
        with served(app, "foundation-api-server") as url:
            yield url
        purge_cached_app()


@pytest.fixture(scope="module")
def api_token(running_api_server) -> str:
    import requests

    response = requests.post(
        f"{running_api_server}/auth/token", json={"username": USERNAME, "password": PASSWORD}, timeout=30
    )
    response.raise_for_status()
    return response.json()["access_token"]
