"""Authentication and authorization for the results API: Airflow's own, so one login serves both.

``airflow_user`` delegates to the api-server's ``get_user`` dependency
(``airflow.api_fastapi.core_api.security``), which takes the JWT from an
``Authorization: Bearer`` header (what ``POST /auth/token`` hands out and the REST API
accepts) or, for a browser, from the ``_token`` cookie the Airflow UI sets at login, and
has the configured auth manager validate it (signature, expiry, revocation).

One deliberate difference: Airflow answers 403 for a token that is present but invalid
(forged, malformed, revoked). Here every failed authentication is a 401 with
``WWW-Authenticate: Bearer`` (RFC 6750): the caller is not authenticated, and 403 would
wrongly suggest the token was fine but lacked a permission.

Authorization (``dag_reader``): results are the output of a DAG, so reading them is
reading that DAG. Each data endpoint asks the configured auth manager
``is_authorized_dag(method="GET", details=DagDetails(id=<the DAG that writes the data>))``,
as Airflow's own ``requires_access_dag`` does for a DAG's pages; a refusal is a 403 that
names the user and the DAG. With FAB's auth manager (production) that is the per-DAG
permission "can read on DAG:<dag_id>" a role grants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, OAuth2PasswordBearer

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

# The same two schemes the api-server declares (core_api.security.bearer_scheme and
# oauth2_scheme), declared here rather than imported: every Airflow component that loads
# plugins, task processes included, imports this module, and the api-server's security
# module costs ~1.5 s to import. It is imported on the first request instead.
bearer_scheme = HTTPBearer(auto_error=False)
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)

BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


async def airflow_user(
    request: Request,
    bearer_credentials: BearerCredentials,
    oauth_token: str | None = Depends(oauth2_scheme),  # declares the login flow in the OpenAPI
) -> BaseUser:
    """FastAPI dependency: the authenticated Airflow user, or a 401."""
    return await authenticate(request, bearer_credentials)


async def authenticate(request: Request, bearer_credentials: HTTPAuthorizationCredentials | None) -> BaseUser:
    from airflow.api_fastapi.core_api.security import get_user

    try:
        return await get_user(request=request, _oauth_token=None, bearer_credentials=bearer_credentials)
    except HTTPException as refused:
        if refused.status_code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN):
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail=f"{refused.detail}: send a valid Airflow API token (POST /auth/token) "
                "as 'Authorization: Bearer <token>', or log in to the Airflow UI",
                headers={"WWW-Authenticate": "Bearer"},
            ) from refused
        raise


def dag_reader(dag_id: str) -> Callable[..., Any]:
    """FastAPI dependency: the authenticated user, if the auth manager lets them read ``dag_id``;
    otherwise a 403 (401 first if not authenticated)."""

    def authorized_reader(user: Annotated[Any, Depends(airflow_user)]) -> BaseUser:
        # A plain ``def``: FastAPI runs it in its thread pool, so an auth manager that asks
        # its database (FAB) does not block the event loop.
        authorize_dag_read(user, dag_id)
        return user

    authorized_reader.__name__ = f"reader_of_{dag_id}"
    return authorized_reader


def authorize_dag_read(user: BaseUser, dag_id: str) -> None:
    """Raise a 403 unless Airflow's auth manager allows ``user`` to read (GET) the DAG ``dag_id``."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.models.dag import DagModel

    # The DAG's team (multi-team deployments), looked up as Airflow's requires_access_dag does.
    details = DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id))
    if not get_auth_manager().is_authorized_dag(method="GET", user=user, details=details):
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail=f"user {user.get_name()!r} may not read DAG {dag_id!r}, which writes these "
            "results: ask an Airflow admin for read access to that DAG",
        )


def login_url(next_url: str) -> str:
    """The auth manager's login page, coming back to ``next_url`` afterwards."""
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().get_url_login(next_url=next_url)
