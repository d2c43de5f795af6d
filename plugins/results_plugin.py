"""Airflow plugin: the results API and dashboard on the api-server, and a link in the UI's nav.

``fastapi_apps`` mounts ``results_api.app`` at ``/results`` on the api-server (next to
``/api/v2``), so it is served, scaled and secured with Airflow itself: no extra process.
It is mounted through ``results_api.mount.ResultsApp``, which builds the app on its first
request: every other component imports this plugin too and needs none of it.
``external_views`` adds "Results" (the dashboard) to the UI's navigation; with a ``url_route``
the UI shows the page inside its own frame at ``/plugin/results-dashboard``. The href is
relative (no leading slash) so it follows ``[api] base_url``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from results_api.mount import URL_PREFIX, ResultsApp

# A small bar-chart icon for the nav, inline so the nav needs no authenticated request.
NAV_ICON = (
    "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' "
    "fill='none' stroke='%23888' stroke-width='2'><path d='M4 20V10M10 20V4M16 20v-7M22 20H2'/></svg>"
)


class ResultsApiPlugin(AirflowPlugin):
    name = "results_api"
    fastapi_apps = [
        {"app": ResultsApp(), "url_prefix": URL_PREFIX, "name": "Pipelines results API and dashboard"}
    ]
    external_views = [
        {
            "name": "Results",
            "href": URL_PREFIX.lstrip("/") + "/dashboard",
            "destination": "nav",
            "url_route": "results-dashboard",
            "icon": NAV_ICON,
            "nav_top_level": True,
        }
    ]
