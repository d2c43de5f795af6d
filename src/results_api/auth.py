"""Authentication for the results API: Airflow's own, so one login serves both.

``airflow_user`` delegates to the api-server's ``get_user`` dependency
(``airflow.api_fastapi.core_api.security``), which takes the JWT from an
``Authorization: Bearer`` header (what ``POST /auth/token`` hands out and the REST API
accepts) or, for a browser, from the ``_token`` cookie the Airflow UI sets at login, and
has the configured auth manager validate it (signature, expiry, revocation).

One deliberate difference: Airflow answers 403 for a token that is present but invalid
(forged, malformed, revoked). Here every failed authentication is a 401 with
``WWW-Authenticate: Bearer`` (RFC 6750): the caller is not authenticated, and 403 would
wrongly suggest the token was fine but lacked a permission.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

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


def login_url(next_url: str) -> str:
    """The auth manager's login page, coming back to ``next_url`` afterwards."""
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().get_url_login(next_url=next_url)
