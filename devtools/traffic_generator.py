"""Realistic raw traffic events, shaped like the Flemish MIV feed after Firehose (see
sample_data/traffic/PROVENANCE.md): one JSON object per lane detector per minute, every value a
string (as the real flattened feed), written under ARRIVAL-hour prefixes YYYY/MM/DD/HH/.

Deterministic by seed: measuring points (``lve_nr``) with several lanes each
(``unieke_id``), free-flowing traffic with rush-hour congestion, empty classes (speed 0,
harmonic 252 = no measurement), defect detectors, unavailable readings
(``rekendata_bezettingsgraad = -1``), late arrivals that cross hour prefixes (up to
``max_lateness``), and a mix of gzip and plain files. On request: outages (a location, or
all, silent for a while) and re-deliveries (byte-identical copies, as Firehose delivers at
least once, and corrected versions published later with a later ``tijd_laatst_gewijzigd``).
``tijd_laatst_gewijzigd`` is ISO 8601 in Brussels time with its offset, as the real feed has it.
"""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

RAW_PREFIX = "traffic/raw/"
PUBLISHER_TIME_ZONE = ZoneInfo("Europe/Brussels")


@dataclass(frozen=True)
class Outage:
    """No readings from ``lve_nr`` (None: every location) for event times in [start, end)."""

    start: datetime
    end: datetime
    lve_nr: int | None = None

    def silences(self, lve_nr: int, moment: datetime) -> bool:
        return self.start <= moment < self.end and self.lve_nr in (None, lve_nr)


def publisher_time(moment: datetime) -> str:
    """``2024-12-31T23:00:00+01:00``: the feed's ISO 8601 with the publisher's offset."""
    return moment.astimezone(PUBLISHER_TIME_ZONE).isoformat()


def _speed_profile(minute_of_day: int, rng: random.Random) -> float:
    rush = 420 <= minute_of_day < 540 or 960 <= minute_of_day < 1110
    base = rng.uniform(15, 45) if rush and rng.random() < 0.7 else rng.uniform(85, 125)
    return max(5.0, base)


def readings(
    start: datetime,
    end: datetime,
    locations: int = 2,
    lanes: int = 2,
    seed: int = 42,
    outages: Sequence[Outage] = (),
) -> Iterator[dict[str, Any]]:
    """One raw reading per lane detector per minute of [start, end), except during ``outages``
    (the readings an outage silences are still drawn, so the rest stay the same)."""
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
                    "tijd_laatst_gewijzigd": publisher_time(minute),
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
                if not any(outage.silences(lve_nr, minute) for outage in outages):
                    yield record
        minute += timedelta(minutes=1)


def with_redeliveries(
    records: Iterable[dict[str, Any]],
    copy_share: float = 0.05,
    correction_share: float = 0.05,
    max_lateness: timedelta = timedelta(hours=2),
    seed: int = 11,
) -> Iterator[dict[str, Any]]:
    """Each record, then sometimes a byte-identical copy and sometimes one or two corrected
    versions: new counts and speeds (now and then flagged defect, or no longer defect),
    published 1 minute to ``max_lateness`` - 2 minutes after the event (so they still arrive
    within ``max_lateness``)."""
    rng = random.Random(seed)
    latest_publication = max(60, int(max_lateness.total_seconds()) - 120)
    for record in records:
        yield record
        if rng.random() < copy_share:
            yield dict(record)
        if rng.random() < correction_share:
            published = int(record["tijd_waarneming"])
            for _ in range(rng.choice([1, 1, 2])):
                published = rng.randint(
                    published + 60, max(published + 60, int(record["tijd_waarneming"]) + latest_publication)
                )
                corrected = dict(
                    record, tijd_laatst_gewijzigd=publisher_time(datetime.fromtimestamp(published, UTC))
                )
                for klasse in range(2, 6):
                    count = rng.choice([0, 1, 2, 4, 7])
                    corrected[f"verkeersintensiteit_klasse{klasse}"] = str(count)
                    corrected[f"voertuigsnelheid_rekenkundig_klasse{klasse}"] = str(
                        rng.randint(10, 130) if count else 0
                    )
                roll = rng.random()
                corrected["defect"] = "1" if roll < 0.1 else "0" if roll < 0.2 else record["defect"]
                yield corrected


def by_arrival_hour(
    records: Iterator[dict[str, Any]], max_lateness: timedelta, seed: int = 7
) -> dict[datetime, list[dict[str, Any]]]:
    """Group readings by the hour they arrive in: most within a minute, some up to max_lateness
    after the event; a correction never before it was published."""
    rng = random.Random(seed)
    files: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    limit = int(max_lateness.total_seconds())
    for record in records:
        delay = rng.randint(1, 90) if rng.random() < 0.9 else rng.randint(90, max(91, limit))
        published = datetime.fromisoformat(record["tijd_laatst_gewijzigd"]).timestamp()
        observed = int(record["tijd_waarneming"])
        arrival = datetime.fromtimestamp(max(observed + min(delay, limit), int(published) + 1), UTC)
        files[arrival.replace(minute=0, second=0, microsecond=0)].append(record)
    return files


def raw_records(
    start: datetime,
    end: datetime,
    locations: int = 2,
    lanes: int = 2,
    seed: int = 42,
    max_lateness: timedelta = timedelta(hours=2),
    outages: Sequence[Outage] = (),
    copy_share: float = 0.0,
    correction_share: float = 0.0,
) -> Iterator[dict[str, Any]]:
    """Every delivered version of every reading of [start, end), as ``write_raw`` lands them."""
    records = readings(start, end, locations, lanes, seed, outages)
    if copy_share or correction_share:
        records = with_redeliveries(records, copy_share, correction_share, max_lateness, seed + 1)
    return records


def write_raw(
    s3: Any,
    bucket: str,
    start: datetime,
    end: datetime,
    locations: int = 2,
    lanes: int = 2,
    seed: int = 42,
    max_lateness: timedelta = timedelta(hours=2),
    outages: Sequence[Outage] = (),
    copy_share: float = 0.0,
    correction_share: float = 0.0,
) -> dict[str, int]:
    """Generate and upload; answer counts (records, files)."""
    grouped = by_arrival_hour(
        raw_records(start, end, locations, lanes, seed, max_lateness, outages, copy_share, correction_share),
        max_lateness,
        seed,
    )
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
