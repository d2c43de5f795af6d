"""Cutting an event-time range into Athena-sized chunks, and each chunk's SQL parameters.

Athena's INSERT INTO writes at most 100 partitions per query; the target is partitioned
by event hour, so a chunk holds at most 96 hours (4 days). Everything is UTC and works
on hour boundaries, so month and year ends are nothing special (the original computed
``day BETWEEN 29 AND 0`` at month ends and silently skipped days).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.errors import BadInput

MAX_CHUNK_HOURS = 96
MAX_RANGE_DAYS = 366
# The widest window looks back 20 minutes of EVENT time (avgSpeed20Minutes over
# (t-20 min, t], previousSpeed in [t-20 min, t)), and insert_chunk.sql frames windows by
# event time (RANGE), not by rows: readings older than chunk start - 20 min cannot change
# any value of the chunk, whatever the gaps (tests/traffic/test_sql_event_time_windows.py
# checks random gaps and chunk sizes against one continuous computation).
WINDOW_LOOKBACK = timedelta(minutes=20)
HOUR = timedelta(hours=1)


class RangeError(BadInput):
    """An invalid start/end range; the message names the param."""


def parse_time(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise RangeError(f"param {name}: {value!r} is not an ISO date or date-time") from error
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floored = floor_hour(moment)
    return floored if floored == moment.astimezone(UTC) else floored + HOUR


def last_complete_day(run_after: datetime) -> tuple[datetime, datetime]:
    """The last whole UTC day before ``run_after``: [its midnight - 1 day, its midnight)."""
    midnight = datetime.fromtimestamp(run_after.timestamp(), UTC).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return midnight - timedelta(days=1), midnight


def resolve_range(
    start: str | None,
    end: str | None,
    interval_start: datetime | None,
    interval_end: datetime | None,
    run_after: datetime | None = None,
) -> tuple[datetime, datetime]:
    """The event-time range of a run: params ``start``/``end`` if given, else the data interval,
    else (a manual run created with ``logical_date: null``, as the REST API and CLI do, has no
    data interval) the last complete day before the run's ``run_after``."""
    if bool(start) != bool(end):
        raise RangeError("params start and end go together: give both or neither")
    if start and end:
        begin, finish = parse_time(start, "start"), parse_time(end, "end")
    else:
        if (interval_start is None or interval_end is None) and run_after is not None:
            interval_start, interval_end = last_complete_day(run_after)
        if interval_start is None or interval_end is None:
            raise RangeError("no start/end params and no data interval: trigger with start and end")
        # Airflow hands over pendulum datetimes, whose arithmetic differs from datetime's
        # (an Interval divided by a timedelta fails): work on plain UTC datetimes.
        begin, finish = (datetime.fromtimestamp(moment.timestamp(), UTC) for moment in (interval_start, interval_end))
    begin, finish = floor_hour(begin), ceil_hour(finish)
    if finish <= begin:
        raise RangeError(f"param end ({finish.isoformat()}) must be after start ({begin.isoformat()})")
    if finish - begin > timedelta(days=MAX_RANGE_DAYS):
        raise RangeError(
            f"params start..end span {(finish - begin).days} days; at most {MAX_RANGE_DAYS} per run"
        )
    return begin, finish


@dataclass(frozen=True)
class Chunk:
    start: datetime
    end: datetime

    @property
    def hours(self) -> int:
        return int((self.end - self.start) / HOUR)

    def event_hours(self) -> list[datetime]:
        return [self.start + i * HOUR for i in range(self.hours)]


def split_into_chunks(start: datetime, end: datetime, max_hours: int = MAX_CHUNK_HOURS) -> list[Chunk]:
    """Consecutive chunks covering every hour of [start, end) once, each at most ``max_hours``."""
    if not 1 <= max_hours <= MAX_CHUNK_HOURS:
        raise RangeError(f"chunk_hours must be between 1 and {MAX_CHUNK_HOURS}, got {max_hours}")
    start, end = floor_hour(start), ceil_hour(end)
    chunks, cursor = [], start
    while cursor < end:
        chunk_end = min(cursor + max_hours * HOUR, end)
        chunks.append(Chunk(cursor, chunk_end))
        cursor = chunk_end
    return chunks


def arrival_key(moment: datetime) -> str:
    """An arrival hour as YYYYMMDDHH (logs and plan summaries only, never a SQL predicate)."""
    return moment.strftime("%Y%m%d%H")


def hours_between(first: datetime, last: datetime) -> list[datetime]:
    """Every hour from ``first`` to ``last``, both included."""
    first, last = floor_hour(first), floor_hour(last)
    return [first + i * HOUR for i in range(int((last - first) / HOUR) + 1)] if last >= first else []


def hour_ranges_by_day(first: datetime, last: datetime) -> list[dict[str, int]]:
    """The hours ``first``..``last`` (both included) as one hour range per UTC day.

    Rendered as ``(year = Y AND month = M AND day = D AND hour BETWEEN a AND b) OR ...``:
    each typed partition column compared on its own, a form Athena hands to the Glue
    catalog (GetPartitions expression) to prune, unlike a comparison of a concat().
    """
    days: dict[tuple[int, int, int], list[int]] = {}
    for hour in hours_between(first, last):
        days.setdefault((hour.year, hour.month, hour.day), []).append(hour.hour)
    return [
        {"year": y, "month": m, "day": d, "hour_from": min(hs), "hour_to": max(hs)}
        for (y, m, d), hs in days.items()
    ]


def target_hour_ranges(start: datetime, end: datetime) -> list[dict[str, str]]:
    """Event hours [start, end) per day, as the target's zero-padded string partition values."""
    return [
        {"year": f"{r['year']:04d}", "month": f"{r['month']:02d}", "day": f"{r['day']:02d}",
         "hour_from": f"{r['hour_from']:02d}", "hour_to": f"{r['hour_to']:02d}"}
        for r in hour_ranges_by_day(start, end - HOUR)
    ]  # fmt: skip


def parse_arrival_key(key: str) -> datetime:
    return datetime.strptime(key, "%Y%m%d%H").replace(tzinfo=UTC)


def arrival_hours(chunks: list[dict[str, Any]]) -> list[datetime]:
    """The raw arrival hours the chunks read (window lookback .. lateness), each once, in order."""
    hours: set[datetime] = set()
    for chunk in chunks:
        hours.update(hours_between(parse_arrival_key(chunk["arrival_from"]), parse_arrival_key(chunk["arrival_to"])))
    return sorted(hours)


# unieke_id is read as an Athena integer (32 bits): a larger id can match nothing.
LARGEST_POINT = 2**31 - 1
# Bounds the param (its JSON schema maxItems): 10-digit ids, twice in the query (the points
# read and the stored rows kept), stay far below Athena's query size limit.
MAX_MEASURING_POINTS = 2000


def checked_points(measuring_points: list[Any] | None) -> list[int]:
    """The measuring points as integers, each once, sorted; a bad list is refused naming the param."""
    points = []
    for value in measuring_points or []:
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
            raise RangeError(f"param measuring_points: {value!r} is not a unieke_id (a whole number >= 0)")
        if int(value) > LARGEST_POINT:
            raise RangeError(f"param measuring_points: {value} is larger than any unieke_id ({LARGEST_POINT})")
        points.append(int(value))
    if len(points) > MAX_MEASURING_POINTS:
        raise RangeError(
            f"param measuring_points: {len(points)} points; at most {MAX_MEASURING_POINTS} per run"
        )
    return sorted(set(points))


def sql_parameters(
    chunk: Chunk, max_lateness: timedelta, measuring_points: list[int] | None
) -> dict[str, Any]:
    """Computed values the chunk's INSERT needs: all numbers or fixed-format digit strings."""
    read_from = floor_hour(chunk.start - WINDOW_LOOKBACK)
    read_to = ceil_hour(chunk.end + max_lateness)  # exclusive: last arrival hour is read_to - 1h
    return {
        "chunk_start": chunk.start.isoformat(),
        "chunk_end": chunk.end.isoformat(),
        "chunk_start_epoch": int(chunk.start.timestamp()),
        "chunk_end_epoch": int(chunk.end.timestamp()),
        "lookback_start_epoch": int((chunk.start - WINDOW_LOOKBACK).timestamp()),
        "arrival_from": arrival_key(read_from),
        "arrival_to": arrival_key(read_to - HOUR),
        "arrival_days": hour_ranges_by_day(read_from, read_to - HOUR),
        # the chunk's own event hours, per day (a filtered run reads the stored rows it keeps)
        "event_days": target_hour_ranges(chunk.start, chunk.end),
        "measuring_points": checked_points(measuring_points),
    }


def chunk_payload(
    chunk: Chunk, max_lateness: timedelta, measuring_points: list[int] | None
) -> dict[str, Any]:
    """What goes through XCom for one chunk: small and JSON-serialisable."""
    return {**sql_parameters(chunk, max_lateness, measuring_points), "hours": chunk.hours}


def target_partitions(chunk_start_epoch: int, chunk_end_epoch: int) -> list[dict[str, str]]:
    """The event-hour partitions (year, month, day, hour) a chunk owns."""
    start = datetime.fromtimestamp(chunk_start_epoch, UTC)
    chunk = Chunk(start, datetime.fromtimestamp(chunk_end_epoch, UTC))
    return [
        {
            "year": h.strftime("%Y"),
            "month": h.strftime("%m"),
            "day": h.strftime("%d"),
            "hour": h.strftime("%H"),
        }
        for h in chunk.event_hours()
    ]


__all__ = ["Chunk", "RangeError", "asdict", "split_into_chunks", "resolve_range", "sql_parameters"]
