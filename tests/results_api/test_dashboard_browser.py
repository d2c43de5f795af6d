"""The dashboard in a real browser: headless Chromium (Debian's package) driven by Playwright.

The api-server app runs on a real port; the browser carries the Airflow session cookie
(``_token``) as after a UI login. The screenshot lands in ``test-output/``;
``docs/dashboard.png`` is a copy of ``test-output/results_dashboard.png``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.results_api.conftest import DIRECTORY_CSV, TEST_OUTPUT

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
    expect(page.locator("#department-names li")).to_have_count(sum(n.startswith(names[-1][:-1]) for n in names))
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
