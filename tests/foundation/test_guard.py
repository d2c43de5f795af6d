"""The shared guard of destructive loads (pure): limits with a floor, the override, stale plans."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from pipelines.guard import (
    LargeRemovalRefused,
    LoadMark,
    Removal,
    RemovalLimit,
    StalePlanRefused,
    enforce_removal_limit,
    override_note,
    refuse_older_data,
    refuse_stale_plan,
    removal_problem,
)


def test_the_limit_is_the_share_of_what_is_stored_but_never_below_the_floor():
    limit = RemovalLimit(max_share=0.1, floor=10)
    assert [limit.allowed(n) for n in (0, 1, 99, 100, 109, 110, 1431)] == [10, 10, 10, 10, 10, 11, 143]


def test_a_removal_over_the_limit_names_counts_examples_threshold_and_override():
    removal = Removal("t", "rows", stored=40, removed=7, parts={"deleted": 2, "lowered": 5, "other": 0},
                      examples=["a", "b", "c", "d", "e", "f", "g"])  # fmt: skip
    # limit max(3, floor(0.1 x 40) = 4) = 4; 7 / 40 = 17.5%; parts with 0 are left out
    problem = removal_problem(removal, RemovalLimit(0.1, 3))
    assert problem == (
        "t: this run would remove or lower 7 of the 40 stored rows (17.5%: 2 deleted, 5 lowered; "
        "e.g. a, b, c, d, e and 2 more); the limit is 4 rows (max_removal_share 10.0% of 40, and at least 3)"
    )
    assert removal_problem(removal, RemovalLimit(0.1, 7)) is None  # the floor
    with pytest.raises(LargeRemovalRefused) as refused:
        enforce_removal_limit([problem, None], allow_large_removal=False)
    assert str(refused.value) == (
        f"refusing the load: {problem}. A source that shrinks this much is suspect, so nothing was "
        'written. If the data really shrank, trigger the run again with {"allow_large_removal": true} '
        '(or a larger "max_removal_share").'
    )
    assert enforce_removal_limit([problem, None], allow_large_removal=True) == [problem]
    assert enforce_removal_limit([None], allow_large_removal=False) == []
    assert override_note([problem]) == f"allow_large_removal=true let this run through: {problem}"


def test_everything_removed_from_an_empty_table_is_nothing():
    assert removal_problem(Removal("t", "rows", 0, 0, {"deleted": 0}), RemovalLimit(0.05, 0)) is None


MARK_A = LoadMark("run-a", "2026-01-01T00:00:00+00:00", "2026-01-01T00:05:00+00:00")
MARK_B = LoadMark("run-b", "2026-01-02T00:00:00+00:00", "2026-01-02T00:05:00+00:00")


def test_a_plan_is_stale_once_another_run_has_loaded_since_it_was_computed():
    refuse_stale_plan("covid_stats", "run-c", planned_against=MARK_B, current=MARK_B)  # nothing since
    refuse_stale_plan("covid_stats", "run-c", planned_against=None, current=None)  # first load ever
    refuse_stale_plan("covid_stats", "run-b", planned_against=MARK_A, current=MARK_B)  # its own load: a retry
    with pytest.raises(StalePlanRefused) as refused:
        refuse_stale_plan("covid_stats", "run-a", planned_against=None, current=MARK_B)
    assert str(refused.value) == (
        "refusing a stale plan: covid_stats was loaded by the newer run 'run-b' (run_after "
        "2026-01-02T00:00:00+00:00), loaded at 2026-01-02T00:05:00+00:00, after run 'run-a' computed "
        "this plan against the table before any marked load. Applying it would overwrite newer data, "
        "so nothing was written. Trigger a new run to load the current sources."
    )
    with pytest.raises(StalePlanRefused, match="computed this plan against run 'run-a'"):
        refuse_stale_plan("covid_stats", "run-c", planned_against=MARK_A, current=MARK_B)


def test_older_data_is_refused_same_or_newer_data_is_not():
    loaded = LoadMark("run-b", "2026-01-02T00:00:00+00:00", "x", data_as_of="2024-05-01T12:05:00+00:00")
    refuse_older_data("r", "run-c", datetime(2024, 5, 1, 12, 5, tzinfo=UTC), loaded)  # the same snapshot
    refuse_older_data("r", "run-c", datetime(2024, 5, 1, 12, 10, tzinfo=UTC), loaded)  # newer
    refuse_older_data("r", "run-c", datetime(2024, 5, 1, 12, 0, tzinfo=UTC), None)  # no load yet
    with pytest.raises(StalePlanRefused) as refused:
        refuse_older_data("r", "run-a", datetime(2024, 5, 1, 12, 0, tzinfo=UTC), loaded)
    assert "r already holds data as of 2024-05-01T12:05:00+00:00, loaded by the newer run 'run-b'" in str(
        refused.value
    )
    assert "run 'run-a' has data as of 2024-05-01T12:00:00+00:00" in str(refused.value)


def test_a_mark_round_trips_through_json():
    mark = LoadMark("r", "2026-01-01T00:00:00+00:00", "t", data_as_of="2024-05-01T12:00:00+00:00")
    assert LoadMark.from_json(mark.to_json()) == mark
    assert LoadMark.from_json(None) is None


def test_the_guard_imports_neither_airflow_nor_boto3():
    code = "import sys, pipelines.guard; print('airflow' in sys.modules, 'boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
