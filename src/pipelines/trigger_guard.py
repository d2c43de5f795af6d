"""Trigger-time half of the conf check: the api-server answers 400 to undeclared ``conf`` keys.

An ASGI middleware on the api-server's root app (registered by
``plugins/conf_guard_plugin.py``). Airflow 3.3 validates each *declared* param when a run
is created, but merges undeclared keys in without a schema, and offers no hook between
the request and ``create_dagrun``; so this looks at ``POST /api/v2/dags/{dag_id}/dagRuns``
(what the UI's Trigger form and REST clients use) before Airflow does. It answers only a
caller whose token is valid and who may trigger that DAG (anyone else gets Airflow's
own 401/403), and only for a DAG with that key undeclared (``pipelines.conf_check``);
everything else passes through untouched, the request body replayed as received.
"""

from __future__ import annotations

import json
import re
from http.cookies import SimpleCookie
from typing import Any

from pipelines.conf_check import undeclared_conf_message

TRIGGER_PATH = re.compile(r"/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/?$")


def _token(headers: dict[bytes, bytes]) -> str | None:
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    cookie = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
    return cookie["_token"].value if "_token" in cookie else None


async def _may_trigger(token: str | None, dag_id: str) -> bool:
    if not token:
        return False
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    manager = get_auth_manager()
    try:
        user = await manager.get_user_from_token(token)
    except Exception:  # invalid or expired: Airflow's own auth answers 401
        return False
    return manager.is_authorized_dag(
        method="POST", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
    )


def _declared_params(dag_id: str) -> list[str] | None:
    from airflow.models.serialized_dag import SerializedDagModel

    dag = SerializedDagModel.get_dag(dag_id)
    return None if dag is None else list(dag.params.keys())


class UndeclaredConfGuard:
    """Refuse a DAG run trigger whose ``conf`` holds a key the DAG does not declare."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        match = scope["type"] == "http" and scope["method"] == "POST" and TRIGGER_PATH.search(scope["path"])
        if not match:
            await self.app(scope, receive, send)
            return
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay() -> dict:
            return messages.pop(0) if messages else await receive()

        refusal = await self._refusal(match["dag_id"], body, dict(scope["headers"]))
        if refusal is None:
            await self.app(scope, replay, send)
            return
        from starlette.responses import JSONResponse

        await JSONResponse({"detail": refusal}, status_code=400)(scope, replay, send)

    async def _refusal(self, dag_id: str, body: bytes, headers: dict[bytes, bytes]) -> str | None:
        try:
            conf = json.loads(body or b"{}").get("conf")
        except (ValueError, AttributeError):
            return None  # not a JSON object: Airflow's own validation answers 422
        if not isinstance(conf, dict) or not conf or not await _may_trigger(_token(headers), dag_id):
            return None
        from starlette.concurrency import run_in_threadpool

        declared = await run_in_threadpool(_declared_params, dag_id)
        return None if declared is None else undeclared_conf_message(dag_id, declared, conf)
