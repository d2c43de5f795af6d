"""Airflow plugin: the api-server refuses trigger ``conf`` keys a DAG does not declare (HTTP 400).

Entry point only; the middleware is ``pipelines.trigger_guard`` (light: no pandas).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from pipelines.trigger_guard import UndeclaredConfGuard


class UndeclaredConfGuardPlugin(AirflowPlugin):
    name = "undeclared_conf_guard"
    fastapi_root_middlewares = [
        {"middleware": UndeclaredConfGuard, "name": "Refuse undeclared trigger conf keys (400)"}
    ]
