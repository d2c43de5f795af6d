"""Chaos on the production topology: a Celery worker SIGKILLed mid-write, overlapping runs.

Each scenario first makes an undisturbed run, keeps what it wrote, wipes it, then makes
the disturbed run(s) and compares: the data must be identical (every event hour once, the
same rows; the same DynamoDB items). Recovery is Airflow's own: the killed task stops
heart-beating, the scheduler fails its attempt (test topology: 30 s heartbeat timeout,
devtools/topology.py), and the retry runs on the restarted worker.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from devtools.traffic_generator import write_raw
from pipelines.aws.dynamodb import deserialize_item
from tests.e2e.conftest import BUCKET, partitions, query_count

# part of `make e2e`; `make chaos` selects only these
pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

# The task that clears and writes a chunk's event-hour partitions. `write_chunk` once
# clear+insert is one task attempt (traffic-dag branch); `process_chunk.insert_chunk` on
# the design where a separate task clears first (whose retry appends: this scenario fails
# there, as it should). Change it here if the task is renamed again.
CHUNK_WRITING_TASKS = frozenset({"write_chunk", "process_chunk.insert_chunk"})
MARKET_REGION = "10000043"  # not the region of the REST-trigger scenario
TRAFFIC_DAYS = [datetime(2024, 2, 5, tzinfo=UTC) + timedelta(days=i) for i in range(3)]
# The DAG's default lateness and margin, as backfill runs have: the overlapping scenario
# compares backfill runs with a manual run, and a run's last hours hold the late arrivals
# its max_lateness_minutes lets in (a run with 0 has fewer rows at 22:00-23:59 than one with 120)
TRAFFIC_CONF = {
    "start": TRAFFIC_DAYS[0].isoformat(),
    "end": (TRAFFIC_DAYS[-1] + timedelta(days=1)).isoformat(),
    "chunk_hours": 24,  # three chunks: three chunk-writing task instances
}
DAY_KEYS = {(d.strftime("%Y"), d.strftime("%m"), d.strftime("%d")) for d in TRAFFIC_DAYS}
RUN_TIMEOUT = 600  # an undisturbed run, on a busy machine
RECOVERY_TIMEOUT = 600  # heartbeat timeout + retry delay + the rest of the run, on a busy machine


def _traffic_partitions(aws) -> dict[tuple, tuple[int, int]]:
    return {key: value for key, value in partitions(aws).items() if key[:3] in DAY_KEYS}


def _wipe_traffic_days(aws) -> None:
    """The scenario's event days removed from S3, so a run that writes nothing cannot pass."""
    s3 = aws.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="traffic/transformed/"):
        for obj in page.get("Contents", []):
            key = tuple(part.split("=")[1] for part in obj["Key"].split("/")[2:5])
            if key in DAY_KEYS:
                s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    assert _traffic_partitions(aws) == {}


def _market_items(aws) -> dict[str, dict]:
    found = {}
    for page in aws.client("dynamodb").get_paginator("query").paginate(
        TableName="market_orders", KeyConditionExpression="region_id = :r",
        ExpressionAttributeValues={":r": {"S": MARKET_REGION}},
    ):  # fmt: skip
        for item in page["Items"]:
            found[item["type_id"]["S"]] = deserialize_item(item)
    return found


def _wipe_market_region(aws) -> None:
    client = aws.client("dynamodb")
    for type_id in _market_items(aws):
        client.delete_item(
            TableName="market_orders", Key={"region_id": {"S": MARKET_REGION}, "type_id": {"S": type_id}}
        )
    assert _market_items(aws) == {}


def _kill_and_restart_worker(topology) -> list[int]:
    killed = topology.kill("worker")
    topology.start("worker")
    return killed


def _wait_for_running(runs, dag_id: str, run_id: str, task_ids, timeout: float = RUN_TIMEOUT) -> dict:
    """The first task instance of ``task_ids`` seen RUNNING (on the worker, not deferred)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ti in runs.task_instances(dag_id, run_id):
            if ti["task_id"] in task_ids and ti["state"] == "running":
                return ti
        state = runs.state(dag_id, run_id)
        assert state in ("queued", "running"), (  # a queued run has not started yet
            f"{dag_id} {run_id} ended ({state}) before a task of {sorted(task_ids)} was seen running"
        )
        time.sleep(0.2)
    raise TimeoutError(f"no task of {sorted(task_ids)} ran within {timeout}s")


def _retried(runs, dag_id: str, run_id: str, killed: dict) -> dict:
    [after] = [
        ti for ti in runs.task_instances(dag_id, run_id)
        if (ti["task_id"], ti["map_index"]) == (killed["task_id"], killed["map_index"])
    ]  # fmt: skip
    assert after["state"] == "success" and after["try_number"] > killed["try_number"], after
    return after


@pytest.mark.timeout(1500)
def test_market_load_survives_a_killed_worker_with_the_same_items(topology, runs):
    topology.esi.pages = 20  # ~3000 types: a load long enough to be caught writing
    runs.unpause("market_orders")
    conf = {"region_id": int(MARKET_REGION), "concurrency": 8, "snapshot_margin_seconds": 0}
    reference_run = runs.trigger("market_orders", conf)
    assert runs.wait("market_orders", reference_run, timeout=RUN_TIMEOUT) == "success", runs.task_states(
        "market_orders", reference_run
    )
    reference = _market_items(topology.aws)
    assert len(reference) > 2000
    _wipe_market_region(topology.aws)

    # BatchWriteItem leaving half its requests unprocessed: the load retries them, slowly
    topology.aws.set_faults(dynamodb_unprocessed_rate=0.5, seed=5)
    try:
        run_id = runs.trigger("market_orders", conf)
        load = _wait_for_running(runs, "market_orders", run_id, {"load"})
        deadline = time.monotonic() + 120
        while not 0 < query_count(topology.aws, "market_orders", "region_id", MARKET_REGION) < len(reference):
            assert time.monotonic() < deadline, (
                "the load wrote nothing, or everything, before it could be killed"
            )
            time.sleep(0.05)
        killed = _kill_and_restart_worker(topology)
        written_when_killed = query_count(topology.aws, "market_orders", "region_id", MARKET_REGION)
    finally:
        topology.aws.set_faults(dynamodb_unprocessed_rate=0)
    assert len(killed) >= 2, killed  # the worker and the task's processes
    assert 0 < written_when_killed < len(reference)
    assert runs.wait("market_orders", run_id, timeout=RECOVERY_TIMEOUT) == "success"
    _retried(runs, "market_orders", run_id, load)
    assert _market_items(topology.aws) == reference  # the same items, attribute for attribute


@pytest.mark.timeout(1500)
def test_a_chunk_write_survives_a_killed_worker_with_every_hour_once(topology, runs):
    write_raw(topology.aws.client("s3"), BUCKET, TRAFFIC_DAYS[0] - timedelta(hours=3),
              TRAFFIC_DAYS[-1] + timedelta(days=1, hours=3), locations=2, lanes=1)  # fmt: skip
    runs.unpause("traffic_repartition")
    reference_run = runs.trigger("traffic_repartition", TRAFFIC_CONF)
    assert runs.wait("traffic_repartition", reference_run, timeout=RUN_TIMEOUT) == "success", (
        runs.task_states("traffic_repartition", reference_run)
    )
    reference = _traffic_partitions(topology.aws)
    assert len(reference) == 24 * len(TRAFFIC_DAYS) and {files for files, _ in reference.values()} == {1}
    _wipe_traffic_days(topology.aws)

    run_id = runs.trigger("traffic_repartition", TRAFFIC_CONF)
    writer = _wait_for_running(runs, "traffic_repartition", run_id, CHUNK_WRITING_TASKS)
    killed = _kill_and_restart_worker(topology)
    assert len(killed) >= 2, killed
    state = runs.wait("traffic_repartition", run_id, timeout=RECOVERY_TIMEOUT)
    assert state == "success", runs.task_states("traffic_repartition", run_id)
    _retried(runs, "traffic_repartition", run_id, writer)
    assert _traffic_partitions(topology.aws) == reference  # every event hour once, the same rows


def _create_backfill(topology, token: str, days: tuple[datetime, datetime]) -> tuple[int, dict]:
    body = {"dag_id": "traffic_repartition", "from_date": days[0].isoformat(), "to_date": days[1].isoformat(),
            "reprocess_behavior": "completed", "max_active_runs": 2}  # fmt: skip
    return topology.api("POST", "/api/v2/backfills", body, token=token)


@pytest.mark.timeout(1500)
def test_overlapping_backfills_and_a_manual_run_started_together_give_the_data_of_one_run(topology, runs):
    reference = _traffic_partitions(topology.aws)
    assert len(reference) == 24 * len(TRAFFIC_DAYS), (
        "runs after the chunk-writer scenario, which makes the reference"
    )
    _wipe_traffic_days(topology.aws)
    runs.wait_backfills_done("traffic_repartition", since=0)  # none left over from other scenarios
    token = topology.token()
    since = datetime.now(UTC).timestamp()
    ranges = [(TRAFFIC_DAYS[0], TRAFFIC_DAYS[1]), (TRAFFIC_DAYS[1], TRAFFIC_DAYS[2])]  # both hold day 2
    answers: dict[tuple, tuple[int, dict]] = {}
    threads = [
        threading.Thread(
            target=lambda days=days: answers.__setitem__(days, _create_backfill(topology, token, days))
        )
        for days in ranges
    ]
    for thread in threads:
        thread.start()
    manual = runs.trigger("traffic_repartition", TRAFFIC_CONF)  # every day of both, beside them
    for thread in threads:
        thread.join()
    # Airflow runs one backfill per DAG at a time: the other is refused with 409, and is
    # created once the first is done (still beside the manual run when that is slower)
    assert sorted(code for code, _body in answers.values()) in ([200, 200], [200, 409]), answers
    for days, (code, body) in answers.items():
        if code == 409:
            assert "already a running backfill" in str(body), body
            runs.wait_backfills_done("traffic_repartition", since)
            code, body = _create_backfill(topology, token, days)
            assert code == 200, body
    assert runs.wait("traffic_repartition", manual, timeout=RUN_TIMEOUT) == "success"
    finished = runs.wait_backfills_done("traffic_repartition", since)
    # one run per logical date: the second backfill re-runs the shared day inside the same
    # DAG run (Airflow clears it), so three runs whichever backfill got there first
    assert sorted(run["logical_date"][:10] for run in finished) == [f"{d:%Y-%m-%d}" for d in TRAFFIC_DAYS], finished
    assert all(run["state"] == "success" for run in finished), finished
    assert _traffic_partitions(topology.aws) == reference  # every event hour once, the same rows
