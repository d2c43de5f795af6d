"""Chaos on the production topology: a Celery worker SIGKILLed mid-write, overlapping runs.

Each scenario first makes an undisturbed run, keeps what it wrote, wipes it, then makes
the disturbed run(s) and compares: the data must be identical (every event hour once, the
same rows; the same DynamoDB items). Recovery is Airflow's own: a killed task stops
heart-beating, the scheduler fails its attempt (test topology: 30 s heartbeat timeout,
devtools/topology.py), and the retry runs on the restarted worker; a killed triggerer's
triggers go to the next triggerer once its heartbeat is 30 s old.

The traffic scenarios observe the chunk writes instead of inferring them from the final
data: every INSERT's submission and completion as the offline Athena recorded them, and
every old file's deletion (the data lake bucket is versioned: each delete leaves a
marker with its time).
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from devtools.traffic_generator import write_raw
from pipelines.aws.dynamodb import deserialize_item
from pipelines.traffic.lake import WRITE_MARKER
from pipelines.traffic.writes import overlaps, written_range
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
# The killed-mid-write scenario's INSERTs stay RUNNING this long (the offline Athena's latency
# knob, athena_run_seconds): wide enough for all three chunks' INSERTs to be running at once
# and deferred when the kill lands, on a busy machine. It costs no time of its own: the
# killed triggerer's triggers are taken over only after ~30 s anyway.
INSERT_RUN_SECONDS = 30
TARGET_PREFIX = "traffic/transformed/"


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


def _target_writes(aws, since: float) -> list[dict]:
    """Every INSERT into the target table submitted since ``since`` (POSIX seconds), oldest first,
    as the offline Athena recorded it: id, event hours [start, end) (the query's header), state,
    submission and completion (POSIX seconds; None while it runs)."""
    athena, found, token = aws.client("athena"), [], None
    while True:
        page = athena.list_query_executions(**({"NextToken": token} if token else {}))  # newest first
        ids = page.get("QueryExecutionIds", [])
        executions = [
            execution
            for start in range(0, len(ids), 50)  # BatchGetQueryExecution takes at most 50 ids
            for execution in athena.batch_get_query_execution(QueryExecutionIds=ids[start : start + 50])[
                "QueryExecutions"
            ]
        ]
        for execution in executions:
            status = execution["Status"]
            submitted = status["SubmissionDateTime"].timestamp()
            if submitted >= since and WRITE_MARKER in execution["Query"]:
                completed = status.get("CompletionDateTime")
                found.append({
                    "id": execution["QueryExecutionId"], "hours": written_range(execution["Query"]),
                    "state": status["State"], "submitted": submitted,
                    "completed": completed.timestamp() if completed else None,
                })  # fmt: skip
        token = page.get("NextToken")
        if (
            not token
            or not executions
            or min(e["Status"]["SubmissionDateTime"].timestamp() for e in executions) < since
        ):
            return sorted(found, key=lambda write: write["submitted"])


def _target_deletes(since: float) -> list[tuple[str, float]]:
    """Every target object deleted since ``since``: (key, POSIX seconds), from the delete markers
    of the versioned data lake bucket. Read from the offline S3's own store (it runs in this
    process): ListObjectVersions gives LastModified to the second only, as S3 does, too coarse
    to order a delete against a query submitted in the same second."""
    from moto.s3.models import FakeDeleteMarker, s3_backends

    found = []
    for account in list(s3_backends):
        bucket = s3_backends[account]["global"].buckets.get(BUCKET)
        if bucket is None:
            continue
        assert bucket.is_versioned, (
            f"s3://{BUCKET} is not versioned (infra/pipelines.yaml): deletes leave no trace"
        )
        for key, versions in bucket.keys.lists():
            for version in versions if key.startswith(TARGET_PREFIX) else []:
                when = version.last_modified.replace(tzinfo=UTC).timestamp()
                if isinstance(version, FakeDeleteMarker) and when >= since:
                    found.append((key, when))
    return sorted(found, key=lambda deleted: deleted[1])


def _hour_of(key: str) -> int:
    """traffic/transformed/year=Y/month=M/day=D/hour=H/<file> -> the event hour (POSIX seconds)."""
    parts = dict(part.split("=") for part in key[len(TARGET_PREFIX) :].split("/")[:4])
    return int(
        datetime(*(int(parts[name]) for name in ("year", "month", "day", "hour")), tzinfo=UTC).timestamp()
    )


def _write_spans(writes: list[dict], deletes: list[tuple[str, float]]) -> dict[str, tuple[float, float]]:
    """Each write's span: its INSERT's submission to its last clear (the deletes of the files it retired).

    A write retires the files of the write before it on the same hours (write new, then retire
    old): a file is named after the INSERT that wrote it (``<query id>_...``), so its delete is
    the clear of the next write of its hour (of the first one, for a file older than ``writes``),
    or the write's own undo when its INSERT failed.
    """
    by_id = {write["id"]: write for write in writes}
    clears: dict[str, list[float]] = {write["id"]: [] for write in writes}
    for key, when in deletes:
        hour, author = _hour_of(key), by_id.get(key.rsplit("/", 1)[1].split("_", 1)[0])
        if author is not None and author["state"] != "SUCCEEDED":
            clears[author["id"]].append(when)
            continue
        later = [w for w in writes if w["hours"][0] <= hour < w["hours"][1]
                 and (author is None or w["submitted"] > author["submitted"])]  # fmt: skip
        assert later, (
            f"{key} deleted at {when:.3f}, though no write of its hour came after the one that wrote it"
        )
        assert when >= later[0]["completed"], (
            f"{key} deleted at {when:.3f}, before the INSERT replacing it ({later[0]}) succeeded"
        )
        clears[later[0]["id"]].append(when)
    return {w["id"]: (w["submitted"], max([w["completed"], *clears[w["id"]]])) for w in writes}


def _describe_writes(writes: list[dict], spans: dict[str, tuple[float, float]], since: float) -> str:
    return "\n".join(
        f"  {datetime.fromtimestamp(w['hours'][0], UTC):%m-%d %H}h..{datetime.fromtimestamp(w['hours'][1], UTC):%m-%d %H}h "
        f"INSERT +{w['submitted'] - since:.2f}..+{w['completed'] - since:.2f} s, "
        f"last clear +{spans[w['id']][1] - since:.2f} s ({w['state']}, {w['id'][:8]})"
        for w in writes
    )


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


def _wait_for_states(
    runs, dag_id: str, run_id: str, wanted: dict[str, str], timeout: float = RUN_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {ti["task_id"]: ti["state"] for ti in runs.task_instances(dag_id, run_id)}
        if all(states.get(task) == state for task, state in wanted.items()):
            return
        assert runs.state(dag_id, run_id) in ("queued", "running"), states
        time.sleep(0.2)
    raise TimeoutError(f"{dag_id} {run_id}: not {wanted} within {timeout}s")


def _wait_for_inserts_running_together(aws, since: float, count: int) -> list[dict]:
    """Until ``count`` target INSERTs submitted since ``since`` are RUNNING at the same time."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        writes = _target_writes(aws, since)
        assert all(w["state"] in ("QUEUED", "RUNNING") for w in writes), (
            f"a chunk's INSERT ended before all {count} were running: the chunks did not write at once {writes}"
        )
        if len(writes) == count and all(w["state"] == "RUNNING" for w in writes):
            return writes
        time.sleep(0.2)
    raise TimeoutError(f"{count} chunk INSERTs not running at once within {RUN_TIMEOUT}s")


def _wait_for_deferred_writers(runs, run_id: str, count: int, before: float) -> list[dict]:
    """Until ``count`` chunk writers wait DEFERRED, each on a trigger a triggerer holds; ``before``
    (POSIX seconds) is when the first INSERT ends, past which a kill would no longer be mid-write."""
    writers: list[dict] = []
    while time.time() < before:
        writers = [
            ti
            for ti in runs.task_instances("traffic_repartition", run_id)
            if ti["task_id"] in CHUNK_WRITING_TASKS
        ]
        if len(writers) == count and all(
            ti["state"] == "deferred" and (ti["trigger"] or {}).get("triggerer_id") for ti in writers
        ):
            return writers
        time.sleep(0.2)
    raise AssertionError(f"the chunk writers were not all deferred before their INSERTs ended: {writers}")


def _returned_query(runs, run_id: str, writer: dict) -> str:
    """The query id a chunk writer returned: the INSERT whose success it committed."""
    code, body = runs.api(
        "GET", f"/api/v2/dags/traffic_repartition/dagRuns/{run_id}/taskInstances/{writer['task_id']}"
        f"/xcomEntries/return_value?map_index={writer['map_index']}",
    )  # fmt: skip
    assert code == 200, body
    return str(body["value"]).strip('"')


@pytest.mark.timeout(1500)
def test_a_chunk_write_survives_a_killed_worker_with_every_hour_once(topology, runs):
    """The kill lands while every chunk's INSERT runs in Athena, proven by Athena's own times.

    Which process must it hit? While Athena runs the INSERT the chunk writer is DEFERRED: no
    worker holds it (a worker killed then hits nothing of the write, which is why a worker kill
    alone proved nothing about a mid-write loss); the triggerer does, waiting on the query.
    So the triggerer is killed, with the worker (one machine, both components on it: the
    resumed writers must run on a worker that never saw the write). The INSERTs run on;
    Airflow hands the killed triggerer's triggers to the restarted one once its heartbeat is
    30 s old; each writer resumes in the same attempt (no retry) with the query that ran
    through the kill, commits from its lease items, and the data is one copy, as undisturbed.
    The three chunks' INSERTs are RUNNING at the same time when the kill lands: disjoint
    chunks observed writing in parallel through the scheduler, the worker and pool ``athena``.
    """
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

    since = time.time()
    run_id = runs.trigger("traffic_repartition", TRAFFIC_CONF)
    # the run's DDL queries done (they precede crawl_raw), the chunk INSERTs not yet submitted:
    # only the INSERTs get the long run time
    _wait_for_states(runs, "traffic_repartition", run_id,
                     {"create_raw_table": "success", "create_target_table": "success"})  # fmt: skip
    topology.aws.set_faults(athena_run_seconds=INSERT_RUN_SECONDS)
    try:
        running = _wait_for_inserts_running_together(topology.aws, since, len(TRAFFIC_DAYS))
    finally:
        topology.aws.set_faults(athena_run_seconds=0)  # read when a query starts: these keep theirs
    first_end = min(w["submitted"] for w in running) + INSERT_RUN_SECONDS
    deferred = _wait_for_deferred_writers(runs, run_id, len(TRAFFIC_DAYS), before=first_end - 3)
    killed_at = time.time()
    killed = topology.kill("triggerer") + topology.kill("worker")
    kill_done = time.time()
    topology.start("triggerer")
    topology.start("worker")
    assert len(killed) >= 3, killed  # the triggerer with its trigger runner, the worker

    state = runs.wait("traffic_repartition", run_id, timeout=RECOVERY_TIMEOUT)
    assert state == "success", runs.task_states("traffic_repartition", run_id)
    writes = _target_writes(topology.aws, since)
    print(
        f"\nchunk INSERTs, seconds after the trigger; the kill at +{killed_at - since:.2f}..+{kill_done - since:.2f}"
    )
    print(_describe_writes(writes, _write_spans(writes, _target_deletes(since)), since))
    # one INSERT per chunk, none added by a retry, and each ran through the kill
    assert [w["id"] for w in writes] == [w["id"] for w in running], writes
    for write in writes:
        assert write["state"] == "SUCCEEDED", write
        assert write["submitted"] < killed_at and kill_done < write["completed"], (
            f"the kill ({killed_at:.3f}..{kill_done:.3f}) did not land while {write} ran"
        )
    # disjoint chunks wrote at once: all three INSERTs were running together
    assert max(w["submitted"] for w in writes) < min(w["completed"] for w in writes), writes
    after = {
        (ti["task_id"], ti["map_index"]): ti for ti in runs.task_instances("traffic_repartition", run_id)
    }
    for ti in deferred:  # resumed, not retried, and committed the query that ran through the kill
        resumed = after[ti["task_id"], ti["map_index"]]
        assert resumed["state"] == "success" and resumed["try_number"] == ti["try_number"], (ti, resumed)
    assert {_returned_query(runs, run_id, ti) for ti in deferred} == {w["id"] for w in writes}
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

    # observed: chunk writes of overlapping event hours (each day's backfill run and the manual
    # run's chunk of that day, the shared day maybe twice) never interleaved their clear and insert
    writes = _target_writes(topology.aws, since)
    spans = _write_spans(writes, _target_deletes(since))
    print(
        f"\nchunk writes, seconds after the backfills were created:\n{_describe_writes(writes, spans, since)}"
    )
    assert all(w["state"] == "SUCCEEDED" for w in writes), writes
    pairs = [(x, y) for x, y in itertools.combinations(writes, 2) if overlaps(x["hours"], y["hours"])]
    for x, y in pairs:  # oldest first: x's clear-and-insert ended before y's began
        assert spans[x["id"]][1] < spans[y["id"]][0], (
            f"interleaved:\n{_describe_writes([x, y], spans, since)}"
        )
    writers_per_day = {
        day: sum(overlaps(w["hours"], _day_hours(day)) for w in writes) for day in TRAFFIC_DAYS
    }
    assert min(writers_per_day.values()) >= 2, writers_per_day  # a backfill's and the manual run's, at least
    # every write after the first of its hours retired the one before it: the clears were seen
    assert all(spans[y["id"]][1] > y["completed"] for _x, y in pairs), _describe_writes(writes, spans, since)


def _day_hours(day: datetime) -> tuple[int, int]:
    return int(day.timestamp()), int((day + timedelta(days=1)).timestamp())
