"""The transformation of docs/PIPELINES.md section 1 in plain Python: the independent reference the
tests compare Athena's output with (never used by the DAG itself).

Written from the spec, not from the SQL: raw records in, output rows out, one continuous
computation over everything it is given (no chunks, no lookback). Windows are taken over
event minutes with ``bisect`` on each location's sorted minutes, so gaps in the feed are
gaps in time, never "the preceding rows".
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

MINUTE = 60
CLASSES = (2, 3, 4, 5)
PREVIOUS_WINDOW = 20 * MINUTE  # previousSpeed: the latest earlier minute in [t - 20 min, t)
SHORT_WINDOW = 3 * MINUTE  # avgSpeed3Minutes: the minutes in (t - 3 min, t]
LONG_WINDOW = 20 * MINUTE  # avgSpeed20Minutes: the minutes in (t - 20 min, t]
SPEED_JUMP = 20  # km/h between consecutive minutes that counts as a jump
JAM_MAX_SPEED = 40
PLAUSIBLE_MAX_SPEED = 250

OUTPUT_COLUMNS = (
    "uniqueId", "lveNr", "recordTimestamp", "currentSpeed", "vehicleCount", "previousSpeed",
    "trafficIntensityClass2", "trafficIntensityClass3", "trafficIntensityClass4", "trafficIntensityClass5",
    "speedDiffIndicator", "avgSpeed3Minutes", "avgSpeed20Minutes", "trafficJamIndicator",
    "trafficJamIndicatorLong",
)  # fmt: skip


class BadReading(ValueError):
    """A raw value that Athena's CAST would refuse too; the message names the field and reading."""


@dataclass(frozen=True)
class Reading:
    """One delivered version of one detector's reading, its values parsed."""

    unieke_id: int | None
    lve_nr: int | None
    observed_at: int | None
    changed_at: datetime | None
    defect: int | None
    occupancy: int | None
    intensities: tuple[int | None, ...]  # classes 2..5
    speeds: tuple[float | None, ...]  # arithmetic mean speed of classes 2..5


def _text(record: Mapping[str, Any], field: str) -> str | None:
    value = record.get(field)
    if value is None or (isinstance(value, float) and math.isnan(value)):  # absent, or a pandas gap
        return None
    return str(value)


def _integer(record: Mapping[str, Any], field: str) -> int | None:
    text = _text(record, field)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise BadReading(f"field {field}: {text!r} is not an integer (reading {_identify(record)})") from None


def _number(record: Mapping[str, Any], field: str) -> float | None:
    text = _text(record, field)
    if text is None:
        return None
    try:
        return float(text.strip())
    except ValueError:
        raise BadReading(f"field {field}: {text!r} is not a number (reading {_identify(record)})") from None


def _instant(record: Mapping[str, Any], field: str) -> datetime | None:
    text = _text(record, field)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadReading(
            f"field {field}: {text!r} is not an ISO 8601 time (reading {_identify(record)})"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _identify(record: Mapping[str, Any]) -> str:
    return f"unieke_id={record.get('unieke_id')!r} tijd_waarneming={record.get('tijd_waarneming')!r}"


def parse_reading(record: Mapping[str, Any]) -> Reading:
    return Reading(
        unieke_id=_integer(record, "unieke_id"),
        lve_nr=_integer(record, "lve_nr"),
        observed_at=_integer(record, "tijd_waarneming"),
        changed_at=_instant(record, "tijd_laatst_gewijzigd"),
        defect=_integer(record, "defect"),
        occupancy=_integer(record, "rekendata_bezettingsgraad"),
        intensities=tuple(_integer(record, f"verkeersintensiteit_klasse{n}") for n in CLASSES),
        speeds=tuple(_number(record, f"voertuigsnelheid_rekenkundig_klasse{n}") for n in CLASSES),
    )


def _ascending(value: float | None) -> tuple[bool, float]:
    """Sort key: smaller first, missing last."""
    return (value is None, 0.0 if value is None else value)


def _descending(value: float | None) -> tuple[bool, float]:
    """Sort key: larger first, missing last."""
    return (value is None, 0.0 if value is None else -value)


def _preference(reading: Reading) -> tuple:
    """Which version of a reading wins: the latest change time; among versions changed at the
    same instant (normally identical copies) a fixed order of their values, so the pick never
    depends on delivery order."""
    changed = reading.changed_at.timestamp() if reading.changed_at is not None else None
    return (
        _descending(changed),
        _descending(reading.defect),
        _ascending(reading.occupancy),
        _ascending(reading.lve_nr),
        *(_ascending(i) for i in reading.intensities),
        *(_ascending(s) for s in reading.speeds),
    )


def latest_versions(readings: Iterable[Reading]) -> list[Reading]:
    """Step 0: one reading per (unieke_id, tijd_waarneming), the latest tijd_laatst_gewijzigd wins."""
    best: dict[tuple[int | None, int | None], Reading] = {}
    for reading in readings:
        key = (reading.unieke_id, reading.observed_at)
        if key not in best or _preference(reading) < _preference(best[key]):
            best[key] = reading
    return list(best.values())


def _keep(reading: Reading, points: Sequence[int] | None) -> bool:
    """Step 1: usable detector rows, optionally only the configured measuring points."""
    if reading.occupancy is None or reading.defect is None:
        return False
    if not (reading.occupancy > -1 and reading.defect == 0):
        return False
    return not points or reading.unieke_id in points


def detector_speed(reading: Reading) -> float | None:
    """Step 2: the mean speed over the classes that saw vehicles; None when none did."""
    seen = [
        speed for count, speed in zip(reading.intensities, reading.speeds, strict=True) if count and count > 0
    ]
    if not seen or any(speed is None for speed in seen):
        return None
    return sum(seen) / len(seen)


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _sum(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _round_half_away_from_zero(value: float) -> int:
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def jam_indicator(average: float | None) -> int:
    """Step 6: 1 = jam, 0 = flowing, -1 = no plausible average."""
    if average is None:
        return -1
    if 0 <= average <= JAM_MAX_SPEED:
        return 1
    if JAM_MAX_SPEED < average <= PLAUSIBLE_MAX_SPEED:
        return 0
    return -1


def speed_diff_indicator(speed: float | None, previous: float | None) -> int:
    """Step 5."""
    if speed is None or previous is None:
        return 0
    if speed - previous >= SPEED_JUMP:
        return 1
    if speed - previous <= -SPEED_JUMP:
        return -1
    return 0


def transform_records(
    records: Iterable[Mapping[str, Any]],
    start_epoch: int,
    end_epoch: int,
    points: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """Output rows for the event minutes in [start_epoch, end_epoch), by (lveNr, recordTimestamp),
    every window computed over all of ``records`` as one continuous feed."""
    readings = [r for r in latest_versions(parse_reading(record) for record in records) if _keep(r, points)]

    # step 3: the lanes of one location and minute
    lanes: dict[tuple[int | None, int], list[Reading]] = defaultdict(list)
    for reading in readings:
        if reading.observed_at is None:
            continue
        lanes[(reading.lve_nr, reading.observed_at - reading.observed_at % MINUTE)].append(reading)
    minutes_by_location: dict[int | None, list[int]] = defaultdict(list)
    location_minute: dict[tuple[int | None, int], dict[str, Any]] = {}
    for (lve_nr, minute), group in lanes.items():
        vehicles = [
            None if any(i is None for i in r.intensities) else sum(r.intensities)  # type: ignore[arg-type]
            for r in group
        ]
        mean_vehicles = _mean(vehicles)
        location_minute[(lve_nr, minute)] = {
            "uniqueId": max((r.unieke_id for r in group if r.unieke_id is not None), default=None),
            "lveNr": lve_nr,
            "recordTimestamp": minute,
            "currentSpeed": _mean(detector_speed(r) for r in group),
            "vehicleCount": None if mean_vehicles is None else _round_half_away_from_zero(mean_vehicles),
            **{
                f"trafficIntensityClass{n}": _sum(r.intensities[index] for r in group)
                for index, n in enumerate(CLASSES)
            },
        }
        minutes_by_location[lve_nr].append(minute)

    # steps 4-6: windows in event time, per location
    rows = []
    for lve_nr, minutes in minutes_by_location.items():
        minutes.sort()
        speeds = [location_minute[(lve_nr, m)]["currentSpeed"] for m in minutes]
        for position, minute in enumerate(minutes):
            if not start_epoch <= minute < end_epoch:
                continue
            row = location_minute[(lve_nr, minute)]
            earliest_previous = bisect_left(minutes, minute - PREVIOUS_WINDOW)
            previous = speeds[position - 1] if position > earliest_previous else None
            short = _mean(speeds[bisect_right(minutes, minute - SHORT_WINDOW) : position + 1])
            long = _mean(speeds[bisect_right(minutes, minute - LONG_WINDOW) : position + 1])
            rows.append(
                {
                    **row,
                    "previousSpeed": previous,
                    "speedDiffIndicator": speed_diff_indicator(row["currentSpeed"], previous),
                    "avgSpeed3Minutes": short,
                    "avgSpeed20Minutes": long,
                    "trafficJamIndicator": jam_indicator(short),
                    "trafficJamIndicatorLong": jam_indicator(long),
                }
            )
    rows.sort(key=lambda r: (_ascending(r["lveNr"]), r["recordTimestamp"]))
    return [{column: row[column] for column in OUTPUT_COLUMNS} for row in rows]


# The DataFrame face the DAG tests compare with: the class intensities named c2..c5.
FRAME_COLUMNS = {f"trafficIntensityClass{n}": f"c{n}" for n in CLASSES}


def transform(
    raw: pd.DataFrame, start_epoch: int, end_epoch: int, points: list[int] | None = None
) -> pd.DataFrame:
    """``transform_records`` over a DataFrame of raw records, as a DataFrame."""
    rows = transform_records(raw.to_dict("records"), start_epoch, end_epoch, points)
    return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS)).rename(columns=FRAME_COLUMNS)
