"""Chunking, range validation and SQL rendering (pure; hypothesis over random ranges)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.traffic.chunks import (
    MAX_CHUNK_HOURS,
    RangeError,
    arrival_hours,
    hour_ranges_by_day,
    resolve_range,
    split_into_chunks,
    target_partitions,
)
from pipelines.traffic.steps import plan, render_insert_sql

HOUR = timedelta(hours=1)
moments = st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2030, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@settings(max_examples=300, deadline=None)
@given(
    start=moments, length=st.integers(min_value=1, max_value=24 * 400), size=st.integers(1, MAX_CHUNK_HOURS)
)
def test_every_hour_is_covered_exactly_once_by_chunks_of_at_most_96_hours(start, length, size):
    start = start.replace(minute=0, second=0, microsecond=0)
    end = start + length * HOUR
    chunks = split_into_chunks(start, end, size)
    hours = [hour for chunk in chunks for hour in chunk.event_hours()]
    assert hours == [start + i * HOUR for i in range(length)]
    assert all(1 <= chunk.hours <= size for chunk in chunks)
    partitions = [
        p for c in chunks for p in target_partitions(int(c.start.timestamp()), int(c.end.timestamp()))
    ]
    assert len(partitions) == len({tuple(p.values()) for p in partitions}) == length
    assert all(
        len(target_partitions(int(c.start.timestamp()), int(c.end.timestamp()))) <= 100 for c in chunks
    )


def test_month_and_year_ends_are_ordinary_hours():
    chunks = split_into_chunks(datetime(2024, 2, 27, tzinfo=UTC), datetime(2025, 1, 3, tzinfo=UTC))
    days = {(h.year, h.month, h.day) for c in chunks for h in c.event_hours()}
    assert (2024, 2, 29) in days and (2024, 12, 31) in days and (2025, 1, 1) in days
    assert len(days) == (datetime(2025, 1, 3) - datetime(2024, 2, 27)).days


def test_the_daily_interval_is_the_default_range():
    start, end = resolve_range(None, None, datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC))
    assert (start, end) == (datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC))


def test_a_scheduled_runs_pendulum_interval_plans_like_plain_datetimes():
    import pendulum

    interval = pendulum.datetime(2024, 3, 1, tz="UTC"), pendulum.datetime(2024, 3, 2, tz="UTC")
    planned = plan({}, *interval)  # what Airflow hands a scheduled or backfilled run
    assert planned == plan({}, datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC))
    assert len(planned["chunks"]) == 1 and planned["first_hour"] == "2024030100"


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2024-03-02", "2024-03-01", "param end (2024-03-01T00:00:00+00:00) must be after start"),
        ("2024-01-01", "2025-01-02T01:00:00", "at most 366 per run"),
        ("2024-01-01", None, "params start and end go together"),
        ("yesterday", "2024-01-02", "param start: 'yesterday' is not an ISO date"),
    ],
)
def test_bad_ranges_are_refused_naming_the_param(start, end, message):
    with pytest.raises(RangeError, match=re.escape(message)):
        resolve_range(start, end, None, None)


def test_sql_reads_only_the_arrival_partitions_it_needs_and_inserts_only_its_hours():
    params = {"start": "2024-12-31T22:00:00Z", "end": "2025-01-01T02:00:00Z", "max_lateness_minutes": 120,
              "chunk_hours": 96, "measuring_points": [1001, 1002]}  # fmt: skip
    planned = plan(params, None, None)
    [chunk] = planned["chunks"]
    # from the arrival hour holding start - 20 min (the widest window) to end + lateness
    assert (chunk["arrival_from"], chunk["arrival_to"]) == ("2024123121", "2025010103")
    sql = render_insert_sql(chunk)
    # typed partition columns compared one by one (prunable by the Glue catalog), never concat()
    assert "concat(partition" not in sql and "concat(arrival" not in sql
    assert (
        "(arrival_year = 2024 AND arrival_month = 12 AND arrival_day = 31\n"
        "        AND arrival_hour BETWEEN 21 AND 23)" in sql
    )
    assert (
        "OR (arrival_year = 2025 AND arrival_month = 1 AND arrival_day = 1\n"
        "        AND arrival_hour BETWEEN 0 AND 3)" in sql
    )
    assert f"minute >= {int(datetime(2024, 12, 31, 22, tzinfo=UTC).timestamp())}" in sql
    assert "IN (1001, 1002)" in sql
    # end + max lateness + the default delivery margin (the stream's 5-minute buffer interval)
    assert planned["ready_at"] == "2025-01-01T04:05:00+00:00"


def test_the_delivery_margin_is_a_param_added_to_ready_at():
    params = {"start": "2024-12-31", "end": "2025-01-01", "max_lateness_minutes": 60}
    assert plan(params, None, None)["ready_at"] == "2025-01-01T01:05:00+00:00"
    assert plan({**params, "delivery_margin_minutes": 15}, None, None)["ready_at"] == "2025-01-01T01:15:00+00:00"
    assert plan({**params, "delivery_margin_minutes": 0}, None, None)["ready_at"] == "2025-01-01T01:00:00+00:00"


def test_a_date_means_midnight_utc():
    planned = plan({"start": "2024-12-28", "end": "2025-01-05"}, None, None)
    assert (planned["start"], planned["end"]) == ("2024-12-28T00:00:00+00:00", "2025-01-05T00:00:00+00:00")
    assert planned == plan({"start": "2024-12-28T00:00:00Z", "end": "2025-01-05T00:00:00+00:00"}, None, None)


@settings(max_examples=200, deadline=None)
@given(first=moments, length=st.integers(min_value=1, max_value=24 * 40))
def test_hour_ranges_by_day_cover_exactly_the_hours(first, length):
    first = first.replace(minute=0, second=0, microsecond=0)
    last = first + (length - 1) * HOUR
    ranges = hour_ranges_by_day(first, last)
    covered = [
        datetime(r["year"], r["month"], r["day"], h, tzinfo=UTC)
        for r in ranges
        for h in range(r["hour_from"], r["hour_to"] + 1)
    ]
    assert covered == [first + i * HOUR for i in range(length)]
    assert len(ranges) == len({(r["year"], r["month"], r["day"]) for r in ranges})


def test_arrival_hours_of_a_run_are_the_union_of_its_chunks_reads_each_once():
    planned = plan({"start": "2024-12-31T20:00:00Z", "end": "2025-01-01T04:00:00Z", "chunk_hours": 3}, None, None)
    hours = arrival_hours(planned["chunks"])
    # the hour holding start - 20 min (the window lookback) .. 2 hours of lateness after the range
    assert hours == [datetime(2024, 12, 31, 19, tzinfo=UTC) + i * HOUR for i in range(11)]


def test_measuring_points_must_be_integers():
    with pytest.raises(ValueError):
        plan(
            {"start": "2024-01-01", "end": "2024-01-02", "measuring_points": ["1; DROP TABLE x"]}, None, None
        )


def test_measuring_points_are_bounded_and_the_query_checked_against_athenas_limit_before_any_write(
    monkeypatch, airflow_db
):  # airflow_db: load_dag reads the DAG table (alone in a fresh Airflow home it was missing)
    """The param's maxItems refuses a long list at trigger time; past it (or with a longer SQL),
    the rendered query is checked against Athena's 262144 bytes before the writer touches anything."""
    from airflow.sdk.exceptions import ParamValidationError

    from pipelines.traffic.operators import WriteChunkOperator
    from pipelines.traffic.steps import QueryTooLong, render_insert_sql
    from tests.conftest import load_dag

    day = {"start": "2024-01-01", "end": "2024-01-02"}
    points = list(range(1_000_000_000, 1_000_000_000 + 12_000))  # 12,000 ten-digit ids
    with pytest.raises(ValueError, match="measuring_points: 12000 points; at most 2000 per run"):
        plan({**day, "measuring_points": points}, None, None)
    with pytest.raises(ValueError, match="larger than any unieke_id"):
        plan({**day, "measuring_points": [2**31]}, None, None)
    assert len(render_insert_sql(plan({**day, "measuring_points": points[:2000]}, None, None)["chunks"][0])) < 262144
    with pytest.raises(ParamValidationError):
        load_dag("traffic_repartition").params.get_param("measuring_points").resolve(points[:2001])

    [chunk] = plan(day, None, None)["chunks"]
    chunk["measuring_points"] = points  # as if a list got past the param
    # 12,000 x (10 digits + ", ") twice: 288,000 bytes of list alone (hand count), over 262,144
    with pytest.raises(QueryTooLong, match="over Athena's limit of 262144"):
        render_insert_sql(chunk)
    writer = WriteChunkOperator(task_id="write_chunk", chunk=chunk, bucket="b", database="traffic",
                                output_location="s3://b/r/")  # fmt: skip
    touched = []
    monkeypatch.setattr(WriteChunkOperator, "_write", lambda self, context: touched.append("write") or 1 / 0)
    with pytest.raises(QueryTooLong):
        writer.execute({})
    assert touched == []  # no lease taken, no file listed or deleted
