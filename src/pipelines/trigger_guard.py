"""Trigger-time half of the conf check: the api-server answers 400 to undeclared ``conf`` keys.

An ASGI middleware on the api-server's root app (registered by
``plugins/conf_guard_plugin.py``). Airflow 3.3 validates each *declared* param when a run
is created, but merges undeclared keys in without a schema, and offers no hook between
the request and ``create_dagrun``; so this looks at ``POST /api/v2/dags/{dag_id}/dagRuns``
(what the UI's Trigger form and REST clients use) before Airflow does. It answers only a
caller whose token is valid and who may trigger that DAG (anyone else gets Airflow's
own 401/403), and only for a DAG with that key undeclared (``pipelines.conf_check``);
everything else passes through untouched, the request body replayed as received.

The api-server also serves the UI and the workers' Execution API, so this must never let
one request hold its event loop or its memory. It decides on the headers first:

* no token, or one Airflow's own validator refuses (``get_user_from_token``: signature,
  expiry, revocation): Airflow answers 401/403 before it needs the body, so the request
  goes on to Airflow with an empty body, and the one the client sends is never read
  (uvicorn discards what still arrives after the answer). Not so when the auth manager
  registers its own request middleware (``get_fastapi_middlewares``: the simple auth
  manager's all-admins mode, FAB's public role): those may let a token-less request in,
  so such a request is handled like one with a valid token, size limits included.
* ``Content-Length`` over ``MAX_TRIGGER_BODY`` (1 MiB; a trigger body is a few hundred
  bytes of conf): 413 at once, before any byte of the body is read. A body without a
  length (chunked) is counted as it arrives and refused with 413 the moment it grows past
  the limit. Whatever of a refused body still arrives after the answer, uvicorn reads and
  drops as it comes (keep-alive, so the client reads the answer rather than a reset).
* the body is kept as a list of the received chunks, joined once (no ``body +=``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any

from pipelines.conf_check import undeclared_conf_message

TRIGGER_PATH = re.compile(r"/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/?$")
MAX_TRIGGER_BODY = 1024 * 1024
JWT_COOKIE = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN

Receive = Callable[[], Awaitable[dict]]


def _token(headers: dict[bytes, bytes]) -> str | None:
    """The JWT the request carries, as Airflow's ``get_user`` picks it: Bearer first, then the cookie."""
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    try:
        cookie = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
    except CookieError:
        return None
    return cookie[JWT_COOKIE].value if JWT_COOKIE in cookie else None


async def _user_of(token: str | None) -> Any | None:
    """The user Airflow's own validator makes of the token; None when there is none or it is refused."""
    if not token:
        return None
    from airflow.api_fastapi.app import get_auth_manager

    try:
        return await get_auth_manager().get_user_from_token(token)
    except Exception:  # invalid, expired or revoked: Airflow's own auth answers 401/403
        return None


def _anonymous_access_possible() -> bool:
    """Whether the auth manager may let a request without a valid token in (its own middleware)."""
    from airflow.api_fastapi.app import get_auth_manager

    return bool(get_auth_manager().get_fastapi_middlewares())


def _may_trigger(user: Any, dag_id: str) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return get_auth_manager().is_authorized_dag(
        method="POST", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
    )


def _declared_params(dag_id: str) -> list[str] | None:
    from airflow.models.serialized_dag import SerializedDagModel

    dag = SerializedDagModel.get_dag(dag_id)
    return None if dag is None else list(dag.params.keys())


def _declared_length(headers: dict[bytes, bytes]) -> int | None:
    value = headers.get(b"content-length", b"").strip()
    return int(value) if value.isdigit() else None


class BodyTooLarge(Exception):
    pass


async def collect_body(receive: Receive, limit: int) -> tuple[list[dict], bytes]:
    """The request's messages (to replay) and its body; BodyTooLarge once it passes ``limit``.

    Chunks are kept in a list and joined once: linear in the body's size.
    """
    messages, chunks, size = [], [], 0
    while True:
        message = await receive()
        messages.append(message)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if message["type"] != "http.request" or not message.get("more_body"):
            return messages, b"".join(chunks)


def _without_body(receive: Receive) -> Receive:
    """A receive that gives the app an empty, complete body, and never reads the client's."""
    delivered = False

    async def empty() -> dict:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        # Asked again (a disconnect listener): the body was never read, so the real receive
        # would hand over body chunks first; report the end of the exchange instead.
        return {"type": "http.disconnect"}

    return empty


async def _too_large(scope: dict, receive: Receive, send: Any) -> None:
    from starlette.responses import JSONResponse

    response = JSONResponse(
        {"detail": f"a DAG run trigger body may be at most {MAX_TRIGGER_BODY:,} bytes"}, status_code=413
    )
    await response(scope, receive, send)


class UndeclaredConfGuard:
    """Refuse a DAG run trigger whose ``conf`` holds a key the DAG does not declare."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Receive, send: Any) -> None:
        match = scope["type"] == "http" and scope["method"] == "POST" and TRIGGER_PATH.search(scope["path"])
        if not match:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        user = await _user_of(_token(headers))
        if user is None and not _anonymous_access_possible():
            # Airflow answers 401/403 from the headers alone: the body is not needed
            await self.app(scope, _without_body(receive), send)
            return
        declared_length = _declared_length(headers)
        if declared_length is not None and declared_length > MAX_TRIGGER_BODY:
            await _too_large(scope, _without_body(receive), send)
            return
        try:
            messages, body = await collect_body(receive, MAX_TRIGGER_BODY)
        except BodyTooLarge:
            await _too_large(scope, _without_body(receive), send)
            return

        async def replay() -> dict:
            return messages.pop(0) if messages else await receive()

        refusal = None if user is None else await self._refusal(match["dag_id"], body, user)
        if refusal is None:
            await self.app(scope, replay, send)
            return
        from starlette.responses import JSONResponse

        await JSONResponse({"detail": refusal}, status_code=400)(scope, replay, send)

    async def _refusal(self, dag_id: str, body: bytes, user: Any) -> str | None:
        try:
            conf = json.loads(body or b"{}").get("conf")
        except (ValueError, AttributeError):
            return None  # not a JSON object: Airflow's own validation answers 422
        if not isinstance(conf, dict) or not conf or not _may_trigger(user, dag_id):
            return None
        from starlette.concurrency import run_in_threadpool

        declared = await run_in_threadpool(_declared_params, dag_id)
        return None if declared is None else undeclared_conf_message(dag_id, declared, conf)
