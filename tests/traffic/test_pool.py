"""Overlapping traffic runs never interleave chunk writes: one pool slot, kept while deferred.

The scheduler queues a task instance only when its pool has an open slot, for scheduled,
manual and backfill runs alike; with ``include_deferred`` a DEFERRED instance (an INSERT
Athena is running) still holds its slot. These tests hold the DAG and the deployment's
pool file to that: every chunk writer in the pool, the pool one slot, as Airflow imports it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import load_dag

REPO = Path(__file__).resolve().parents[2]
POOLS = REPO / "infra" / "airflow_pools.json"


def test_every_task_that_writes_the_target_runs_in_the_chunk_writer_pool(airflow_db):
    from pipelines.traffic.operators import CHUNK_WRITER_POOL, WriteChunkOperator

    dag = load_dag("traffic_repartition")
    writers = [t for t in dag.tasks if issubclass(getattr(t, "operator_class", type(t)), WriteChunkOperator)]
    assert [t.task_id for t in writers] == ["write_chunk"]
    assert {t.partial_kwargs.get("pool", getattr(t, "pool", None)) for t in writers} == {CHUNK_WRITER_POOL}
    # nothing else can write the target: no other task renders insert_chunk.sql
    others = [t for t in dag.tasks if t not in writers]
    assert not any("insert_chunk" in str(getattr(t, "query", "")) for t in others)


def test_chunk_writers_of_every_run_share_one_slot_including_deferred(airflow_db):
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    from pipelines.traffic.operators import CHUNK_WRITER_POOL

    declared = json.loads(POOLS.read_text())[CHUNK_WRITER_POOL]
    assert declared["slots"] == 1 and declared["include_deferred"] is True
    # as deployments load it: the real CLI into the metadata DB
    subprocess.run([sys.executable, "-m", "airflow", "pools", "import", str(POOLS)],
                   check=True, env=os.environ.copy(), capture_output=True)  # fmt: skip
    with create_session() as session:
        pool = session.query(Pool).filter(Pool.pool == CHUNK_WRITER_POOL).one()
        assert (pool.slots, pool.include_deferred) == (1, True)
