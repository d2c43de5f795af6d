"""Airflow plugin: the api-server refuses trigger ``conf`` keys a DAG does not declare (HTTP 400).

The same middleware bounds what a trigger may send: without a valid token the body is
never read (Airflow answers 401/403), and a body over 1 MiB is answered 413.

Entry point only; the middleware is ``pipelines.trigger_guard`` (light: no pandas).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from pipelines.trigger_guard import UndeclaredConfGuard


class UndeclaredConfGuardPlugin(AirflowPlugin):
    name = "undeclared_conf_guard"
    fastapi_root_middlewares = [
        {
            "middleware": UndeclaredConfGuard,
            "name": "Refuse undeclared trigger conf keys (400) and trigger bodies over 1 MiB (413)",
        }
    ]
