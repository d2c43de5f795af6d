"""Chunk writes run in parallel in pool ``athena``; writes of overlapping event hours never interleave.

The pool bounds how many chunk writers Airflow runs at once (scheduled, manual and backfill
runs alike; a deferred INSERT keeps its slot); the event-hour leases
(``pipelines.traffic.writes``) keep overlapping writers apart. The first two tests hold the
DAG and the deployment's pool file to the pool; the third drives real writers in threads on
the offline stack (real leases in DynamoDB, real INSERTs in Athena with a fixed run time)
and records every clear and insert interval: the stack's own query timestamps for the
INSERTs, the deletes of old files as they happen.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import load_dag

REPO = Path(__file__).resolve().parents[2]
POOLS = REPO / "infra" / "airflow_pools.json"


def test_every_task_that_writes_the_target_runs_in_pool_athena(airflow_db):
    from pipelines.traffic.operators import CHUNK_WRITER_POOL, WriteChunkOperator

    assert CHUNK_WRITER_POOL == "athena"
    dag = load_dag("traffic_repartition")
    writers = [t for t in dag.tasks if issubclass(getattr(t, "operator_class", type(t)), WriteChunkOperator)]
    assert [t.task_id for t in writers] == ["write_chunk"]
    assert {t.partial_kwargs.get("pool", getattr(t, "pool", None)) for t in writers} == {"athena"}
    # nothing else can write the target: no other task renders insert_chunk.sql
    others = [t for t in dag.tasks if t not in writers]
    assert not any("insert_chunk" in str(getattr(t, "query", "")) for t in others)


def test_pool_athena_has_four_slots_including_deferred_as_airflow_imports_it(airflow_db):
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    declared = json.loads(POOLS.read_text())
    assert "traffic_chunk_writer" not in declared  # the one-slot pool is gone
    assert declared["athena"]["slots"] == 4 and declared["athena"]["include_deferred"] is True
    # as deployments load it: the real CLI into the metadata DB
    subprocess.run([sys.executable, "-m", "airflow", "pools", "import", str(POOLS)],
                   check=True, env=os.environ.copy(), capture_output=True)  # fmt: skip
    with create_session() as session:
        pool = session.query(Pool).filter(Pool.pool == "athena").one()
        assert (pool.slots, pool.include_deferred) == (4, True)


# -- observed: parallel where disjoint, never interleaved where overlapping ---------------------

START = datetime(2024, 12, 31, 21, tzinfo=UTC)
RUN_SECONDS = 2.0  # every INSERT stays RUNNING this long (the offline stack's latency knob)


@pytest.fixture
def lake(aws):
    import jinja2

    from devtools.traffic_generator import write_raw
    from pipelines.config import sql_dir
    from tests.traffic.athena_chunks import BUCKET, register_arrival_partitions, succeeded

    # ``aws``: every resource of infra/pipelines.yaml (bucket, database, the lease table); the DAG's DDL
    templates = jinja2.Environment(loader=jinja2.FileSystemLoader(sql_dir()), undefined=jinja2.StrictUndefined)
    for name in ("create_raw_table.sql", "create_target_table.sql"):
        succeeded(aws.client("athena"), templates.get_template(f"traffic/{name}").render(var={"value": {}}))
    write_raw(aws.client("s3"), BUCKET, START - timedelta(hours=3), START + timedelta(hours=10),
              locations=2, lanes=2, seed=3)  # fmt: skip
    register_arrival_partitions(aws)
    set_faults(aws, athena_run_seconds=RUN_SECONDS)
    yield aws
    set_faults(aws, athena_run_seconds=0)


def set_faults(aws, **values) -> dict:
    """POST /_localaws/faults, the stack's control API."""
    request = urllib.request.Request(f"{aws.endpoint_url}/_localaws/faults", data=json.dumps(values).encode(),
                                     method="POST")  # fmt: skip
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def intervals_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_disjoint_chunks_overlap_in_time_and_overlapping_ones_never_interleave(lake, monkeypatch):
    from pipelines.traffic import writes
    from pipelines.traffic.steps import plan, render_insert_sql
    from tests.localaws.conftest import wait_for_query
    from tests.traffic.athena_chunks import BUCKET, written

    monkeypatch.setattr(writes, "LEASE_WAIT", timedelta(minutes=2))
    # run A: 6 hours in 3 chunks of 2; run B (a backfill beside it): 6 hours from START + 1 h, 2 chunks of 3
    run_a = plan({"start": START.isoformat(), "end": (START + timedelta(hours=6)).isoformat(),
                  "chunk_hours": 2}, None, None)["chunks"]  # fmt: skip
    run_b = plan({"start": (START + timedelta(hours=1)).isoformat(),
                  "end": (START + timedelta(hours=7)).isoformat(), "chunk_hours": 3}, None, None)["chunks"]  # fmt: skip
    writers = [(f"A{i}", c) for i, c in enumerate(run_a)] + [(f"B{i}", c) for i, c in enumerate(run_b)]

    clears: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in writers}
    inserts: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in writers}
    original_delete = writes.ChunkWrite.delete

    recording = False

    def recorded_delete(self, keys):
        began = time.time()
        try:
            return original_delete(self, keys)
        finally:
            if keys:
                clears[self.holder].append((began, time.time()))

    monkeypatch.setattr(writes.ChunkWrite, "delete", recorded_delete)
    a_running = threading.Barrier(len(run_a) + 1, timeout=60)

    def write(name: str, chunk: dict) -> None:
        athena = lake.client("athena")
        write = writes.ChunkWrite(chunk, BUCKET, name, glue=lake.client("glue"), s3=lake.client("s3"),
                                  dynamodb=lake.client("dynamodb"), athena=athena, poll_seconds=0.2)  # fmt: skip
        write.prepare()
        query_id = athena.start_query_execution(
            QueryString=render_insert_sql(chunk),
            QueryExecutionContext={"Database": "traffic"},
            ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/athena-results/"},
        )["QueryExecutionId"]
        if recording and name.startswith("A"):
            a_running.wait()
        execution = wait_for_query(athena, query_id, timeout=120)
        assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
        status = execution["Status"]
        inserts[name].append((status["SubmissionDateTime"].timestamp(), status["CompletionDateTime"].timestamp()))
        write.commit()

    def run_all(batch):
        with ThreadPoolExecutor(max_workers=4) as pool:  # pool athena's 4 slots
            for future in [pool.submit(write, name, chunk) for name, chunk in batch]:
                future.result()

    # the lake already holds every hour (as earlier runs left it): each write below retires old files
    recording = False
    run_all([(name, chunk) for name, chunk in writers if name.startswith("B")] + [("A0", run_a[0])])
    for name in hours_of(writers):
        clears[name].clear()
        inserts[name].clear()
    recording = True
    b_thread = threading.Thread(target=lambda: (a_running.wait(), run_all(writers[len(run_a) :])))
    b_thread.start()  # run B starts once all of run A's INSERTs are submitted and running
    run_all(writers[: len(run_a)])
    b_thread.join()

    hours = hours_of(writers)
    assert all(len(inserts[name]) == 1 and clears[name] for name in hours)  # every write retired old files
    hull = {
        name: (min(s[0] for s in inserts[name] + clears[name]), max(s[1] for s in inserts[name] + clears[name]))
        for name in hours
    }
    for x, y in itertools.combinations(hours, 2):
        if intervals_overlap(hours[x], hours[y]):
            # never interleaved: one's whole clear-and-insert lies before the other's begins
            assert not intervals_overlap(hull[x], hull[y]), f"{x} and {y} interleaved: {hull[x]} {hull[y]}"
    assert sum(intervals_overlap(hours[x], hours[y]) for x, y in itertools.combinations(hours, 2)) == 3
    # run A's three chunks are disjoint: all three INSERTs ran at the same time
    for x, y in itertools.combinations(["A0", "A1", "A2"], 2):
        assert intervals_overlap(inserts[x][0], inserts[y][0]), f"{x} and {y} did not overlap"
    # and the result is one copy: every event hour one file, no minute twice
    rows, files = written(lake)
    assert set(files.values()) == {1} and len(files) == 7
    keys = [(r["lveNr"], r["recordTimestamp"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert lake.client("dynamodb").scan(TableName="traffic_write_leases")["Count"] == 0  # all released


def hours_of(writers: list[tuple[str, dict]]) -> dict[str, tuple[int, int]]:
    return {name: (c["chunk_start_epoch"], c["chunk_end_epoch"]) for name, c in writers}
