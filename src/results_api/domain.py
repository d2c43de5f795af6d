"""What the results API derives from the pipelines' tables: pure functions, no Airflow, no AWS.

* COVID: ``covid_stats`` holds cumulative totals per day; the API answers new cases,
  deaths and recoveries per day, ISO week or calendar month. A day's change is its total
  minus the total of the previous stored day. Weeks and months are sums of those daily
  changes. A negative change (upstream revised a total down) is reported as it is. A
  cumulative series that drops to zero after being positive (JHU's US recoveries from
  2020-12-14) has stopped being reported: those days are missing, not a negative change.
  The series' first stored day is counted from zero and flagged; weeks and months that
  the data do not cover whole are flagged partial.
* COVID, cumulative: the stored totals per day as they are, a total the source stopped
  reporting (back to zero after being positive) missing rather than zero.
* Market: ranking the types of a region by one of the aggregates the pipeline wrote.
* DynamoDB numbers arrive as ``Decimal``; ``plain_json`` turns them into JSON numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
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


METRICS = ("cases", "deaths", "recoveries")


@dataclass(frozen=True)
class PeriodChange:
    """New cases/deaths/recoveries over one period, from the stored days inside it.

    A figure is ``None`` when every day of the period falls in a gap of that source (see
    :func:`daily_changes`); ``gaps`` names the metrics with at least one such day, whose
    sums therefore leave those days out. ``complete`` is False for a week or month that the
    stored days (or the requested range) do not cover whole, e.g. the current one.
    ``first_day`` marks the period holding the first stored day of the series, whose change
    is counted from zero (its own totals).
    """

    period: str  # "2020-03-02" (daily), "2020-W10" (ISO week), "2020-03" (month)
    start: date  # the first stored day counted in this period
    end: date  # the last stored day counted in this period
    days: int
    new_cases: int | None
    new_deaths: int | None
    new_recoveries: int | None
    gaps: tuple[str, ...] = ()
    complete: bool = True
    first_day: bool = False


def reported_values(
    days: Sequence[CumulativeDay], baseline: CumulativeDay | None
) -> list[dict[str, int | None]]:
    """Each day's cumulative figures, ``None`` where the source stopped reporting.

    A cumulative series never returns to zero: a 0 after a positive total (JHU sends 0 US
    recoveries from 2020-12-14 on) is a gap in the source, not a figure.
    """
    seen_positive = {m: baseline is not None and getattr(baseline, m) > 0 for m in METRICS}
    values = []
    for day in days:
        row: dict[str, int | None] = {}
        for metric in METRICS:
            value = getattr(day, metric)
            row[metric] = None if value <= 0 and seen_positive[metric] else value
            seen_positive[metric] = seen_positive[metric] or value > 0
        values.append(row)
    return values


@dataclass(frozen=True)
class CumulativeTotals:
    """One stored day's totals as served: ``None`` (and named in ``gaps``) where the source
    stopped reporting that series (see :func:`reported_values`)."""

    day: date
    cases: int | None
    deaths: int | None
    recoveries: int | None
    gaps: tuple[str, ...] = ()


def cumulative_totals(
    days: Sequence[CumulativeDay], baseline: CumulativeDay | None
) -> list[CumulativeTotals]:
    """The stored cumulative rows in day order, gaps of the source as ``None``.

    ``baseline`` (the stored day before ``days``) only tells whether a series had already
    been positive, so a range that starts inside a gap still shows it as one.
    """
    ordered = sorted(days, key=lambda d: d.day)
    return [
        CumulativeTotals(
            day.day,
            row["cases"],
            row["deaths"],
            row["recoveries"],
            gaps=tuple(m for m in METRICS if row[m] is None),
        )
        for day, row in zip(ordered, reported_values(ordered, baseline), strict=True)
    ]


def daily_changes(days: Sequence[CumulativeDay], baseline: CumulativeDay | None) -> list[PeriodChange]:
    """Each day's totals minus the previous stored day's; negative revisions kept, gaps missing.

    ``baseline`` is the stored day just before ``days``. Without one, ``days`` starts the
    series, and its first day is counted against zero (its own totals) and flagged
    ``first_day``. A change is missing (``None``) when the day or the day before is in a
    gap of that source (:func:`reported_values`), so a source that stops reporting shows as
    missing data, never as a huge negative change.
    """
    ordered = sorted(days, key=lambda d: d.day)
    if not ordered:
        return []
    values = reported_values(ordered, baseline)
    if baseline is None:
        previous: dict[str, int | None] = dict.fromkeys(METRICS, 0)
    else:
        previous = reported_values([baseline], None)[0]
    changes = []
    for index, (current, row) in enumerate(zip(ordered, values, strict=True)):
        figures = {
            m: None if row[m] is None or previous[m] is None else row[m] - previous[m] for m in METRICS
        }
        changes.append(
            PeriodChange(
                period=current.day.isoformat(),
                start=current.day,
                end=current.day,
                days=1,
                new_cases=figures["cases"],
                new_deaths=figures["deaths"],
                new_recoveries=figures["recoveries"],
                gaps=tuple(m for m in METRICS if figures[m] is None),
                first_day=baseline is None and index == 0,
            )
        )
        previous = row
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


def period_end(day: date, granularity: Granularity) -> date:
    """The calendar end of the period holding ``day`` (Sunday, the month's last day, or the day)."""
    if granularity is Granularity.WEEKLY:
        return period_start(day, granularity) + timedelta(days=6)
    if granularity is Granularity.MONTHLY:
        following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        return following - timedelta(days=1)
    return day


def _sum(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else a + b


def group_changes(daily: Iterable[PeriodChange], granularity: Granularity) -> list[PeriodChange]:
    """Sum daily changes per ISO week or calendar month (daily: returned as they are).

    Missing days are left out of a sum (the period lists them in ``gaps``); a period whose
    days are all missing for a metric has ``None`` for it. A period is ``complete`` when its
    days cover the calendar period whole.
    """
    if granularity is Granularity.DAILY:
        return list(daily)
    grouped: dict[str, PeriodChange] = {}
    for change in daily:
        label = period_label(change.start, granularity)
        seen = grouped.get(label)
        if seen is None:
            grouped[label] = replace(change, period=label)
        else:
            grouped[label] = PeriodChange(
                label,
                min(seen.start, change.start),
                max(seen.end, change.end),
                seen.days + 1,
                *(_sum(a, b) for a, b in zip(_figures(seen), _figures(change), strict=True)),
                gaps=tuple(m for m in METRICS if m in seen.gaps or m in change.gaps),
                first_day=seen.first_day or change.first_day,
            )
    return sorted(
        (
            replace(
                change,
                complete=change.start == period_start(change.start, granularity)
                and change.end == period_end(change.start, granularity)
                and change.days == (change.end - change.start).days + 1,
            )
            for change in grouped.values()
        ),
        key=lambda c: c.start,
    )


def _figures(change: PeriodChange) -> tuple[int | None, int | None, int | None]:
    return change.new_cases, change.new_deaths, change.new_recoveries


def covid_changes(
    days: Sequence[CumulativeDay], baseline: CumulativeDay | None, granularity: Granularity
) -> list[PeriodChange]:
    return group_changes(daily_changes(days, baseline), granularity)


def covid_csv(changes: Iterable[PeriodChange]) -> str:
    """The periods as CSV (what the dashboard shows): empty cells for missing figures."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period", "start", "end", "days", "new_cases", "new_deaths", "new_recoveries",
                     "complete", "first_day", "gaps"])  # fmt: skip
    for c in changes:
        writer.writerow([c.period, c.start.isoformat(), c.end.isoformat(), c.days,
                         *("" if v is None else v for v in _figures(c)),
                         str(c.complete).lower(), str(c.first_day).lower(), " ".join(c.gaps)])  # fmt: skip
    return out.getvalue()


def cumulative_csv(rows: Iterable[CumulativeTotals]) -> str:
    """The cumulative totals as CSV: empty cells for missing figures, as in :func:`covid_csv`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["day", *METRICS, "gaps"])
    for row in rows:
        figures = (row.cases, row.deaths, row.recoveries)
        writer.writerow([row.day.isoformat(), *("" if v is None else v for v in figures), " ".join(row.gaps)])
    return out.getvalue()


def market_csv(items: Iterable[Mapping[str, Any]]) -> str:
    """A region's ranked types as CSV (the dashboard's table)."""
    columns = ["region_id", "type_id", "type_name", *(sort.value for sort in MarketSort), "last_modified"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for item in items:
        writer.writerow({k: "" if item.get(k) is None else item[k] for k in columns})
    return out.getvalue()


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
