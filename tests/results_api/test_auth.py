"""Every route of the results app needs an Airflow token; the plugin is wired into the api-server."""

from __future__ import annotations

import asyncio

import jwt
import pytest

from tests.conftest import REPO
from tests.results_api.conftest import USERNAME

PROTECTED = [
    "/results/api/covid",
    "/results/api/covid?granularity=bogus",  # refused before any input is looked at
    "/results/api/covid/cumulative",
    "/results/api/departments",
    "/results/api/departments/dept-000",
    "/results/api/market/10000002",
    "/results/api/market/10000002/34",
    "/results/dashboard",
    "/results/static/dashboard.js",
    "/results/static/vendor/uplot/uPlot.iife.min.js",
]


def test_every_route_of_the_app_is_in_the_protected_list(api_server_app):
    from results_plugin import ResultsApiPlugin
    from starlette.routing import Mount

    (mount,) = [r for r in api_server_app.routes if isinstance(r, Mount) and r.path == "/results"]
    # the plugin manager may have imported the plugin module under its own name: compare
    # the apps by what they serve, not by identity
    plugin_app = ResultsApiPlugin.fastapi_apps[0]["app"].app  # built on first use (results_api.mount)
    mounted = mount.app.app
    assert (mounted.title, len(mounted.routes)) == (plugin_app.title, len(plugin_app.routes))
    public = {"/openapi.json", "/"}  # the schema (public, like Airflow's own) and a redirect
    routes = {route.path for route in mounted.routes} - public
    covered = {p.split("?")[0] for p in PROTECTED}
    templates = {
        "/api/departments/{department:path}": "/results/api/departments/dept-000",
        "/api/market/{region_id}": "/results/api/market/10000002",
        "/api/market/{region_id}/{type_id}": "/results/api/market/10000002/34",
        "/static/{name:path}": "/results/static/dashboard.js",
    }
    assert {templates.get(r, "/results" + r) for r in routes} <= covered


@pytest.mark.parametrize("path", PROTECTED)
def test_without_a_token_every_route_is_refused_with_401(anonymous, path):
    response = anonymous.get(path)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-jwt",
        "Bearer "
        + jwt.encode(
            {"sub": "1", "aud": "apache-airflow"}, "some-other-secret-" + "y" * 64, algorithm="HS512"
        ),
        "Basic cmVzdWx0cy1yZWFkZXI6eA==",
    ],
    ids=["garbage", "foreign-signature", "basic-auth"],
)
def test_an_invalid_credential_is_refused_with_401_not_403(anonymous, authorization):
    response = anonymous.get("/results/api/covid", headers={"Authorization": authorization})
    assert response.status_code == 401, response.text


def test_an_expired_token_is_refused_with_401(api_server_app, anonymous, token):
    from airflow.api_fastapi.app import get_auth_manager

    manager = get_auth_manager()
    user = asyncio.run(manager.get_user_from_token(token))
    expired = manager.generate_jwt(user, expiration_time_in_seconds=-3600)
    response = anonymous.get("/results/api/covid", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    # Airflow says "Token Expired" or "Invalid JWT token" depending on which auth manager
    # instance validated it first in the session; either way the token is refused
    assert "token" in response.json()["detail"].lower()


def test_the_token_from_airflows_auth_endpoint_is_accepted(client):
    assert client.get("/results/api/departments/dept-000").status_code == 200
    assert client.get("/api/v2/version").status_code == 200  # the same token Airflow's REST API takes


def test_the_airflow_ui_session_cookie_is_accepted(anonymous, seeded, token):
    anonymous.cookies.set("_token", token)
    assert anonymous.get("/results/api/departments/dept-000").status_code == 200
    page = anonymous.get("/results/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_a_browser_without_a_session_gets_a_link_to_airflows_login(anonymous):
    page = anonymous.get("/results/dashboard")
    assert page.status_code == 401
    assert 'href="/auth/login?next=http%3A%2F%2Ftestserver%2Fresults%2Fdashboard"' in page.text


def test_the_openapi_document_is_public_like_airflows_own(anonymous):
    assert anonymous.get("/results/openapi.json").status_code == 200


def test_the_plugin_adds_the_dashboard_to_the_ui_navigation(client):
    plugins = client.get("/api/v2/plugins").json()["plugins"]
    (plugin,) = [p for p in plugins if p["name"] == "results_api"]
    assert plugin["fastapi_apps"] == [
        {
            "app": "results_api.mount.ResultsApp",
            "url_prefix": "/results",
            "name": plugin["fastapi_apps"][0]["name"],
        }
    ]
    (view,) = plugin["external_views"]
    assert view["href"] == "results/dashboard"  # relative: follows [api] base_url
    assert (view["destination"], view["url_route"], view["nav_top_level"]) == (
        "nav",
        "results-dashboard",
        True,
    )


def test_the_user_is_a_mere_viewer(client, token):
    # Reading results needs no more than Airflow's least role.
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == USERNAME and claims["role"] == "viewer"


# --- authorization: reading results is reading the DAG that writes them ---------------------

# One example request per data route, with the DAG whose leave it needs.
DATA_ROUTES = {
    "/results/api/covid": "covid_daily",
    "/results/api/covid/cumulative": "covid_daily",
    "/results/api/departments": "department_directory",
    "/results/api/departments/dept-000": "department_directory",
    "/results/api/market/10000002": "market_orders",
    "/results/api/market/10000002/34": "market_orders",
}
# Users who may each read exactly one DAG (and their Airflow role is the same: viewer).
SCOPED_USERS = {
    "covid-analyst": {"covid_daily"},
    "hr-analyst": {"department_directory"},
    "market-analyst": {"market_orders"},
}


@pytest.fixture
def scoped_auth_manager(api_server_app, seeded, monkeypatch):
    """The api-server's auth manager replaced by one whose viewers differ per DAG.

    SimpleAuthManager's roles are global (every viewer reads every DAG), so it cannot show
    per-DAG authorization; this subclass keeps its login, tokens and roles and adds, per
    user, the DAGs they may read (what FAB's "can read on DAG:<id>" permission does in
    production). It records every question the results API asks it.
    """
    from airflow.api_fastapi import app as airflow_app
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    class DagScopedAuthManager(SimpleAuthManager):
        def __init__(self, readable_dags: dict[str, set[str]]):
            super().__init__()
            self.readable_dags = readable_dags
            self.asked: list[tuple[str, str, object, str | None]] = []

        def is_authorized_dag(self, *, method, user, access_entity=None, details=None):
            dag_id = details.id if details else None
            self.asked.append((user.get_name(), method, access_entity, dag_id))
            by_role = super().is_authorized_dag(
                method=method, user=user, access_entity=access_entity, details=details
            )
            if self._is_admin(user):
                return by_role
            return by_role and dag_id in self.readable_dags.get(user.get_name(), set())

    manager = DagScopedAuthManager(SCOPED_USERS)
    monkeypatch.setattr(airflow_app._AuthManagerState, "instance", manager)
    return manager


def _client_for(app, manager, username: str, role: str = "viewer"):
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    token = manager.generate_jwt(SimpleAuthManagerUser(username=username, role=role))
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("username", sorted(SCOPED_USERS))
def test_each_user_reads_only_the_results_of_the_dags_they_may_read(
    api_server_app, scoped_auth_manager, username
):
    user = _client_for(api_server_app, scoped_auth_manager, username)
    for path, dag_id in DATA_ROUTES.items():
        response = user.get(path)
        if dag_id in SCOPED_USERS[username]:
            assert response.status_code == 200, (path, response.text)
        else:
            assert response.status_code == 403, (path, response.text)
            detail = response.json()["detail"]
            assert f"user {username!r} may not read DAG {dag_id!r}" in detail


def test_a_covid_reader_is_refused_every_departments_salaries(api_server_app, scoped_auth_manager):
    analyst = _client_for(api_server_app, scoped_auth_manager, "covid-analyst")
    assert analyst.get("/results/api/covid?granularity=monthly").status_code == 200
    refused = analyst.get("/results/api/departments/dept-000")
    assert refused.status_code == 403
    assert "salary" not in refused.text and "employees" not in refused.text
    # refused before the store is read: a department that does not exist is a 403 too,
    # not a 404 that would tell which departments exist
    assert analyst.get("/results/api/departments/no-such-department").status_code == 403
    # and before the input is validated
    assert analyst.get("/results/api/market/10000002?top=-1").status_code == 403


def test_the_auth_manager_is_asked_get_on_the_writing_dag(api_server_app, scoped_auth_manager):
    user = _client_for(api_server_app, scoped_auth_manager, "market-analyst")
    for path in DATA_ROUTES:
        user.get(path)
    assert scoped_auth_manager.asked == [
        ("market-analyst", "GET", None, dag_id) for dag_id in DATA_ROUTES.values()
    ]


def test_an_admin_reads_every_dags_results(api_server_app, scoped_auth_manager):
    admin = _client_for(api_server_app, scoped_auth_manager, "someone-admin", role="admin")
    assert all(admin.get(path).status_code == 200 for path in DATA_ROUTES)


def test_a_user_without_a_role_reads_nothing(api_server_app, scoped_auth_manager):
    # SimpleAuthManager's own rule, kept: the per-DAG list adds to the role, never replaces it
    scoped_auth_manager.readable_dags["no-role"] = {"covid_daily"}
    nobody = _client_for(api_server_app, scoped_auth_manager, "no-role", role="")
    assert nobody.get("/results/api/covid").status_code == 403


def test_every_data_route_names_the_dag_it_needs(api_server_app):
    """A data route added later without a DAG to ask about would serve every logged-in user."""
    from results_plugin import ResultsApiPlugin

    from results_api.app import RESULT_WRITERS

    app = ResultsApiPlugin.fastapi_apps[0]["app"].app
    readers = {f"reader_of_{dag_id}" for dag_id in RESULT_WRITERS.values()}
    data_routes = [route for route in app.routes if route.path.startswith("/api/")]
    assert len(data_routes) >= len(DATA_ROUTES)
    for route in data_routes:
        asked = {dependency.call.__name__ for dependency in route.dependant.dependencies}
        assert asked & readers, f"{route.path} authorizes no DAG read"


def test_with_fabs_auth_manager_a_dag_read_permission_is_what_lets_a_user_read(airflow_db, monkeypatch):
    """Production's auth manager (FAB, docker-compose.yaml) makes the decisions: a role with
    "can read on DAG:covid_daily" reads covid results and is refused the directory's."""
    from airflow.api_fastapi import app as airflow_app
    from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager
    from airflow.providers.fab.auth_manager.models import User
    from fastapi import HTTPException

    from results_api.app import RESULT_WRITERS
    from results_api.auth import authorize_dag_read

    monkeypatch.setattr(airflow_app._AuthManagerState, "instance", FabAuthManager())
    analyst = User(username="covid-analyst")
    analyst._perms = {("can_read", "DAG:covid_daily")}  # what FAB loads from the user's roles
    authorize_dag_read(analyst, RESULT_WRITERS["covid"])
    for data in ("directory", "market"):
        with pytest.raises(HTTPException) as refused:
            authorize_dag_read(analyst, RESULT_WRITERS[data])
        assert refused.value.status_code == 403
        assert f"may not read DAG {RESULT_WRITERS[data]!r}" in refused.value.detail
    # FAB's global "can read on DAGs" covers every DAG's results
    reader = User(username="all-dags-reader")
    reader._perms = {("can_read", "DAGs")}
    for dag_id in RESULT_WRITERS.values():
        authorize_dag_read(reader, dag_id)


def test_importing_the_plugin_builds_nothing_until_the_first_request():
    """Every Airflow component imports the plugin; only the api-server's first request builds the app."""
    import subprocess
    import sys

    probe = (
        "import sys; sys.path.insert(0, 'plugins'); import results_plugin, conf_guard_plugin; "
        "print(sorted(m for m in ('fastapi', 'boto3', 'results_api.app', 'pandas', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
