"""insert_chunk.sql on the offline Athena, chunk by chunk, equals one continuous computation of
docs/PIPELINES.md section 1 by the plain-Python reference: windows in event time (not rows), exact
with a 20-minute lookback whatever the chunk edges and gaps; one reading per detector and time,
the latest version winning."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from devtools.traffic_generator import Outage, raw_records, write_raw
from pipelines.traffic.chunks import Chunk, sql_parameters
from pipelines.traffic.reference import transform_records
from pipelines.traffic.steps import render_insert_sql
from tests.traffic.athena_chunks import (
    BUCKET,
    LATENESS,
    WINDOW,
    assert_written_equals_reference,
    clear_hours,
    consecutive_chunks,
    fresh_lake,
    insert_chunks,
    register_arrival_partitions,
    succeeded,
    written,
)

MIDNIGHTS = [
    datetime(2025, 1, 1, tzinfo=UTC),  # a year end
    datetime(2024, 3, 1, tzinfo=UTC),  # a leap day's end
    datetime(2024, 10, 27, tzinfo=UTC),  # the night Brussels (the publisher's clock) leaves summer time
]


@st.composite
def scenarios(draw):
    """A range of 1-4 chunks of 1-3 hours around a midnight; 1-2 locations of 1-2 lanes; random
    outages (one of them over the midnight), some longer than the 20-minute window; optionally
    byte-identical copies and corrected re-deliveries."""
    midnight = draw(st.sampled_from(MIDNIGHTS))
    hours = draw(st.lists(st.integers(1, 3), min_size=1, max_size=4))
    start = midnight - timedelta(hours=draw(st.integers(1, sum(hours))))
    end = start + timedelta(hours=sum(hours))
    locations = draw(st.integers(1, 2))
    location_ids = [None, *range(100, 100 + locations)]
    over_midnight = Outage(
        midnight - timedelta(minutes=draw(st.integers(0, 40))),
        midnight + timedelta(minutes=draw(st.integers(1, 60))),
        draw(st.sampled_from(location_ids)),
    )
    elsewhere = draw(
        st.lists(
            st.builds(
                lambda begin, minutes, lve_nr: Outage(
                    start + timedelta(minutes=begin), start + timedelta(minutes=begin + minutes), lve_nr
                ),
                st.integers(-60, sum(hours) * 60),
                st.one_of(st.integers(1, 4), st.integers(17, 23), st.integers(21, 150)),
                st.sampled_from(location_ids),
            ),
            max_size=3,
        )
    )
    return {
        "chunks": consecutive_chunks(start, hours),
        "start": start,
        "end": end,
        "generator": {
            "start": start - timedelta(hours=1),  # readings before the range: the first chunk's lookback
            "end": end + timedelta(minutes=30),  # and after it, which no chunk may take in
            "locations": locations,
            "lanes": draw(st.integers(1, 2)),
            "seed": draw(st.integers(0, 100_000)),
            "max_lateness": LATENESS,
            "outages": [over_midnight, *elsewhere],
            "copy_share": draw(st.sampled_from([0.0, 0.1])),
            "correction_share": draw(st.sampled_from([0.0, 0.1, 0.3])),
        },
    }


def land(stack, generator: dict) -> list[dict]:
    """Write the scenario's raw files, register their partitions; answer every delivered record."""
    fresh_lake(stack)
    write_raw(stack.client("s3"), BUCKET, **generator)
    register_arrival_partitions(stack)
    return list(raw_records(**generator))


@settings(
    max_examples=6,  # about 6 s of CPU each: the test stays well under 90 s on an idle machine
    deadline=None,
    # an example costs seconds of Athena queries: report the failing scenario as drawn, unshrunk
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_chunk_by_chunk_sql_with_a_20_minute_lookback_equals_one_continuous_computation(local_aws, scenario):
    records = land(local_aws, scenario["generator"])
    insert_chunks(local_aws, scenario["chunks"], lookback=WINDOW)
    # outages may silence the whole range: then nothing may be written either
    want = transform_records(records, int(scenario["start"].timestamp()), int(scenario["end"].timestamp()))
    assert_written_equals_reference(local_aws, want)


def test_the_steps_lookback_covers_the_longest_window():
    chunk = Chunk(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, 4, tzinfo=UTC))
    parameters = sql_parameters(chunk, LATENESS, None)
    assert parameters["chunk_start_epoch"] - parameters["lookback_start_epoch"] >= WINDOW.total_seconds()


HELD_OUT_START = datetime(2024, 12, 31, 18, tzinfo=UTC)
HELD_OUT_END = datetime(2025, 1, 1, 8, tzinfo=UTC)
HELD_OUT_DATA = {
    "start": HELD_OUT_START - timedelta(hours=2),
    "end": HELD_OUT_END + timedelta(hours=1),
    "locations": 3,
    "lanes": 2,
    "seed": 2025,
    "max_lateness": LATENESS,  # late arrivals spread every event hour over three arrival folders
    "outages": [
        Outage(datetime(2024, 12, 31, 23, 35, tzinfo=UTC), datetime(2025, 1, 1, 0, 25, tzinfo=UTC), 100),
        Outage(datetime(2024, 12, 31, 23, 58, tzinfo=UTC), datetime(2025, 1, 1, 0, 3, tzinfo=UTC), 101),
        Outage(datetime(2024, 12, 31, 21, 50, tzinfo=UTC), datetime(2024, 12, 31, 22, 9, tzinfo=UTC)),
        Outage(datetime(2025, 1, 1, 3, 10, tzinfo=UTC), datetime(2025, 1, 1, 6, 40, tzinfo=UTC), 102),
    ],
    "copy_share": 0.05,
    "correction_share": 0.1,
}


def test_held_out_year_end_with_late_arrivals_outages_redeliveries_and_an_overlapping_rerun(local_aws):
    records = land(local_aws, HELD_OUT_DATA)
    corrected = len(records) - len({(r["unieke_id"], r["tijd_waarneming"]) for r in records})
    assert corrected > 100  # the scenario does hold re-deliveries
    # the DAG's way: the steps' own parameters, chunks of 4 hours (every midnight is no edge here)
    first = consecutive_chunks(HELD_OUT_START, [4, 4, 4, 2])
    insert_chunks(local_aws, first)
    # an overlapping re-run with other chunk sizes: its hours cleared and rewritten
    rerun = consecutive_chunks(datetime(2024, 12, 31, 21, tzinfo=UTC), [1, 2, 3, 1])
    for chunk in rerun:
        clear_hours(local_aws, chunk)
    insert_chunks(local_aws, rerun)
    want = transform_records(records, int(HELD_OUT_START.timestamp()), int(HELD_OUT_END.timestamp()))
    assert_written_equals_reference(local_aws, want)


def _reading(unieke_id: int, observed: datetime, changed: str, speed: int, count: int = 3, defect: str = "0"):
    return {
        "unieke_id": str(unieke_id),
        "lve_nr": "7",
        "tijd_waarneming": int(observed.timestamp()),
        "tijd_laatst_gewijzigd": changed,
        "defect": defect,
        "rekendata_bezettingsgraad": "10",
        **{f"verkeersintensiteit_klasse{n}": str(count if n == 2 else 0) for n in (2, 3, 4, 5)},
        **{f"voertuigsnelheid_rekenkundig_klasse{n}": str(speed if n == 2 else 0) for n in (2, 3, 4, 5)},
    }


def test_a_corrected_reading_replaces_the_earlier_one_latest_by_instant_not_by_text(local_aws):
    """The night Brussels leaves summer time: 02:10+01:00 is later than 02:50+02:00, though
    smaller as text. A correction flagged defect removes its reading; identical copies count once."""
    fresh_lake(local_aws)
    minute = datetime(2024, 10, 27, 1, 0, tzinfo=UTC)
    lines = [
        _reading(1, minute, "2024-10-27T02:50:00+02:00", speed=50, count=4),  # 00:50 UTC
        _reading(1, minute, "2024-10-27T02:10:00+01:00", speed=90, count=6),  # 01:10 UTC: wins
        _reading(1, minute, "2024-10-27T02:10:00+01:00", speed=90, count=6),  # a Firehose copy
        _reading(2, minute + timedelta(seconds=5), "2024-10-27T02:00:00+01:00", speed=70, count=2),
        _reading(
            2, minute + timedelta(seconds=5), "2024-10-27T02:05:00+01:00", speed=70, count=2, defect="1"
        ),
        _reading(1, minute + timedelta(minutes=1), "2024-10-27T02:01:00+01:00", speed=30, count=1),
    ]
    for position, line in enumerate(lines):  # each version in a file (and arrival folder) of its own
        local_aws.client("s3").put_object(
            Bucket=BUCKET,
            Key=f"traffic/raw/2024/10/27/0{1 + position % 2}/part-{position}",
            Body=json.dumps(line),
        )
    register_arrival_partitions(local_aws)
    chunk = Chunk(minute, minute + timedelta(hours=1))
    succeeded(local_aws.client("athena"), render_insert_sql(sql_parameters(chunk, LATENESS, None)))
    rows, _ = written(local_aws)
    by_minute = {r["recordTimestamp"]: r for r in sorted(rows, key=lambda r: r["recordTimestamp"])}
    first, second = by_minute[int(minute.timestamp())], by_minute[int(minute.timestamp()) + 60]
    # detector 2's only reading was corrected to defect: the location's minute is detector 1 alone
    assert (first["uniqueId"], first["currentSpeed"], first["vehicleCount"]) == (1, 90.0, 6)
    assert first["trafficIntensityClass2"] == 6  # not 4 + 6 + 6 + 2
    assert (second["previousSpeed"], second["speedDiffIndicator"], second["avgSpeed3Minutes"]) == (
        90.0,
        -1,
        60.0,
    )
    assert transform_records(lines, int(chunk.start.timestamp()), int(chunk.end.timestamp())) == [
        {k: v for k, v in r.items() if k != "partition"} for r in (first, second)
    ]
