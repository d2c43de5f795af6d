"""The results API and dashboard: a FastAPI app the Airflow api-server mounts under ``/results``.

    GET /results/api/covid?granularity=daily|weekly|monthly&from=YYYY-MM-DD&to=YYYY-MM-DD[&format=csv]
    GET /results/api/covid/cumulative?from=YYYY-MM-DD&to=YYYY-MM-DD[&format=csv]   stored totals
    GET /results/api/departments?prefix=Eng&limit=20&cursor=...   names, paginated
    GET /results/api/departments/{department}
    GET /results/api/market/{region_id}?top=N&sort=sell_volume|buy_volume|...&order=desc|asc[&format=csv]
    GET /results/api/market/{region_id}/{type_id}
    GET /results/dashboard             the page (charts by the bundled uPlot, no CDN)
    GET /results/openapi.json          this API's OpenAPI document

Every route but the OpenAPI document (public, like Airflow's own) needs an Airflow token,
and each data route also the auth manager's leave to read the DAG that writes its data
(``RESULT_WRITERS``): see ``results_api.auth``. Paths in the page are relative, so the app
works under any ``[api] base_url`` and inside the Airflow UI's plugin iframe.

Every successful read carries an ``ETag`` (a hash of the body) and ``Cache-Control:
private, max-age=60, must-revalidate``: private because what a user may read depends on
the user; a repeated request with ``If-None-Match`` gets ``304 Not Modified``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import logging
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from results_api.auth import BearerCredentials, airflow_user, authenticate, dag_reader, login_url
from results_api.domain import (
    DEPARTMENT_MAX_LENGTH,
    MARKET_TOP_MAX,
    METRICS,
    REGION_ID_MAX,
    REGION_ID_MIN,
    TYPE_ID_MAX,
    Granularity,
    MarketSort,
    SortOrder,
    covid_changes,
    covid_csv,
    cumulative_csv,
    cumulative_totals,
    market_csv,
    plain_json,
    rank_market_types,
    validate_date_range,
)
from results_api.freshness import last_loaded
from results_api.models import (
    CovidChanges,
    CovidCumulative,
    Department,
    DepartmentList,
    ErrorMessage,
    MarketRegion,
    MarketType,
)
from results_api.store import ResultsStore, default_store

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"

# The page and its assets come from this server only: proves "no CDN" in the browser
# (a violation is a console error the browser test fails on); same-origin framing lets
# the Airflow UI embed it.
DASHBOARD_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'self'"
)

# Which DAG writes the data each group of endpoints serves: reading it is reading that DAG.
RESULT_WRITERS = {"covid": "covid_daily", "directory": "department_directory", "market": "market_orders"}

StoreDep = Annotated[ResultsStore, Depends(default_store)]
RegionId = Annotated[
    int, PathParam(ge=REGION_ID_MIN, le=REGION_ID_MAX, description="EVE region id, e.g. 10000002")
]
NOT_FOUND = {404: {"model": ErrorMessage}}
CSV_RESPONSE = {200: {"content": {"text/csv": {}}}}
Format = Annotated[Literal["json", "csv"], Query(description="json, or csv: what the dashboard shows")]
READ_CACHE_CONTROL = "private, max-age=60, must-revalidate"
DEPARTMENT_PAGE_MAX = 100


def _csv(body: str, filename: str) -> Response:
    return Response(
        body, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


def _encode_cursor(name: str | None) -> str | None:
    return None if name is None else base64.urlsafe_b64encode(name.encode()).decode()


# A cursor is the last name served, base64url: that name is a key of the department index,
# whose sort key DynamoDB caps at 1,024 bytes, so no cursor this API gives is longer than this.
INDEX_KEY_MAX_BYTES = 1024
CURSOR_MAX_LENGTH = 4 * -(-INDEX_KEY_MAX_BYTES // 3)


def _bad_cursor(problem: str) -> HTTPException:
    # 400 naming the field, in FastAPI's validation shape; the value is not echoed (it can be long)
    return HTTPException(
        status_code=status.HTTP_400_BAD_REQUEST,
        detail=[
            {
                "type": "value_error",
                "loc": ["query", "cursor"],
                "msg": f"not a cursor this API gave: {problem}",
            }
        ],
    )


def _decode_cursor(cursor: str | None, prefix: str) -> str | None:
    """The name to continue after; 400 for anything the API did not give for this ``prefix``.

    Checked before DynamoDB sees it: a key over the index's size, or a start key outside the
    query's ``begins_with`` range, fails the Query itself (a client's mistake, not a 503).
    """
    if not cursor:
        return None
    if len(cursor) > CURSOR_MAX_LENGTH:
        raise _bad_cursor(f"longer than {CURSOR_MAX_LENGTH} characters")
    try:
        name = base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise _bad_cursor("not base64url of a UTF-8 name") from None
    if not name or len(name.encode()) > INDEX_KEY_MAX_BYTES:
        raise _bad_cursor(f"a name of 1 to {INDEX_KEY_MAX_BYTES} bytes is expected")
    if not name.startswith(prefix):
        raise _bad_cursor("it was given for another prefix")
    return name


def _check_date_range(first: date | None, last: date | None) -> None:
    try:
        validate_date_range(first, last)
    except ValueError as error:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "to"), "msg": str(error), "input": str(last)}]
        ) from error


def _static_files() -> dict[str, Path]:
    """The files the dashboard may load, by URL path (a fixed list: nothing else is served)."""
    return {
        path.relative_to(STATIC_DIR).as_posix(): path
        for path in STATIC_DIR.rglob("*")
        if path.is_file() and path.suffix in {".js", ".css", ".svg"}
    }


def create_app() -> FastAPI:
    app = FastAPI(
        title="Pipelines results API",
        version="1.0.0",
        description=(
            "Read-only access to what the pipelines wrote to DynamoDB (covid_stats, "
            "department_directory, market_orders), behind Airflow's authentication: send the "
            "JWT from `POST /auth/token` as `Authorization: Bearer <token>`, or use the "
            "Airflow UI's login cookie. Reads are GetItem or paginated Query, never Scan."
        ),
        docs_url=None,  # FastAPI's docs pages load Swagger/ReDoc from a CDN; the JSON is enough
        redoc_url=None,
    )
    api = Depends(airflow_user)
    # A router per data set: its routes take their tag and the leave to read the DAG that
    # writes the data from one place, so no route can name one data set and ask for another.
    routes_of = {
        data: APIRouter(tags=[data], dependencies=[Depends(dag_reader(dag_id))])
        for data, dag_id in RESULT_WRITERS.items()
    }
    static_files = _static_files()

    @app.middleware("http")
    async def etag_and_cache_control(request: Request, call_next):
        """Validators on successful API reads: ETag from the body, 304 on If-None-Match."""
        response = await call_next(request)
        if request.method != "GET" or response.status_code != 200 or "/api/" not in request.url.path:
            return response
        body = b"".join([chunk async for chunk in response.body_iterator])
        tag = f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        headers.update({"ETag": tag, "Cache-Control": READ_CACHE_CONTROL, "Vary": "Authorization, Cookie"})
        sent = [t.strip() for t in request.headers.get("if-none-match", "").split(",")]
        if tag in sent or "*" in sent:
            headers.pop("content-type", None)
            return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(body, status_code=200, headers=headers)

    @app.exception_handler(ClientError)
    @app.exception_handler(BotoCoreError)
    async def dynamodb_unavailable(request: Request, error: Exception) -> JSONResponse:
        log.exception("DynamoDB read failed for %s", request.url.path)
        return JSONResponse(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            content={"detail": f"the results store could not be read: {type(error).__name__}"},
        )

    @routes_of["covid"].get(
        "/api/covid",
        response_model=CovidChanges,
        responses=CSV_RESPONSE,
        summary="New cases, deaths and recoveries per day, ISO week or month",
    )
    def covid(
        store: StoreDep,
        granularity: Annotated[Granularity, Query()] = Granularity.DAILY,
        first: Annotated[date | None, Query(alias="from", description="First day, YYYY-MM-DD")] = None,
        last: Annotated[date | None, Query(alias="to", description="Last day, YYYY-MM-DD")] = None,
        format: Format = "json",
    ) -> Any:
        """Derived from the cumulative rows of `covid_stats`: a day's figure is its total minus
        the previous stored day's; weeks (ISO, Monday first) and months are sums of those daily
        differences, restricted to days in [from, to]. Negative differences (revisions) are
        reported as is; a series that drops to zero after being positive is a gap of the source
        (null, listed in `gaps`), not a negative change. The series' first stored day counts
        from zero (`first_day`); weeks and months not covered whole are `complete: false`."""
        _check_date_range(first, last)
        baseline, days = store.covid_days(first, last)
        periods = covid_changes(days, baseline, granularity)
        if format == "csv":
            return _csv(covid_csv(periods), f"covid_{granularity}.csv")
        return {
            "granularity": granularity,
            # without a stored day before the range, the series starts in it: counted from zero
            "baseline_day": baseline.day if baseline else None,
            "periods": periods,
            "data_as_of": last_loaded(RESULT_WRITERS["covid"]),
        }

    @routes_of["covid"].get(
        "/api/covid/cumulative",
        response_model=CovidCumulative,
        responses=CSV_RESPONSE,
        summary="Cumulative cases, deaths and recoveries per stored day",
    )
    def covid_cumulative(
        store: StoreDep,
        first: Annotated[date | None, Query(alias="from", description="First day, YYYY-MM-DD")] = None,
        last: Annotated[date | None, Query(alias="to", description="Last day, YYYY-MM-DD")] = None,
        format: Format = "json",
    ) -> Any:
        """The rows of `covid_stats` as stored: totals up to and including each day in
        [from, to]. A total that drops to zero after being positive is a gap of the source
        (JHU's US recoveries from 2020-12-14): `null`, named in the day's `gaps` and counted
        in `gap_days`, never a zero."""
        _check_date_range(first, last)
        baseline, days = store.covid_days(first, last)
        rows = cumulative_totals(days, baseline)
        if format == "csv":
            return _csv(cumulative_csv(rows), "covid_cumulative.csv")
        return {
            "days": rows,
            "gap_days": {m: sum(m in row.gaps for row in rows) for m in METRICS},
            "data_as_of": last_loaded(RESULT_WRITERS["covid"]),
        }

    @routes_of["directory"].get(
        "/api/departments",
        response_model=DepartmentList,
        summary="Department names by prefix, in order, a page at a time",
    )
    def departments(
        store: StoreDep,
        prefix: Annotated[
            str, Query(max_length=DEPARTMENT_MAX_LENGTH, description="Names starting with")
        ] = "",
        limit: Annotated[int, Query(ge=1, le=DEPARTMENT_PAGE_MAX)] = 20,
        cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
    ) -> dict[str, Any]:
        """One Query on the table's `department_names` index (begins_with), never a Scan."""
        names, last_name = store.departments(prefix, limit, _decode_cursor(cursor, prefix))
        return {
            "departments": names,
            "next_cursor": _encode_cursor(last_name),
            "data_as_of": last_loaded(RESULT_WRITERS["directory"]),
        }

    @routes_of["directory"].get(
        "/api/departments/{department:path}",
        response_model=Department,
        responses=NOT_FOUND,
        summary="A department's nested record",
    )
    def department(
        store: StoreDep,
        department: Annotated[str, PathParam(min_length=1, max_length=DEPARTMENT_MAX_LENGTH)],
    ) -> dict[str, Any]:
        item = store.department(department)
        if item is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"department {department!r} is not in the directory"
            )
        record = plain_json(item)
        record["employee_count"] = len(record.get("employees", {}))
        return record

    @routes_of["market"].get(
        "/api/market/{region_id}",
        response_model=MarketRegion,
        responses={**NOT_FOUND, **CSV_RESPONSE},
        summary="A region's top item types by one aggregate",
    )
    def market_region(
        store: StoreDep,
        region_id: RegionId,
        top: Annotated[int, Query(ge=1, le=MARKET_TOP_MAX, description="How many types")] = 10,
        sort: Annotated[MarketSort, Query()] = MarketSort.SELL_VOLUME,
        order: Annotated[SortOrder, Query()] = SortOrder.DESC,
        format: Format = "json",
    ) -> Any:
        items = store.market_types(region_id)
        if not items:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no market data for region {region_id}")
        ranked = rank_market_types(items, sort, top, order)
        if format == "csv":
            return _csv(market_csv(plain_json(ranked)), f"market_{region_id}_{sort}.csv")
        return {
            "data_as_of": last_loaded(RESULT_WRITERS["market"]),
            "region_id": region_id,
            "sort": sort,
            "order": order,
            "types_total": len(items),
            "types": [plain_json(item) for item in ranked],
        }

    @routes_of["market"].get(
        "/api/market/{region_id}/{type_id}",
        response_model=MarketType,
        responses=NOT_FOUND,
        summary="One type's aggregates on a region's market",
    )
    def market_type(
        store: StoreDep,
        region_id: RegionId,
        type_id: Annotated[int, PathParam(ge=1, le=TYPE_ID_MAX, description="EVE type id, e.g. 34")],
    ) -> dict[str, Any]:
        item = store.market_type(region_id, type_id)
        if item is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"type {type_id} has no market data in region {region_id}"
            )
        return plain_json(item)

    # included here, before the page's routes, so the app's route order stays as declared
    for routes in routes_of.values():
        app.include_router(routes)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("dashboard")  # relative: stays under whatever prefix we are mounted

    @app.get("/dashboard", include_in_schema=False, response_model=None)
    async def dashboard(
        request: Request, bearer_credentials: BearerCredentials
    ) -> HTMLResponse | FileResponse:
        try:
            await authenticate(request, bearer_credentials)
        except HTTPException as refused:
            # A browser without a session: say so and offer Airflow's login, coming back here.
            target = login_url(str(request.url))
            return HTMLResponse(
                status_code=refused.status_code,
                headers=refused.headers,
                content=(
                    "<!doctype html><title>Log in to Airflow</title>"
                    "<p>The results dashboard needs an Airflow session. "
                    f'<a href="{html.escape(target)}">Log in to Airflow</a>.</p>'
                ),
            )
        return FileResponse(
            STATIC_DIR / "dashboard.html",
            headers={"Content-Security-Policy": DASHBOARD_CSP, "Cache-Control": "no-cache"},
        )

    @app.get("/static/{name:path}", include_in_schema=False, dependencies=[api])
    def static(name: str) -> FileResponse:
        path = static_files.get(name)
        if path is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no static file {name!r}")
        return FileResponse(path, headers={"Cache-Control": "no-cache"})

    return app
