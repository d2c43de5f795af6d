"""The paths users take, through the real scheduler, api-server, triggerer and Celery worker."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from devtools.directory_sample import directory_csv
from devtools.traffic_generator import write_raw
from tests.conftest import REPO
from tests.e2e.conftest import BUCKET, partitions, query_count

pytestmark = pytest.mark.e2e
COVID = REPO / "sample_data" / "covid"


def test_rest_trigger_with_a_parameter(topology, runs):
    code, _ = topology.api("POST", "/api/v2/dags/market_orders/dagRuns", {"conf": {}}, token=None)
    assert code == 401
    runs.unpause("market_orders")
    code, body = topology.api(
        "POST", "/api/v2/dags/market_orders/dagRuns", {"logical_date": None, "conf": {"region_id": 5}}
    )
    assert code == 400 and "region_id" in str(body)
    run_id = runs.trigger("market_orders", {"region_id": 10000002, "concurrency": 8})
    assert runs.wait("market_orders", run_id) == "success", runs.task_states("market_orders", run_id)
    assert query_count(topology.aws, "market_orders", "region_id", "10000002") > 500


def test_scheduled_run_without_a_manual_trigger(topology, runs):
    for key, name in (("covid_cases_url", "nyt_us_snapshot_000bd91_through_2022-04-19.csv"),
                      ("covid_recoveries_url", "jhu_time-series-19-covid-combined_US_only.csv")):  # fmt: skip
        code, body = topology.api("POST", "/api/v2/variables", {"key": key, "value": str(COVID / name)})
        assert code in (200, 201), body
    runs.unpause("covid_daily")
    deadline = time.monotonic() + 240
    scheduled = []
    while time.monotonic() < deadline and not scheduled:
        scheduled = [r for r in runs.runs("covid_daily") if r["run_type"] == "scheduled"]
        time.sleep(2)
    assert scheduled, "the scheduler created no run"
    assert runs.wait("covid_daily", scheduled[0]["dag_run_id"]) == "success"
    assert query_count(topology.aws, "covid_stats", "pk", "CASES") == 420


def test_failure_alert_email_and_sns_message(topology, runs, tmp_path):
    bad = tmp_path / "cases.csv"
    bad.write_text("date,cases,deaths\n2020-01-22,1,0\n2020-01-23,-4,0\n")
    topology.smtp.clear()
    run_id = runs.trigger("covid_daily", {"cases_url": str(bad)})
    assert runs.wait("covid_daily", run_id) == "failed"
    [mail] = topology.smtp.wait_for(1, timeout=60)
    assert "covid_daily" in mail.subject and "extract" in mail.subject and run_id in mail.subject
    assert "row 3, column &#x27;cases&#x27;, value &#x27;-4&#x27;" in mail.text or "row 3" in mail.text
    assert f"{topology.api_url}/dags/covid_daily/runs/" in mail.text
    failures = [m for m in topology.aws.sent()["sns"] if "FAILED" in (m["subject"] or "")]
    assert failures and "Task: extract" in failures[-1]["message"]


def test_event_driven_run_from_an_s3_put(topology, runs):
    runs.unpause("department_directory")
    time.sleep(10)  # the triggerer picks up the watcher of the newly unpaused DAG
    topology.aws.client("s3").put_object(
        Bucket=BUCKET, Key="directory/incoming/staff.csv", Body=directory_csv(departments=5, employees=40)
    )
    # Wait for the table, not for the first finished run: the queue may also hold S3's
    # s3:TestEvent from setting up the notification, whose run has nothing to load.
    deadline, items = time.monotonic() + 240, []
    while time.monotonic() < deadline and len(items) < 5:
        items = topology.aws.client("dynamodb").scan(TableName="department_directory")["Items"]
        time.sleep(2)
    assert len(items) == 5 and {i["source_key"]["S"] for i in items} == {"directory/incoming/staff.csv"}
    finished = [r for r in runs.runs("department_directory") if r["state"] in ("success", "failed")]
    assert finished and all(r["state"] == "success" and r["run_type"] == "asset_triggered" for r in finished)


def _backfill(topology, runs, start: str, end: str, reprocess: str) -> float:
    began = datetime.now(UTC)
    result = topology.airflow(
        "backfill", "create", "--dag-id", "traffic_repartition", "--from-date", start, "--to-date", end,
        "--reprocess-behavior", reprocess, "--max-active-runs", "2", check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return began.timestamp()


def _wait_backfill(runs, expected_days: list[str], since: float, deferred: set, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mine = [r for r in runs.runs("traffic_repartition") if r["run_type"] == "backfill"
                and datetime.fromisoformat(r["queued_at"] or r["run_after"]).timestamp() >= since - 5]  # fmt: skip
        for run in mine:
            if run["state"] == "running":
                for task, state in runs.task_states("traffic_repartition", run["dag_run_id"]).items():
                    if state == "deferred":
                        deferred.add(task.split("[")[0])
        days = sorted(r["logical_date"][:10] for r in mine)
        # done when its runs are, and the scheduler has marked the backfill complete (only
        # then may the next backfill of the DAG be created)
        if days == expected_days and all(r["state"] in ("success", "failed") for r in mine):
            code, body = runs.t.api("GET", "/api/v2/backfills?dag_id=traffic_repartition")
            if code == 200 and all(b["completed_at"] for b in body["backfills"]):
                return mine
        time.sleep(1)
    raise TimeoutError(f"backfill runs not done: {[(r['logical_date'], r['state']) for r in mine]}")


@pytest.mark.timeout(900)  # two backfills: 5 daily runs through Athena
def test_backfill_writes_each_day_once_and_deferrable_tasks_wait_in_the_triggerer(topology, runs):
    first_day = datetime(2024, 1, 2, tzinfo=UTC)
    write_raw(topology.aws.client("s3"), BUCKET, first_day - timedelta(hours=3),
              first_day + timedelta(days=3, hours=3), locations=2, lanes=1)  # fmt: skip
    # 3 days, then 2 of them again: enough for "each day once" and "a re-run changes nothing";
    # longer backfills are the chaos scenario's and the DAG tests' (make e2e stays < 20 min)
    days = [(first_day + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(3)]
    runs.unpause("traffic_repartition")  # backfill runs start only on an unpaused DAG
    deferred: set[str] = set()
    since = _backfill(topology, runs, days[0], days[-1], "none")
    finished = _wait_backfill(runs, days, since, deferred)
    assert all(r["state"] == "success" for r in finished), [(r["logical_date"], r["state"]) for r in finished]
    first = partitions(topology.aws)
    assert len(first) == 3 * 24 and {files for files, _rows in first.values()} == {1}
    # deferrable operators were DEFERRED: held by the triggerer, not a worker slot
    assert deferred & {"write_chunk", "count_rows",
                       "wait_for_late_events", "create_raw_table", "create_target_table"}, deferred  # fmt: skip

    since = _backfill(topology, runs, days[1], days[2], "completed")
    again = _wait_backfill(runs, days[1:3], since, deferred)
    assert all(r["state"] == "success" for r in again)
    assert partitions(topology.aws) == first  # same partitions, one file each, same row counts
