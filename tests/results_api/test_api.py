"""The results API in Airflow's api-server app, against tables the pipelines seeded offline.

Expected figures are computed here again, independently of the API's code: COVID with
pandas straight from the NYT and JHU files, the directory with the csv module from the
CSV, the market from the raw ESI orders and the real ESI sample orders.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import date

import pandas as pd
import pytest

from tests.results_api.conftest import (
    COVID_CASES,
    COVID_RECOVERIES,
    DIRECTORY_CSV,
    ESI_REGION,
    MARKET_SAMPLE,
    SAMPLE_REGION,
)

# ---------------------------------------------------------------- independent computations


def expected_covid(granularity: str, first: str | None = None, last: str | None = None):
    """[(first day, last day, new cases, new deaths, new recoveries)] per period, by pandas."""
    cases = pd.read_csv(COVID_CASES)
    recoveries = pd.read_csv(COVID_RECOVERIES, keep_default_na=False)
    us_total = recoveries[(recoveries["Country/Region"] == "US") & (recoveries["Province/State"] == "")]
    merged = cases.merge(us_total[["Date", "Recovered"]], left_on="date", right_on="Date")
    totals = merged.set_index(pd.to_datetime(merged["date"]))[["cases", "deaths", "Recovered"]].sort_index()
    # a cumulative figure back at zero after being positive: the source stopped reporting it
    totals = totals.astype("float64").mask((totals <= 0) & (totals.cummax() > 0))
    daily = totals.diff()
    daily.iloc[0] = totals.iloc[0]  # the series' first stored day counts from zero
    if first:
        daily = daily[daily.index >= pd.Timestamp(first)]
    if last:
        daily = daily[daily.index <= pd.Timestamp(last)]
    keys = {
        "daily": daily.index,
        "weekly": daily.index.to_period("W-SUN"),
        "monthly": daily.index.to_period("M"),
    }
    groups = daily.assign(day=daily.index).groupby(keys[granularity])
    summed = groups[["cases", "deaths", "Recovered"]].sum(min_count=1)
    bounds = groups["day"].agg(["min", "max"])
    def number(value):
        return None if pd.isna(value) else int(value)

    return [
        (lo.date(), hi.date(), number(c), number(d), number(r))
        for (lo, hi), (c, d, r) in zip(
            bounds.itertuples(index=False), summed.itertuples(index=False), strict=True
        )
    ]


def as_tuples(periods: list[dict]) -> list[tuple]:
    return [
        (
            date.fromisoformat(p["start"]),
            date.fromisoformat(p["end"]),
            p["new_cases"],
            p["new_deaths"],
            p["new_recoveries"],
        )
        for p in periods
    ]


def totals_per_type(orders: list[dict]) -> dict[int, dict]:
    per_type: dict[int, dict] = defaultdict(
        lambda: {
            "sell_volume": 0,
            "buy_volume": 0,
            "sell_orders": 0,
            "buy_orders": 0,
            "sells": [],
            "buys": [],
        }
    )
    for order in orders:
        side = "buy" if order["is_buy_order"] else "sell"
        entry = per_type[order["type_id"]]
        entry[f"{side}_volume"] += order["volume_remain"]
        entry[f"{side}_orders"] += 1
        entry[f"{side}s"].append(order)
    return per_type


# ---------------------------------------------------------------- COVID


@pytest.mark.parametrize("granularity", ["daily", "weekly", "monthly"])
def test_covid_figures_match_an_independent_computation_from_the_real_files(client, granularity):
    response = client.get("/results/api/covid", params={"granularity": granularity})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["granularity"] == granularity
    assert body["baseline_day"] is None  # no stored day before: the series starts here
    assert body["periods"][0]["start"] == "2020-01-22" and body["periods"][0]["first_day"]
    expected = expected_covid(granularity)
    assert as_tuples(body["periods"]) == expected
    assert len(expected) == {"daily": 420, "weekly": 61, "monthly": 15}[granularity]


def test_recoveries_that_stop_being_reported_are_a_gap_not_a_negative_change(client):
    periods = client.get("/results/api/covid", params={"from": "2020-12-13", "to": "2020-12-14"}).json()[
        "periods"
    ]
    # JHU's US Recovered falls from 6,298,082 to 0 on 2020-12-14: the source stopped.
    assert [(p["period"], p["new_recoveries"] is None, p["gaps"]) for p in periods] == [
        ("2020-12-13", False, []),
        ("2020-12-14", True, ["recoveries"]),
    ]
    monthly = client.get("/results/api/covid", params={"granularity": "monthly"}).json()["periods"]
    assert all(p["new_recoveries"] is None or p["new_recoveries"] >= 0 for p in monthly)
    december = next(p for p in monthly if p["period"] == "2020-12")
    assert december["gaps"] == ["recoveries"] and december["new_recoveries"] >= 0
    assert monthly[-1]["complete"] is False  # the data end on 2022-04-19, mid-month


def test_a_range_measures_its_first_day_against_the_stored_day_before_it(client):
    body = client.get(
        "/results/api/covid", params={"granularity": "monthly", "from": "2020-06-10", "to": "2020-08-20"}
    ).json()
    assert body["baseline_day"] == "2020-06-09"
    assert as_tuples(body["periods"]) == expected_covid("monthly", "2020-06-10", "2020-08-20")
    assert [p["period"] for p in body["periods"]] == ["2020-06", "2020-07", "2020-08"]
    assert (body["periods"][0]["start"], body["periods"][-1]["end"]) == ("2020-06-10", "2020-08-20")


def test_a_range_outside_the_data_has_no_periods(client):
    body = client.get("/results/api/covid", params={"from": "2019-01-01", "to": "2019-12-31"}).json()
    assert {k: body[k] for k in ("granularity", "baseline_day", "periods")} == {
        "granularity": "daily", "baseline_day": None, "periods": []
    }  # fmt: skip


def test_cumulative_totals_are_the_stored_rows_with_hand_checked_figures(client):
    body = client.get(
        "/results/api/covid/cumulative", params={"from": "2020-12-13", "to": "2020-12-14"}
    ).json()
    # NYT us.csv: 2020-12-13 16,368,898 cases, 299,338 deaths; 2020-12-14 16,569,783 and 301,016.
    # JHU US Recovered: 6,298,082 on 2020-12-13, then 0 (reporting stopped): a gap, not a zero.
    assert body["days"] == [
        {"day": "2020-12-13", "cases": 16368898, "deaths": 299338, "recoveries": 6298082, "gaps": []},
        {"day": "2020-12-14", "cases": 16569783, "deaths": 301016, "recoveries": None,
         "gaps": ["recoveries"]},
    ]  # fmt: skip
    assert body["gap_days"] == {"cases": 0, "deaths": 0, "recoveries": 1}
    assert "data_as_of" in body
    first = client.get("/results/api/covid/cumulative", params={"to": "2020-01-23"}).json()["days"]
    # the merged series starts on JHU's first day, 2020-01-22: 1 case, no deaths, no recoveries
    assert [(d["day"], d["cases"], d["deaths"], d["recoveries"]) for d in first] == [
        ("2020-01-22", 1, 0, 0),
        ("2020-01-23", 1, 0, 0),
    ]


def test_every_cumulative_day_matches_the_source_files_read_independently(client):
    cases = pd.read_csv(COVID_CASES)
    recoveries = pd.read_csv(COVID_RECOVERIES, keep_default_na=False)
    us_total = recoveries[(recoveries["Country/Region"] == "US") & (recoveries["Province/State"] == "")]
    merged = cases.merge(us_total[["Date", "Recovered"]], left_on="date", right_on="Date")
    expected = [
        (row.date, row.cases, row.deaths, None if row.date >= "2020-12-14" else row.Recovered)
        for row in merged.itertuples()
    ]
    body = client.get("/results/api/covid/cumulative").json()
    assert [(d["day"], d["cases"], d["deaths"], d["recoveries"]) for d in body["days"]] == expected
    assert len(expected) == 420
    # every US day from 2020-12-14 to 2021-03-16 (the file's end) lacks recoveries: 93 days
    assert body["gap_days"] == {"cases": 0, "deaths": 0, "recoveries": 93}
    assert {d["day"] for d in body["days"] if d["gaps"]} == {r[0] for r in expected if r[3] is None}


def test_cumulative_csv_etag_and_validation_follow_the_other_endpoints(client, anonymous):
    params = {"from": "2020-12-12", "to": "2020-12-14"}
    response = client.get("/results/api/covid/cumulative", params={**params, "format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert 'filename="covid_cumulative.csv"' in response.headers["content-disposition"]
    assert response.text.splitlines() == [
        "day,cases,deaths,recoveries,gaps",
        "2020-12-12,16184679,297981,6246605,",
        "2020-12-13,16368898,299338,6298082,",
        "2020-12-14,16569783,301016,,recoveries",
    ]
    first = client.get("/results/api/covid/cumulative", params=params)
    tag = first.headers["etag"]
    again = client.get("/results/api/covid/cumulative", params=params, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.headers["cache-control"].startswith("private, max-age=60")
    refused = client.get("/results/api/covid/cumulative", params={"from": "2020-05-02", "to": "2020-05-01"})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", "to"]
    assert anonymous.get("/results/api/covid/cumulative").status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"granularity": "yearly"}, "granularity"),
        ({"from": "2020-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2020-05-02", "to": "2020-05-01"}, "to"),
    ],
)
def test_bad_covid_input_is_refused_naming_the_field(client, params, field):
    response = client.get("/results/api/covid", params=params)
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["query", field]]


# ---------------------------------------------------------------- departments


def directory_rows() -> dict[str, dict[str, dict[str, str]]]:
    nested: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
    with DIRECTORY_CSV.open(newline="") as handle:
        for row in csv.DictReader(handle):
            department, employee = row.pop("department"), row.pop("employee")
            nested[department][employee] = {k: v for k, v in row.items() if v.strip()}
    return nested


def same_fact(cell: str, value) -> bool:
    if isinstance(value, bool):
        return cell.strip().lower() == str(value).lower()
    if isinstance(value, int | float):
        return float(cell) == value and not (cell.startswith("0") and len(cell) > 1 and cell[1] != ".")
    return value == cell


def test_every_department_is_served_as_the_nested_record_of_its_csv_rows(client):
    expected = directory_rows()
    assert len(expected) > 5
    for department, employees in expected.items():
        response = client.get(f"/results/api/departments/{department}")
        assert response.status_code == 200, response.text
        record = response.json()
        assert record["department"] == department
        assert record["employee_count"] == len(employees)
        assert record["source_key"] == "directory/incoming/staff.csv"
        assert set(record["employees"]) == set(employees)
        for employee, facts in employees.items():
            served = record["employees"][employee]
            assert set(served) == set(facts), employee
            assert all(same_fact(facts[name], served[name]) for name in facts), (employee, served, facts)
    sample = client.get("/results/api/departments/dept-000").json()["employees"]
    first = next(iter(sample.values()))
    assert isinstance(first["salary"], int) and isinstance(first["remote"], bool)
    assert isinstance(first["phone"], str) and first["phone"].startswith("0")  # an id, not a number


def test_an_absent_department_is_a_404_with_a_message(client):
    response = client.get("/results/api/departments/no-such-department")
    assert response.status_code == 404
    assert response.json() == {"detail": "department 'no-such-department' is not in the directory"}


def test_a_department_name_with_a_slash_or_spaces_is_looked_up_as_given(client):
    assert client.get("/results/api/departments/R%26D%2FLabs%20Gent").json()["detail"] == (
        "department 'R&D/Labs Gent' is not in the directory"
    )


def test_a_department_name_longer_than_a_key_may_be_is_refused(client):
    response = client.get("/results/api/departments/" + "x" * 256)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "department"]


# ---------------------------------------------------------------- market


def test_a_regions_top_types_match_the_raw_esi_orders(client, seeded):
    per_type = totals_per_type(seeded.esi_orders)
    for sort in ("sell_volume", "buy_volume", "sell_orders"):
        response = client.get(f"/results/api/market/{ESI_REGION}", params={"top": 15, "sort": sort})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["types_total"] == len(per_type)
        expected = sorted(per_type, key=lambda t: (-per_type[t][sort], t))[:15]
        assert [t["type_id"] for t in body["types"]] == expected
        assert [t[sort] for t in body["types"]] == [per_type[t][sort] for t in expected]


def test_ascending_order_ranks_the_cheapest_sell_offers_first(client, seeded):
    per_type = totals_per_type(seeded.esi_orders)
    cheapest = {t: min(o["price"] for o in e["sells"]) for t, e in per_type.items() if e["sells"]}
    body = client.get(
        f"/results/api/market/{ESI_REGION}", params={"top": 5, "sort": "min_sell_price", "order": "asc"}
    ).json()
    assert [t["min_sell_price"] for t in body["types"]] == sorted(round(p, 2) for p in cheapest.values())[:5]


def test_one_type_of_the_real_esi_sample_has_the_figures_of_its_seven_orders(client):
    orders = json.loads(MARKET_SAMPLE.read_text())
    sells = [o for o in orders if not o["is_buy_order"]]
    buys = [o for o in orders if o["is_buy_order"]]
    response = client.get(f"/results/api/market/{SAMPLE_REGION}/34")
    assert response.status_code == 200, response.text
    served = response.json()
    sell_volume = sum(o["volume_remain"] for o in sells)
    assert served == {
        "region_id": SAMPLE_REGION,
        "type_id": 34,
        "type_name": "Tritanium",  # EVE's name for type 34 (sample_data/market/PROVENANCE.md)
        "sell_volume": sell_volume,
        "buy_volume": sum(o["volume_remain"] for o in buys),
        "sell_orders": 5,
        "buy_orders": 2,
        "min_sell_price": min(o["price"] for o in sells),
        "max_buy_price": max(o["price"] for o in buys),
        "sell_avg_price": round(sum(o["price"] * o["volume_remain"] for o in sells) / sell_volume, 2),
        "buy_avg_price": pytest.approx(
            round(
                sum(o["price"] * o["volume_remain"] for o in buys) / sum(o["volume_remain"] for o in buys), 2
            )
        ),
        "last_modified": "Fri, 09 Aug 2019 20:30:00 GMT",
    }


def test_market_types_carry_their_eve_names_and_an_unknown_name_is_null(client):
    body = client.get(f"/results/api/market/{ESI_REGION}", params={"top": 1000, "sort": "sell_orders"}).json()
    names = {t["type_id"]: t["type_name"] for t in body["types"]}
    # real EVE names, by hand: 18 Plagioclase, 19 Spodumain, 20 Kernite, 34 Tritanium
    assert (names[18], names[19], names[20], names[34]) == ("Plagioclase", "Spodumain", "Kernite", "Tritanium")
    assert names[23] is None  # no EVE type has id 23: ESI cannot name it, the dashboard shows the id
    assert client.get(f"/results/api/market/{ESI_REGION}/20").json()["type_name"] == "Kernite"
    rows = csv.DictReader(
        client.get(f"/results/api/market/{ESI_REGION}", params={"top": 1000, "format": "csv"}).text.splitlines()
    )
    assert {r["type_id"]: r["type_name"] for r in rows if r["type_id"] in ("18", "23")} == {
        "18": "Plagioclase", "23": ""
    }  # fmt: skip


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/results/api/market/10000099999", {}, 422, "region_id"),
        ("/results/api/market/abc", {}, 422, "region_id"),
        ("/results/api/market/10000002", {"top": 0}, 422, "top"),
        ("/results/api/market/10000002", {"top": 1001}, 422, "top"),
        ("/results/api/market/10000002", {"sort": "price"}, 422, "sort"),
        ("/results/api/market/10000002", {"order": "sideways"}, 422, "order"),
        ("/results/api/market/10000002/0", {}, 422, "type_id"),
        ("/results/api/market/10000002/x34", {}, 422, "type_id"),
    ],
)
def test_bad_market_input_is_refused_naming_the_field(client, path, params, status, field):
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.json()["detail"][0]["loc"][-1] == field


def test_unknown_market_region_and_type_are_404s_with_a_message(client):
    assert client.get("/results/api/market/10000001").json() == {
        "detail": "no market data for region 10000001"
    }
    response = client.get(f"/results/api/market/{SAMPLE_REGION}/35")
    assert response.status_code == 404
    assert response.json() == {"detail": f"type 35 has no market data in region {SAMPLE_REGION}"}


# ---------------------------------------------------------------- how the tables are read


def test_reads_are_getitem_and_query_never_scan(client):
    from results_api.store import default_store

    operations: list[str] = []

    def record(model, **_):
        operations.append(model.name)

    events = default_store().client.meta.events
    events.register("before-call.dynamodb", record)
    try:
        client.get("/results/api/covid", params={"granularity": "weekly"})
        client.get("/results/api/covid", params={"from": "2020-05-01"})
        client.get("/results/api/departments/dept-001")
        client.get(f"/results/api/market/{ESI_REGION}", params={"top": 3})
        client.get(f"/results/api/market/{SAMPLE_REGION}/34")
    finally:
        events.unregister("before-call.dynamodb", record)
    assert set(operations) == {"Query", "GetItem"}


def test_queries_follow_every_page_of_a_partition(seeded):
    from results_api.store import ResultsStore, default_store

    client = default_store().client
    whole = ResultsStore(client)
    paged = ResultsStore(client, page_size=100)  # force many pages on the seeded partitions
    queries: list[str] = []

    def record(model, **_):
        queries.append(model.name)

    client.meta.events.register("before-call.dynamodb.Query", record)
    try:
        paged_types = paged.market_types(ESI_REGION)
        paged_days = paged.covid_days(None, None)
    finally:
        client.meta.events.unregister("before-call.dynamodb.Query", record)
    assert paged_types == whole.market_types(ESI_REGION)
    assert paged_days == whole.covid_days(None, None)
    assert len(paged_types) > 1000 and len(paged_days[1]) == 420
    assert len(queries) >= len(paged_types) // 100 + 420 // 100


def test_a_dynamodb_outage_is_a_503_not_a_stack_trace(client, monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    from results_api.store import default_store

    def unreachable(**_):
        raise EndpointConnectionError(endpoint_url="http://dynamodb.invalid")

    monkeypatch.setattr(default_store().client, "get_item", unreachable)
    response = client.get("/results/api/departments/dept-001")
    assert response.status_code == 503
    assert response.json() == {"detail": "the results store could not be read: EndpointConnectionError"}


# ---------------------------------------------------------------- OpenAPI


def test_the_openapi_document_describes_every_endpoint_its_parameters_and_the_auth(anonymous):
    document = anonymous.get("/results/openapi.json").json()
    assert set(document["paths"]) == {
        "/api/covid",
        "/api/covid/cumulative",
        "/api/departments",
        "/api/departments/{department}",
        "/api/market/{region_id}",
        "/api/market/{region_id}/{type_id}",
    }
    assert document["servers"] == [{"url": "/results"}]
    covid = document["paths"]["/api/covid"]["get"]
    assert {p["name"] for p in covid["parameters"]} == {"granularity", "from", "to", "format"}
    market = document["paths"]["/api/market/{region_id}"]["get"]
    assert {p["name"] for p in market["parameters"]} == {"region_id", "top", "sort", "order", "format"}
    assert "404" in document["paths"]["/api/departments/{department}"]["get"]["responses"]
    assert {"HTTPBearer", "OAuth2PasswordBearer"} <= set(document["components"]["securitySchemes"])
    assert all(operation["get"].get("security") for operation in document["paths"].values())


# ---------------------------------------------------------------- lists, CSV, caching, freshness


def test_the_department_list_pages_through_every_name_in_order_by_prefix(client):
    with DIRECTORY_CSV.open(newline="") as handle:
        names = sorted({row["department"] for row in csv.DictReader(handle)})
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/results/api/departments", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["departments"]) <= 2
        seen += body["departments"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == names
    prefix = names[0][:2]
    found = client.get("/results/api/departments", params={"prefix": prefix}).json()["departments"]
    assert found == [n for n in names if n.startswith(prefix)] and found
    empty = client.get("/results/api/departments", params={"prefix": "zz-none"}).json()
    assert (empty["departments"], empty["next_cursor"]) == ([], None)


def _cursor(name: str) -> str:
    import base64

    return base64.urlsafe_b64encode(name.encode()).decode()


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"cursor": "%%%not-base64"}, "not base64url of a UTF-8 name"),
        ({"cursor": _cursor("dept-001")[:-1]}, "not base64url"),  # padding cut: not what the API gives
        ({"cursor": "__4="}, "not base64url of a UTF-8 name"),  # bytes ff fe: not UTF-8
        # a name outside the prefix: DynamoDB refuses a start key outside the key condition
        ({"prefix": "dept-00", "cursor": _cursor("zzz")}, "it was given for another prefix"),
        ({"prefix": "dept-00", "cursor": _cursor("dept-010")}, "it was given for another prefix"),
        # the index's sort key holds at most 1,024 bytes: no name served can be longer
        ({"cursor": _cursor("d" * 1025)}, "a name of 1 to 1024 bytes is expected"),
        ({"cursor": _cursor("d" * 5000)}, "longer than 1368 characters"),
        ({"cursor": "A" * 60_000}, "longer than 1368 characters"),  # refused before decoding
    ],
)
def test_a_cursor_the_api_did_not_give_is_a_400_naming_it_never_a_503(client, caplog, params, problem):
    response = client.get("/results/api/departments", params=params)
    assert response.status_code == 400, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "cursor"] and problem in error["msg"]
    assert "DynamoDB read failed" not in caplog.text and "Traceback" not in caplog.text


def test_cursors_page_through_a_prefix_to_its_end(client):
    with DIRECTORY_CSV.open(newline="") as handle:
        names = {row["department"] for row in csv.DictReader(handle)}
    expected = sorted(name for name in names if name.startswith("dept-00"))
    seen, cursor = [], None
    while True:
        params = {"prefix": "dept-00", "limit": 3, **({"cursor": cursor} if cursor else {})}
        body = client.get("/results/api/departments", params=params).json()
        seen += body["departments"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected and len(expected) == 10  # dept-000 .. dept-009


def test_the_department_list_queries_the_index_never_scans(client, monkeypatch):
    from results_api import store as store_module

    calls = []
    original = store_module.ResultsStore.departments

    def spy(self, *args):
        original_query = self.client.query
        self.client.query = lambda **kw: calls.append(kw) or original_query(**kw)
        try:
            return original(self, *args)
        finally:
            self.client.query = original_query

    monkeypatch.setattr(store_module.ResultsStore, "departments", spy)
    assert client.get("/results/api/departments", params={"prefix": "E"}).status_code == 200
    assert [c["IndexName"] for c in calls] == ["department_names"]


def test_covid_and_market_download_as_csv_what_the_json_shows(client):
    params = {"granularity": "monthly", "from": "2020-11-01", "to": "2021-01-31"}
    shown = client.get("/results/api/covid", params=params).json()["periods"]
    response = client.get("/results/api/covid", params={**params, "format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(response.text.splitlines()))
    assert [(r["period"], r["new_cases"], r["new_recoveries"]) for r in rows] == [
        (p["period"], str(p["new_cases"]), "" if p["new_recoveries"] is None else str(p["new_recoveries"]))
        for p in shown
    ]
    market = client.get(f"/results/api/market/{ESI_REGION}", params={"top": 5}).json()["types"]
    text = client.get(f"/results/api/market/{ESI_REGION}", params={"top": 5, "format": "csv"}).text
    assert [int(r["type_id"]) for r in csv.DictReader(text.splitlines())] == [t["type_id"] for t in market]


def test_reads_carry_an_etag_and_a_repeat_with_it_is_304(client):
    first = client.get("/results/api/covid", params={"granularity": "weekly"})
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, max-age=60, must-revalidate"
    again = client.get("/results/api/covid", params={"granularity": "weekly"}, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    other = client.get("/results/api/covid", params={"granularity": "monthly"}, headers={"If-None-Match": tag})
    assert other.status_code == 200 and other.headers["etag"] != tag


def test_errors_are_not_cached(client):
    response = client.get("/results/api/market/10000099")
    assert response.status_code == 404 and "etag" not in response.headers


def test_data_as_of_is_the_end_of_the_writing_dags_last_successful_load(airflow_db):
    from results_api.freshness import last_loaded
    from tests.conftest import REPO, load_dag, run_dag, task_instances

    run = run_dag(load_dag("freshness_check", REPO / "tests" / "dags"))
    (load,) = [ti for ti in task_instances(run) if ti.task_id == "load"]
    assert load.state == "success"
    from datetime import datetime

    assert datetime.fromisoformat(last_loaded("freshness_check")) == load.end_date.replace(microsecond=0)
    assert last_loaded("no_such_dag") is None
