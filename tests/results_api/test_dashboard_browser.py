"""The dashboard in a real browser: headless Chromium (Debian's package) driven by Playwright.

The api-server app runs on a real port; the browser carries the Airflow session cookie
(``_token``) as after a UI login. The screenshot lands in ``test-output/``;
``docs/dashboard.png`` is a copy of ``test-output/results_dashboard.png``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.results_api.conftest import DIRECTORY_CSV, MARKET_SAMPLE, TEST_OUTPUT

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: `apt-get install -y chromium` (make test does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_api_server, token):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
    host = urlsplit(live_api_server).hostname
    context.add_cookies([{"name": "_token", "value": token, "domain": host, "path": "/", "httpOnly": True}])
    page = context.new_page()
    page.console_errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("pageerror", lambda e: page.console_errors.append(f"uncaught: {e}"))
    yield page
    context.close()


def employees_of(department: str) -> int:
    with DIRECTORY_CSV.open(newline="") as handle:
        return sum(1 for row in csv.DictReader(handle) if row["department"] == department)


def painted_pixels(page, selector: str) -> int:
    """How many pixels of the chart's canvas are not blank: the chart was really drawn."""
    return page.eval_on_selector(
        selector,
        """canvas => {
            const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
            return painted;
        }""",
    )


def test_dashboard_charts_switches_granularity_and_looks_up_a_department(page, live_api_server):
    page.goto(f"{live_api_server}/results/dashboard")

    chart = page.locator("#covid-chart")
    page.wait_for_selector("#covid-chart[data-granularity='daily'] canvas")
    assert chart.get_attribute("data-periods") == "420"
    assert painted_pixels(page, "#covid-chart canvas") > 2000
    legend = page.inner_text("#covid-chart .u-legend")
    assert "New cases" in legend and "New recoveries" in legend and "New deaths" in legend
    assert page.inner_text("#covid-summary").startswith("420 daily periods, 2020-01-22 to 2021-03-16")
    notes = page.inner_text("#covid-notes")
    assert "2020-01-22 holds the series' first day, counted from zero" in notes
    assert "Missing where the source stopped reporting" in notes and "2020-12-14 (recoveries)" in notes
    assert int(chart.get_attribute("data-gaps")) > 0
    assert page.inner_text("#covid-asof")  # "Data as of ..." or "covid_daily has not loaded yet."

    page.click("button[data-granularity='weekly']")
    page.wait_for_selector("#covid-chart[data-granularity='weekly'] canvas")
    assert chart.get_attribute("data-periods") == "61"
    assert chart.get_attribute("data-partial") == "2020-W04 2021-W11"  # Wed 22 Jan .. Tue 16 Mar
    assert "Partial (not a whole week): 2020-W04, 2021-W11." in page.inner_text("#covid-notes")
    assert page.get_attribute("button[data-granularity='weekly']", "aria-pressed") == "true"
    page.click("button[data-granularity='monthly']")
    page.wait_for_selector("#covid-chart[data-granularity='monthly'] canvas")
    assert chart.get_attribute("data-periods") == "15"
    assert page.locator("#covid-chart canvas").count() == 1  # the old chart was replaced, not stacked
    assert painted_pixels(page, "#covid-chart canvas") > 2000

    # the CSV link downloads what the chart shows (monthly now)
    csv_href = page.get_attribute("#covid-csv", "href")
    assert "granularity=monthly" in csv_href and "format=csv" in csv_href
    downloaded = page.evaluate("href => fetch(href).then(r => r.text())", csv_href)
    assert downloaded.splitlines()[0].startswith("period,start,end,days,new_cases")
    assert len(downloaded.splitlines()) == 1 + 15

    page.wait_for_selector("#market-table tbody tr")
    assert page.locator("#market-table tbody tr").count() == 10
    # each type by its EVE name, its id beside it; a type ESI cannot name by its id alone
    shown = page.evaluate(
        "href => fetch(href).then(r => r.json())", "api/market/10000002?sort=sell_volume&top=10"
    )["types"]
    cells = page.locator("#market-table tbody td.type").all_inner_texts()
    assert cells == [
        f"{t['type_name']} {t['type_id']}" if t["type_name"] else str(t["type_id"]) for t in shown
    ]
    assert "Plagioclase 18" in cells  # the market's most traded type in the fake ESI, by hand
    market_csv = page.evaluate(
        "href => fetch(href).then(r => r.text())", page.get_attribute("#market-csv", "href")
    )
    assert len(market_csv.splitlines()) == 1 + 10

    # the department list: every name a page at a time, then a prefix narrows it
    with DIRECTORY_CSV.open(newline="") as handle:
        names = sorted({row["department"] for row in csv.DictReader(handle)})
    page.wait_for_selector("#department-names li button")
    while page.is_visible("#department-more"):
        count = page.locator("#department-names li").count()
        page.click("#department-more")
        expect(page.locator("#department-names li")).not_to_have_count(count)
    assert page.locator("#department-names li button").all_inner_texts() == names
    page.fill("#department-input", names[-1][:-1])
    expect(page.locator("#department-names li")).to_have_count(
        sum(n.startswith(names[-1][:-1]) for n in names)
    )
    assert page.inner_text("#directory-asof")

    page.fill("#department-input", "dept-003")
    page.click("#department-form button[type='submit']")
    page.wait_for_selector("#department-table")
    assert page.inner_text("#department-result h3") == "dept-003"
    assert page.locator("#department-table tbody tr").count() == employees_of("dept-003")

    page.click("button[data-granularity='daily']")
    page.wait_for_selector("#covid-chart[data-granularity='daily'] canvas")
    assert page.console_errors == []

    TEST_OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(TEST_OUTPUT / "results_dashboard.png"), full_page=True)

    # An unknown department: the page says so (the browser logs the 404 response, nothing else).
    page.fill("#department-input", "no-such-department")
    page.press("#department-input", "Enter")
    page.wait_for_selector("#department-result .error")
    assert page.inner_text("#department-result") == "department 'no-such-department' is not in the directory"
    assert [e for e in page.console_errors if "status of 404" not in e] == []


def zero_heights(page) -> dict[str, float]:
    """Where the chart draws 0 on each y scale (CSS pixels from the top of the plot)."""
    return page.eval_on_selector(
        "#covid-chart", "c => ({cases: c.uplot.valToPos(0, 'cases'), deaths: c.uplot.valToPos(0, 'deaths')})"
    )


def data_inside_ranges(page) -> bool:
    """Every value of every series lies inside its scale's range (no line is cut off)."""
    return page.eval_on_selector(
        "#covid-chart",
        """c => c.uplot.series.every((s, i) => i === 0 || c.uplot.data[i].every(v => v === null ||
              (c.uplot.scales[s.scale].min <= v && v <= c.uplot.scales[s.scale].max)))""",
    )


def test_the_covid_charts_two_axes_share_one_zero_line_and_the_cumulative_view(page, live_api_server):
    page.goto(f"{live_api_server}/results/dashboard?region=10000002")
    for view, periods in (("daily", "420"), ("weekly", "61"), ("monthly", "15"), ("cumulative", "420")):
        page.click(f"button[data-granularity='{view}']")
        page.wait_for_selector(f"#covid-chart[data-granularity='{view}'] canvas")
        assert page.get_attribute("#covid-chart", "data-periods") == periods
        zero = zero_heights(page)
        assert abs(zero["cases"] - zero["deaths"]) < 0.5, (view, zero)
        assert data_inside_ranges(page), view
    # daily changes go negative (revisions): zero is then above the bottom, on both axes alike
    page.fill("#covid-from", "2020-03-01")
    page.fill("#covid-to", "2021-03-16")
    page.click("button[data-granularity='daily']")
    page.wait_for_selector("#covid-chart[data-granularity='daily'] canvas")
    zero = zero_heights(page)
    assert abs(zero["cases"] - zero["deaths"]) < 0.5 and data_inside_ranges(page)

    # the cumulative view: the stored totals, recoveries missing where JHU stopped reporting them
    page.fill("#covid-from", "")
    page.fill("#covid-to", "")
    page.click("button[data-granularity='cumulative']")
    page.wait_for_selector("#covid-chart[data-granularity='cumulative'] canvas")
    assert painted_pixels(page, "#covid-chart canvas") > 2000
    legend = page.inner_text("#covid-chart .u-legend")
    assert "Cases" in legend and "Deaths" in legend and "Recoveries" in legend and "New " not in legend
    # NYT 2021-03-16: 29,569,140 cases, 536,491 deaths; JHU's last US recoveries: 6,298,082 (2020-12-13)
    assert page.inner_text("#covid-summary") == (
        "420 days, 2020-01-22 to 2021-03-16: 29,569,140 cases and 536,491 deaths in total; "
        "6,298,082 recoveries as last reported (2020-12-13)."
    )
    assert "recoveries on 93 days" in page.inner_text("#covid-notes")
    csv_href = page.get_attribute("#covid-csv", "href")
    downloaded = page.evaluate("href => fetch(href).then(r => r.text())", csv_href)
    assert (
        downloaded.splitlines()[0] == "day,cases,deaths,recoveries,gaps"
        and len(downloaded.splitlines()) == 421
    )
    assert page.console_errors == []


def test_a_panel_without_data_shows_it_when_the_pipeline_loads_it_without_pressing_show(
    page, live_api_server
):
    from pipelines.aws.dynamodb import delete_keys, dynamodb_client, put_items
    from pipelines.market.domain import aggregate, to_items

    region = 10000043  # Domain: nothing loaded for it yet
    page.goto(f"{live_api_server}/results/dashboard?region={region}")
    page.wait_for_selector("#market[data-state='waiting']")
    assert page.inner_text("#market-result").startswith(f"no market data for region {region}")

    items = to_items(
        region, aggregate(json.loads(MARKET_SAMPLE.read_text())), "Fri, 09 Aug 2019 20:30:00 GMT"
    )
    client = dynamodb_client()
    put_items(client, "market_orders", items)  # market_orders loads the region meanwhile
    try:
        page.wait_for_selector("#market-table tbody tr", timeout=30_000)  # no click on "Show"
        assert page.get_attribute("#market", "data-state") == "loaded"
        assert page.inner_text("#market-result").startswith(f"Region {region}: top 1 of 1 types")
    finally:
        delete_keys(client, "market_orders", [{"region_id": str(region), "type_id": "34"}])
    assert [e for e in page.console_errors if "status of 404" not in e] == []


def test_the_airflow_ui_shows_the_link_and_embeds_the_dashboard(page, live_api_server):
    page.goto(f"{live_api_server}/")
    link = page.get_by_role("link", name="Results", exact=True)
    link.wait_for(timeout=30_000)
    link.click()
    page.wait_for_url("**/plugin/results-dashboard")
    frame = page.frame_locator("iframe")
    frame.locator("#covid-chart[data-granularity='daily'] canvas").wait_for(timeout=30_000)
    TEST_OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(TEST_OUTPUT / "results_dashboard_in_airflow_ui.png"))
