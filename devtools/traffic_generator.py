"""Realistic raw traffic events, shaped like the Flemish MIV feed after Firehose (see
sample_data/traffic/PROVENANCE.md): one JSON object per lane detector per minute, every value a
string (as the real flattened feed), written under ARRIVAL-hour prefixes YYYY/MM/DD/HH/.

Deterministic by seed: measuring points (``lve_nr``) with several lanes each
(``unieke_id``), free-flowing traffic with rush-hour congestion, empty classes (speed 0,
harmonic 252 = no measurement), defect detectors, unavailable readings
(``rekendata_bezettingsgraad = -1``), late arrivals that cross hour prefixes (up to
``max_lateness``), and a mix of gzip and plain files.
"""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

RAW_PREFIX = "traffic/raw/"


def _speed_profile(minute_of_day: int, rng: random.Random) -> float:
    rush = 420 <= minute_of_day < 540 or 960 <= minute_of_day < 1110
    base = rng.uniform(15, 45) if rush and rng.random() < 0.7 else rng.uniform(85, 125)
    return max(5.0, base)


def readings(
    start: datetime, end: datetime, locations: int = 2, lanes: int = 2, seed: int = 42
) -> Iterator[dict[str, Any]]:
    """One raw reading per lane detector per minute of [start, end)."""
    rng = random.Random(seed)
    minute = start.replace(second=0, microsecond=0)
    while minute < end:
        minute_of_day = minute.hour * 60 + minute.minute
        for location in range(locations):
            lve_nr = 100 + location
            location_speed = _speed_profile(minute_of_day, rng)
            for lane in range(lanes):
                unique_id = 1000 + location * 10 + lane
                record: dict[str, Any] = {
                    "beschrijvende_id": f"H{lve_nr}L{lane + 10}",
                    "unieke_id": str(unique_id),
                    "lve_nr": str(lve_nr),
                    "tijd_waarneming": int(minute.timestamp()) + rng.randint(0, 59),
                    "tijd_laatst_gewijzigd": minute.isoformat(),
                    "actueel_publicatie": "1",
                    "beschikbaar": "1",
                    "defect": "1" if rng.random() < 0.01 else "0",
                    "geldig": "0",
                }
                for klasse in range(1, 6):
                    count = rng.choice([0, 0, 1, 2, 3, 5, 8]) if klasse != 1 else 0
                    speed = round(location_speed * rng.uniform(0.85, 1.15)) if count else 0
                    record[f"verkeersintensiteit_klasse{klasse}"] = str(count)
                    record[f"voertuigsnelheid_rekenkundig_klasse{klasse}"] = str(speed)
                    record[f"voertuigsnelheid_harmonisch_klasse{klasse}"] = str(speed if count else 252)
                occupancy = -1 if rng.random() < 0.01 else rng.randint(0, 60)
                record["rekendata_bezettingsgraad"] = str(occupancy)
                record["rekendata_beschikbaarheidsgraad"] = "100"
                record["rekendata_onrustigheid"] = str(rng.randint(0, 100))
                if rng.random() < 0.3:  # the real feed mixes ints and strings
                    record["voertuigsnelheid_rekenkundig_klasse2"] = int(
                        record["voertuigsnelheid_rekenkundig_klasse2"]
                    )
                yield record
        minute += timedelta(minutes=1)


def by_arrival_hour(
    records: Iterator[dict[str, Any]], max_lateness: timedelta, seed: int = 7
) -> dict[datetime, list[dict[str, Any]]]:
    """Group readings by the hour they arrive in: most within a minute, some up to max_lateness."""
    rng = random.Random(seed)
    files: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    limit = int(max_lateness.total_seconds())
    for record in records:
        delay = rng.randint(1, 90) if rng.random() < 0.9 else rng.randint(90, max(91, limit))
        arrival = datetime.fromtimestamp(int(record["tijd_waarneming"]) + delay, UTC)
        files[arrival.replace(minute=0, second=0, microsecond=0)].append(record)
    return files


def write_raw(
    s3: Any,
    bucket: str,
    start: datetime,
    end: datetime,
    locations: int = 2,
    lanes: int = 2,
    seed: int = 42,
    max_lateness: timedelta = timedelta(hours=2),
) -> dict[str, int]:
    """Generate and upload; answer counts (records, files)."""
    grouped = by_arrival_hour(readings(start, end, locations, lanes, seed), max_lateness, seed)
    records = files = 0
    for hour, rows in sorted(grouped.items()):
        body = "".join(json.dumps(row) + "\n" for row in rows).encode()
        name = f"firehose-{hour:%Y-%m-%d-%H}-{seed}"
        if hour.hour % 2:
            key, data = f"{RAW_PREFIX}{hour:%Y/%m/%d/%H}/{name}.gz", gzip.compress(body)
        else:
            key, data = f"{RAW_PREFIX}{hour:%Y/%m/%d/%H}/{name}", body
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        records += len(rows)
        files += 1
    return {"records": records, "files": files}
