"""What the results API derives from the pipelines' tables: pure functions, no Airflow, no AWS.

* COVID: ``covid_stats`` holds cumulative totals per day; the API answers new cases,
  deaths and recoveries per day, ISO week or calendar month. A day's change is its total
  minus the total of the previous stored day. Weeks and months are sums of those daily
  changes, so every granularity adds up to the same overall change. A negative change
  (upstream revised a total down; JHU's US recoveries fall to 0 on 2020-12-14) is
  reported as it is: clipping it would make the sums disagree with the totals.
* Market: ranking the types of a region by one of the aggregates the pipeline wrote.
* DynamoDB numbers arrive as ``Decimal``; ``plain_json`` turns them into JSON numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

# The same bounds as the market_orders DAG's `region_id` Param (dags/market_orders.py).
REGION_ID_MIN, REGION_ID_MAX = 10_000_000, 19_999_999
TYPE_ID_MAX = 2**31 - 1  # ESI type ids are int32
DEPARTMENT_MAX_LENGTH = 255  # far below DynamoDB's 2048-byte partition key limit
MARKET_TOP_MAX = 1000


class Granularity(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class MarketSort(StrEnum):
    """The numeric attributes the market_orders pipeline writes per (region, type)."""

    SELL_VOLUME = "sell_volume"
    BUY_VOLUME = "buy_volume"
    SELL_ORDERS = "sell_orders"
    BUY_ORDERS = "buy_orders"
    MIN_SELL_PRICE = "min_sell_price"
    MAX_BUY_PRICE = "max_buy_price"
    SELL_AVG_PRICE = "sell_avg_price"
    BUY_AVG_PRICE = "buy_avg_price"


class SortOrder(StrEnum):
    DESC = "desc"
    ASC = "asc"


@dataclass(frozen=True)
class CumulativeDay:
    """One ``covid_stats`` item: totals up to and including ``day``."""

    day: date
    cases: int
    deaths: int
    recoveries: int


@dataclass(frozen=True)
class PeriodChange:
    """New cases/deaths/recoveries over one period, from the stored days inside it."""

    period: str  # "2020-03-02" (daily), "2020-W10" (ISO week), "2020-03" (month)
    start: date  # the first stored day counted in this period
    end: date  # the last stored day counted in this period
    days: int
    new_cases: int
    new_deaths: int
    new_recoveries: int


def daily_changes(days: Sequence[CumulativeDay], baseline: CumulativeDay | None) -> list[PeriodChange]:
    """Each day's totals minus the previous stored day's, negative differences kept.

    ``baseline`` is the stored day just before ``days`` (what the first day is compared
    with). Without one, the first day can only serve as the baseline: its own change is
    unknown (the data may start mid-epidemic), so it is not reported.
    """
    ordered = sorted(days, key=lambda d: d.day)
    if baseline is None:
        if not ordered:
            return []
        baseline, ordered = ordered[0], ordered[1:]
    changes = []
    previous = baseline
    for current in ordered:
        changes.append(
            PeriodChange(
                period=current.day.isoformat(),
                start=current.day,
                end=current.day,
                days=1,
                new_cases=current.cases - previous.cases,
                new_deaths=current.deaths - previous.deaths,
                new_recoveries=current.recoveries - previous.recoveries,
            )
        )
        previous = current
    return changes


def period_label(day: date, granularity: Granularity) -> str:
    if granularity is Granularity.WEEKLY:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if granularity is Granularity.MONTHLY:
        return f"{day.year}-{day.month:02d}"
    return day.isoformat()


def period_start(day: date, granularity: Granularity) -> date:
    """The calendar start of the period holding ``day`` (Monday, the 1st, or the day)."""
    if granularity is Granularity.WEEKLY:
        return day - timedelta(days=day.weekday())
    if granularity is Granularity.MONTHLY:
        return day.replace(day=1)
    return day


def group_changes(daily: Iterable[PeriodChange], granularity: Granularity) -> list[PeriodChange]:
    """Sum daily changes per ISO week or calendar month (daily: returned as they are)."""
    if granularity is Granularity.DAILY:
        return list(daily)
    grouped: dict[str, PeriodChange] = {}
    for change in daily:
        label = period_label(change.start, granularity)
        seen = grouped.get(label)
        if seen is None:
            grouped[label] = PeriodChange(label, change.start, change.end, 1, *_figures(change))
        else:
            grouped[label] = PeriodChange(
                label,
                min(seen.start, change.start),
                max(seen.end, change.end),
                seen.days + 1,
                *(a + b for a, b in zip(_figures(seen), _figures(change), strict=True)),
            )
    return sorted(grouped.values(), key=lambda c: c.start)


def _figures(change: PeriodChange) -> tuple[int, int, int]:
    return change.new_cases, change.new_deaths, change.new_recoveries


def covid_changes(
    days: Sequence[CumulativeDay], baseline: CumulativeDay | None, granularity: Granularity
) -> list[PeriodChange]:
    return group_changes(daily_changes(days, baseline), granularity)


def validate_date_range(first: date | None, last: date | None) -> None:
    if first is not None and last is not None and first > last:
        raise ValueError(f"'from' ({first.isoformat()}) is after 'to' ({last.isoformat()})")


def plain_json(value: Any) -> Any:
    """DynamoDB values as JSON: Decimal -> int when whole, else float; sets -> sorted lists."""
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(plain_json(v) for v in value)
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    return value


def rank_market_types(
    items: Iterable[Mapping[str, Any]], sort: MarketSort, top: int, order: SortOrder = SortOrder.DESC
) -> list[dict[str, Any]]:
    """The ``top`` types by ``sort``; types without that figure (no sell orders has no
    min_sell_price) come last whatever the order; ties by type id so pages are stable."""
    present, missing = [], []
    for item in items:
        (missing if item.get(sort.value) is None else present).append(dict(item))
    present.sort(key=lambda i: int(i["type_id"]))
    present.sort(key=lambda i: Decimal(str(i[sort.value])), reverse=order is SortOrder.DESC)
    missing.sort(key=lambda i: int(i["type_id"]))
    return (present + missing)[:top]
