"""Every route of the results app needs an Airflow token; the plugin is wired into the api-server."""

from __future__ import annotations

import asyncio

import jwt
import pytest

from tests.results_api.conftest import USERNAME

PROTECTED = [
    "/results/api/covid",
    "/results/api/covid?granularity=bogus",  # refused before any input is looked at
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
    plugin_app = ResultsApiPlugin.fastapi_apps[0]["app"]
    assert (mount.app.title, len(mount.app.routes)) == (plugin_app.title, len(plugin_app.routes))
    public = {"/openapi.json", "/"}  # the schema (public, like Airflow's own) and a redirect
    routes = {route.path for route in mount.app.routes} - public
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
    assert "Token Expired" in response.json()["detail"]


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
            "app": "fastapi.applications.FastAPI",
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
