"""The plain-Python reference of docs/PIPELINES.md section 1 against values worked out by hand from
the spec, so the SQL tests compare with something that is itself right."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devtools.traffic_generator import Outage, raw_records
from pipelines.traffic.reference import BadReading, transform, transform_records

T0 = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
MIN = 60


def reading(
    minute: int,
    speed: float | None = None,
    *,
    unieke_id: int = 1,
    lve_nr: int = 7,
    second: int = 0,
    changed: str = "2025-01-01T01:00:00+01:00",
    counts: tuple[int, int, int, int] = (2, 0, 0, 0),
    speeds: tuple[float, float, float, float] | None = None,
    defect: str = "0",
    occupancy: str = "10",
) -> dict:
    """A raw record at T0 + ``minute`` minutes (+ ``second``) with class-2 speed ``speed``."""
    speeds = speeds or (speed or 0, 0, 0, 0)
    return {
        "unieke_id": str(unieke_id),
        "lve_nr": str(lve_nr),
        "tijd_waarneming": T0 + minute * MIN + second,
        "tijd_laatst_gewijzigd": changed,
        "defect": defect,
        "rekendata_bezettingsgraad": occupancy,
        **{f"verkeersintensiteit_klasse{n}": str(c) for n, c in zip((2, 3, 4, 5), counts, strict=True)},
        **{f"voertuigsnelheid_rekenkundig_klasse{n}": s for n, s in zip((2, 3, 4, 5), speeds, strict=True)},
    }


def rows_by_minute(records, start_minute=-1000, end_minute=1000) -> dict[int, dict]:
    rows = transform_records(records, T0 + start_minute * MIN, T0 + end_minute * MIN)
    return {(r["recordTimestamp"] - T0) // MIN: r for r in rows}


def test_windows_are_event_time_spans_not_rows_so_gaps_shorten_them():
    # minutes 0, 1, 2, 10, then a 25-minute silence, then 35 and 36
    speeds = {0: 100.0, 1: 80.0, 2: 60.0, 10: 30.0, 35: 90.0, 36: 120.0}
    rows = rows_by_minute([reading(m, s) for m, s in speeds.items()])
    assert rows[2]["avgSpeed3Minutes"] == pytest.approx((100 + 80 + 60) / 3)  # minutes 0..2 in (t-3, t]
    assert rows[10]["avgSpeed3Minutes"] == 30.0  # nothing else in (7, 10]
    assert rows[10]["previousSpeed"] == 60.0 and rows[10]["avgSpeed20Minutes"] == pytest.approx(67.5)
    assert rows[35]["previousSpeed"] is None  # minute 10 is 25 minutes back: outside [15, 35)
    assert rows[35]["avgSpeed20Minutes"] == 90.0  # (15, 35] holds only minute 35
    assert rows[36]["previousSpeed"] == 90.0 and rows[36]["speedDiffIndicator"] == 1
    assert rows[0]["previousSpeed"] is None and rows[0]["speedDiffIndicator"] == 0


def test_window_bounds_previous_includes_t_minus_20_averages_exclude_it():
    rows = rows_by_minute([reading(0, 50.0), reading(17, 100.0), reading(20, 10.0)])
    assert rows[20]["previousSpeed"] == 100.0
    assert rows[20]["avgSpeed20Minutes"] == pytest.approx(55.0)  # minute 0 is t - 20: excluded
    assert rows[20]["avgSpeed3Minutes"] == 10.0  # minute 17 is t - 3: excluded
    only_edge = rows_by_minute([reading(0, 50.0), reading(20, 10.0)])
    assert only_edge[20]["previousSpeed"] == 50.0  # t - 20 is in [t - 20, t)
    assert only_edge[20]["speedDiffIndicator"] == -1


def test_a_minute_without_a_speed_is_the_previous_one_and_is_skipped_by_averages():
    rows = rows_by_minute([reading(0, 70.0), reading(1, counts=(0, 0, 0, 0)), reading(2, 90.0)])
    assert rows[1]["currentSpeed"] is None and rows[1]["avgSpeed3Minutes"] == 70.0
    assert rows[2]["previousSpeed"] is None  # the latest earlier minute had no speed
    assert rows[2]["avgSpeed3Minutes"] == 80.0 and rows[1]["trafficJamIndicator"] == 0


def test_detector_speed_lanes_and_counts():
    records = [
        reading(0, counts=(2, 0, 3, 1), speeds=(100, 7, 80, 121), unieke_id=1),  # (100 + 80 + 121) / 3
        reading(0, counts=(1, 0, 0, 0), speeds=(60, 0, 0, 0), unieke_id=3, second=30),
    ]
    row = rows_by_minute(records)[0]
    assert row["currentSpeed"] == pytest.approx(((100 + 80 + 121) / 3 + 60) / 2)
    assert row["uniqueId"] == 3
    assert row["vehicleCount"] == 4  # round((6 + 1) / 2) = round(3.5), half away from zero
    assert [row[f"trafficIntensityClass{n}"] for n in (2, 3, 4, 5)] == [3, 0, 3, 1]


def test_jam_indicators_follow_the_spec_bounds():
    rows = rows_by_minute([reading(0, 40.0), reading(5, 40.5), reading(10, 250.0), reading(15, 251.0)])
    assert [rows[m]["trafficJamIndicator"] for m in (0, 5, 10, 15)] == [1, 0, 0, -1]
    assert rows_by_minute([reading(0, counts=(0, 0, 0, 0))])[0]["trafficJamIndicatorLong"] == -1


def test_the_latest_version_wins_by_instant_and_is_filtered_after():
    records = [
        reading(0, 50.0, changed="2024-10-27T02:50:00+02:00"),
        reading(0, 90.0, changed="2024-10-27T02:10:00+01:00"),  # later, though smaller as text
        reading(0, 90.0, changed="2024-10-27T02:10:00+01:00"),  # an identical copy
        reading(1, 70.0, changed="2024-10-27T02:10:00+01:00"),
        reading(1, 70.0, changed="2024-10-27T02:20:00+01:00", defect="1"),  # corrected to defect
        reading(2, 30.0, changed="2024-10-27T02:20:00+01:00", occupancy="-1"),
        reading(2, 35.0, changed="2024-10-27T02:10:00+01:00"),  # older: loses, so minute 2 is gone
    ]
    rows = rows_by_minute(records)
    assert sorted(rows) == [0]
    assert rows[0]["currentSpeed"] == 90.0 and rows[0]["trafficIntensityClass2"] == 2


def test_versions_changed_at_the_same_instant_pick_the_same_one_in_any_order():
    a = reading(0, 50.0, changed="2025-01-01T01:00:00+01:00")
    b = reading(0, 60.0, changed="2025-01-01T00:00:00+00:00")
    assert transform_records([a, b], T0, T0 + MIN) == transform_records([b, a], T0, T0 + MIN)


def test_measuring_points_and_the_output_range():
    records = [reading(m, 80.0, unieke_id=u, lve_nr=u) for m in range(5) for u in (1, 2)]
    rows = transform_records(records, T0 + 2 * MIN, T0 + 4 * MIN, points=[2])
    assert [(r["lveNr"], (r["recordTimestamp"] - T0) // MIN) for r in rows] == [(2, 2), (2, 3)]
    assert rows[0]["previousSpeed"] == 80.0  # windows still see minutes before the range


@pytest.mark.parametrize(
    ("field", "value"),
    [("verkeersintensiteit_klasse3", "12.5"), ("tijd_laatst_gewijzigd", "yesterday"), ("defect", "no")],
)
def test_a_value_athena_cannot_cast_is_an_error_naming_field_and_reading(field, value):
    with pytest.raises(BadReading, match=rf"field {field}: '{value}' .*unieke_id='1'"):
        transform_records([{**reading(0, 50.0), field: value}], T0, T0 + MIN)


def test_chunked_reference_runs_with_a_20_minute_lookback_equal_the_continuous_one():
    """The spec's claim, on the reference itself: a chunk that sees only 20 minutes before its
    start computes the same rows, across outages over midnight and re-deliveries."""
    start, end = datetime(2024, 12, 31, 22, tzinfo=UTC), datetime(2025, 1, 1, 2, tzinfo=UTC)
    outage = Outage(datetime(2024, 12, 31, 23, 50, tzinfo=UTC), datetime(2025, 1, 1, 0, 15, tzinfo=UTC), 100)
    records = list(raw_records(start, end, 2, 2, 5, outages=[outage], copy_share=0.1, correction_share=0.2))
    whole = transform_records(records, T0 - 3600, T0 + 7200)
    chunked = []
    for chunk_start in range(T0 - 3600, T0 + 7200, 1800):
        seen = [r for r in records if chunk_start - 20 * MIN <= r["tijd_waarneming"] < chunk_start + 1800]
        chunked += transform_records(seen, chunk_start, chunk_start + 1800)
    assert sorted(chunked, key=lambda r: (r["lveNr"], r["recordTimestamp"])) == whole
    shorter = [r for r in records if T0 - 10 * MIN <= r["tijd_waarneming"] < T0 + 1800]  # too short
    assert transform_records(shorter, T0, T0 + 1800) != [
        r for r in whole if T0 <= r["recordTimestamp"] < T0 + 1800
    ]


def test_the_dataframe_face_keeps_the_dag_tests_column_names():
    import pandas as pd

    frame = transform(pd.DataFrame([reading(0, 50.0), reading(1, 70.0)]), T0, T0 + 2 * MIN)
    assert list(frame["c2"]) == [2, 2] and list(frame["previousSpeed"].isna()) == [True, False]
