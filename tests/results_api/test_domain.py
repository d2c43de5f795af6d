"""The results API's derivations, pure: no Airflow, no AWS."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal

import pytest

from results_api.domain import (
    CumulativeDay,
    Granularity,
    MarketSort,
    SortOrder,
    covid_changes,
    covid_csv,
    cumulative_csv,
    cumulative_totals,
    daily_changes,
    group_changes,
    period_label,
    plain_json,
    rank_market_types,
    validate_date_range,
)


def days(start: date, totals: list[tuple[int, int, int]]) -> list[CumulativeDay]:
    return [CumulativeDay(start + timedelta(days=i), *row) for i, row in enumerate(totals)]


def test_the_domain_module_imports_neither_airflow_nor_boto3():
    code = (
        "import sys, results_api.domain; print(sorted(m for m in ('airflow', 'boto3') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"


def test_a_daily_change_is_the_difference_from_the_previous_stored_day():
    stored = days(date(2020, 3, 1), [(10, 1, 0), (15, 1, 2), (27, 3, 2)])
    changes = daily_changes(stored[1:], baseline=stored[0])
    assert [(c.period, c.new_cases, c.new_deaths, c.new_recoveries) for c in changes] == [
        ("2020-03-02", 5, 0, 2),
        ("2020-03-03", 12, 2, 0),
    ]


def test_without_a_baseline_the_first_stored_day_starts_the_series_counted_from_zero():
    stored = days(date(2020, 3, 1), [(1000, 10, 0), (1010, 11, 0)])
    first, second = daily_changes(stored, baseline=None)
    assert (first.new_cases, first.new_deaths, first.first_day) == (1000, 10, True)
    assert (second.new_cases, second.first_day) == (10, False)


def test_with_a_baseline_the_first_day_is_measured_against_it():
    baseline = CumulativeDay(date(2020, 2, 29), 900, 9, 0)
    stored = days(date(2020, 3, 1), [(1000, 10, 0)])
    (change,) = daily_changes(stored, baseline)
    assert (change.new_cases, change.first_day) == (100, False)


def test_negative_revisions_are_reported_but_a_drop_to_zero_is_a_gap_not_a_figure():
    # NYT revised cases down; JHU's US recoveries fall to 0 on 2020-12-14 and stay there.
    baseline = CumulativeDay(date(2020, 12, 12), 95, 5, 6_200_000)
    stored = days(date(2020, 12, 13), [(100, 5, 6_298_082), (90, 6, 0), (95, 7, 0)])
    changes = daily_changes(stored, baseline)
    assert [(c.new_cases, c.new_deaths, c.new_recoveries, c.gaps) for c in changes] == [
        (5, 0, 98_082, ()),
        (-10, 1, None, ("recoveries",)),
        (5, 1, None, ("recoveries",)),
    ]


def test_zeros_before_a_series_starts_are_real_zeros():
    stored = days(date(2020, 1, 22), [(1, 0, 0), (1, 0, 0), (2, 0, 3)])
    changes = daily_changes(stored, baseline=None)
    assert [(c.new_recoveries, c.gaps) for c in changes] == [(0, ()), (0, ()), (3, ())]


def test_a_gap_leaves_its_days_out_of_weekly_sums_and_says_so():
    stored = days(date(2020, 12, 7), [(i, 0, 100 + i) for i in range(7)] + [(7 + i, 0, 0) for i in range(7)])
    weekly = covid_changes(stored, CumulativeDay(date(2020, 12, 6), 0, 0, 100), Granularity.WEEKLY)
    assert [(w.period, w.new_recoveries, w.gaps, w.complete) for w in weekly] == [
        ("2020-W50", 6, (), True),
        ("2020-W51", None, ("recoveries",), True),
    ]


def test_partial_weeks_and_months_are_marked():
    stored = days(date(2020, 3, 4), [(i, 0, 0) for i in range(30)])  # Wed 4 Mar .. Thu 2 Apr
    weekly = covid_changes(stored, CumulativeDay(date(2020, 3, 3), 0, 0, 0), Granularity.WEEKLY)
    assert [(w.period, w.complete) for w in weekly] == [
        ("2020-W10", False), ("2020-W11", True), ("2020-W12", True), ("2020-W13", True), ("2020-W14", False),
    ]  # fmt: skip
    monthly = covid_changes(stored, CumulativeDay(date(2020, 3, 3), 0, 0, 0), Granularity.MONTHLY)
    assert [(m.period, m.complete) for m in monthly] == [("2020-03", False), ("2020-04", False)]
    full_march = days(date(2020, 3, 1), [(i, 0, 0) for i in range(31)])
    (march,) = covid_changes(full_march, CumulativeDay(date(2020, 2, 29), 0, 0, 0), Granularity.MONTHLY)
    assert march.complete and march.days == 31


def test_csv_of_periods_leaves_missing_figures_empty():
    stored = days(date(2020, 12, 13), [(100, 5, 6), (90, 6, 0)])
    text = covid_csv(covid_changes(stored, CumulativeDay(date(2020, 12, 12), 95, 5, 5), Granularity.DAILY))
    assert text.splitlines() == [
        "period,start,end,days,new_cases,new_deaths,new_recoveries,complete,first_day,gaps",
        "2020-12-13,2020-12-13,2020-12-13,1,5,0,1,true,false,",
        "2020-12-14,2020-12-14,2020-12-14,1,-10,1,,true,false,recoveries",
    ]


def test_a_gap_in_the_stored_days_attributes_the_change_to_the_later_day():
    stored = [CumulativeDay(date(2020, 3, 1), 1, 0, 0), CumulativeDay(date(2020, 3, 4), 9, 0, 0)]
    _, change = daily_changes(stored, baseline=None)
    assert (change.period, change.new_cases) == ("2020-03-04", 8)


@pytest.mark.parametrize(
    ("day", "granularity", "label"),
    [
        (date(2021, 1, 1), Granularity.WEEKLY, "2020-W53"),  # ISO week of the previous year
        (date(2021, 1, 4), Granularity.WEEKLY, "2021-W01"),
        (date(2020, 2, 29), Granularity.MONTHLY, "2020-02"),
        (date(2020, 2, 29), Granularity.DAILY, "2020-02-29"),
    ],
)
def test_period_labels(day, granularity, label):
    assert period_label(day, granularity) == label


def test_weeks_and_months_are_sums_of_daily_changes_and_keep_their_total():
    totals, running = [], [0, 0, 0]
    for i in range(70):  # 2020-01-30 .. 2020-04-08: crosses month and week boundaries
        running = [running[0] + (i * 7) % 50 - 5, running[1] + i % 3, running[2] + (i % 5) - 2]
        totals.append(tuple(running))
    stored = days(date(2020, 1, 30), [(c + 10**6, d + 10**6, r + 10**6) for c, d, r in totals])
    daily = daily_changes(stored[1:], baseline=stored[0])
    for granularity in (Granularity.WEEKLY, Granularity.MONTHLY):
        grouped = group_changes(daily, granularity)
        assert sum(g.days for g in grouped) == len(daily)
        assert sum(g.new_cases for g in grouped) == stored[-1].cases - stored[0].cases
        assert sum(g.new_recoveries for g in grouped) == stored[-1].recoveries - stored[0].recoveries
        for group in grouped:
            inside = [d for d in daily if group.start <= d.start <= group.end]
            assert group.new_cases == sum(d.new_cases for d in inside)
            assert group.days == len(inside)


def test_weekly_periods_run_monday_to_sunday_and_partial_edges_say_which_days_they_hold():
    stored = days(date(2020, 3, 4), [(i, 0, 0) for i in range(12)])  # Wed 4 .. Sun 15 March
    weekly = covid_changes(stored[1:], baseline=stored[0], granularity=Granularity.WEEKLY)
    assert [(w.period, w.start, w.end, w.days) for w in weekly] == [
        ("2020-W10", date(2020, 3, 5), date(2020, 3, 8), 4),
        ("2020-W11", date(2020, 3, 9), date(2020, 3, 15), 7),
    ]


def test_no_stored_days_means_no_periods():
    assert covid_changes([], None, Granularity.MONTHLY) == []


def test_a_range_whose_start_is_after_its_end_is_refused_naming_both_ends():
    with pytest.raises(ValueError, match="'from' .2020-05-02. is after 'to' .2020-05-01."):
        validate_date_range(date(2020, 5, 2), date(2020, 5, 1))
    validate_date_range(date(2020, 5, 1), date(2020, 5, 1))
    validate_date_range(None, date(2020, 5, 1))


def test_plain_json_turns_dynamodb_numbers_into_json_numbers():
    item = {"n": Decimal("3"), "x": Decimal("2.50"), "flag": True, "nested": {"a": [Decimal("1")]}}
    assert plain_json(item) == {"n": 3, "x": 2.5, "flag": True, "nested": {"a": [1]}}
    assert isinstance(plain_json(Decimal("3")), int)


MARKET = [
    {"type_id": "34", "sell_volume": Decimal(500), "min_sell_price": Decimal("6.5")},
    {"type_id": "35", "sell_volume": Decimal(900), "min_sell_price": Decimal("12.25")},
    {"type_id": "36", "sell_volume": Decimal(0)},  # only buy orders: no min_sell_price
    {"type_id": "7", "sell_volume": Decimal(500), "min_sell_price": Decimal("1")},
]


def test_market_types_rank_by_the_chosen_figure_ties_by_type_id():
    ranked = rank_market_types(MARKET, MarketSort.SELL_VOLUME, top=3)
    assert [t["type_id"] for t in ranked] == ["35", "7", "34"]


def test_types_without_the_figure_come_last_in_either_order():
    ascending = rank_market_types(MARKET, MarketSort.MIN_SELL_PRICE, top=10, order=SortOrder.ASC)
    descending = rank_market_types(MARKET, MarketSort.MIN_SELL_PRICE, top=10, order=SortOrder.DESC)
    assert [t["type_id"] for t in ascending] == ["7", "34", "35", "36"]
    assert [t["type_id"] for t in descending] == ["35", "34", "7", "36"]


# ---------------------------------------------------------------- cumulative totals


def test_cumulative_totals_are_the_stored_rows_in_day_order_with_source_gaps_as_none():
    # JHU's shape: recoveries reported, then back to 0 (reporting stopped), then 0 again
    stored = days(date(2020, 12, 12), [(100, 5, 40), (130, 6, 45), (160, 8, 0), (190, 9, 0)])
    rows = cumulative_totals(list(reversed(stored)), baseline=None)  # stored order does not matter
    assert [(r.day.isoformat(), r.cases, r.deaths, r.recoveries, r.gaps) for r in rows] == [
        ("2020-12-12", 100, 5, 40, ()),
        ("2020-12-13", 130, 6, 45, ()),
        ("2020-12-14", 160, 8, None, ("recoveries",)),
        ("2020-12-15", 190, 9, None, ("recoveries",)),
    ]


def test_a_range_starting_inside_a_gap_still_shows_the_gap_from_the_day_before():
    # the stored day before the range had 45 recoveries: the range's zeros are a gap
    baseline = CumulativeDay(date(2020, 12, 13), 130, 6, 45)
    rows = cumulative_totals(days(date(2020, 12, 14), [(160, 8, 0)]), baseline)
    assert [(r.recoveries, r.gaps) for r in rows] == [(None, ("recoveries",))]
    # the series' own leading zeros (nothing reported yet) are figures, not gaps
    early = cumulative_totals(days(date(2020, 1, 22), [(1, 0, 0), (2, 0, 0)]), baseline=None)
    assert [(r.deaths, r.recoveries, r.gaps) for r in early] == [(0, 0, ()), (0, 0, ())]


def test_cumulative_csv_leaves_missing_figures_empty_and_names_the_gaps():
    rows = cumulative_totals(days(date(2020, 12, 13), [(130, 6, 45), (160, 8, 0)]), baseline=None)
    assert cumulative_csv(rows) == (
        "day,cases,deaths,recoveries,gaps\n2020-12-13,130,6,45,\n2020-12-14,160,8,,recoveries\n"
    )
