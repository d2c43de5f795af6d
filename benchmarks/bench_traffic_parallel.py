"""traffic_repartition's chunk writes in parallel: pool size 1 against 4 (issue 21.4).

On the offline stack with its Athena latency knob (every query QUEUED 0 s, then RUNNING
at least ``QUERY_SECONDS``, like a real Athena query), one range of 16 chunks is written
through the DAG's own write path (``steps.plan``, ``writes.ChunkWrite``'s leases, leftover
check, old-file retirement and registration, ``insert_chunk.sql``), with 1 and then 4
writers at a time: the pool's slots, played by a thread pool of that size (Airflow's
scheduler does the same with task instances; here the writes themselves are timed, not
the scheduler's ~1 s task start-up). Both sizes start from the same lake; the rows written
must be identical. Prints the wall-time ratio (goal >= 3) and, from the measured
per-chunk figures (the INSERT's time in Athena, and our own steps around it), a model of
a 365-day backfill (365 runs of one 24-hour chunk) at pool sizes 1, 4, 8 and 16.
"""

from __future__ import annotations

import io
import json
import math
import os
import statistics
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.update(
    {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
)
os.environ.setdefault("PIPELINES_SQL_DIR", str(REPO / "include" / "sql"))

import pyarrow.parquet as pq  # noqa: E402

from benchmarks.bench_traffic_cost import athena_run, render  # noqa: E402
from devtools.traffic_generator import write_raw  # noqa: E402
from infra.provision import provision  # noqa: E402
from localaws import LocalAWS  # noqa: E402
from pipelines.traffic import lake  # noqa: E402
from pipelines.traffic.steps import plan, render_insert_sql  # noqa: E402
from pipelines.traffic.writes import ChunkWrite  # noqa: E402

BUCKET = "pipelines-data-lake"
RESULTS = {"OutputLocation": f"s3://{BUCKET}/athena-results/"}
START = datetime(2024, 6, 1, tzinfo=UTC)
CHUNKS, CHUNK_HOURS = 16, 1
QUERY_SECONDS = 5.0
POOL_SIZES = (1, 4)
MODELLED_SIZES = (1, 4, 8, 16)
BACKFILL_DAYS = 365


def set_faults(stack, **values) -> None:
    request = urllib.request.Request(f"{stack.endpoint_url}/_localaws/faults", data=json.dumps(values).encode(),
                                     method="POST")  # fmt: skip
    urllib.request.urlopen(request).close()


def rows(stack) -> list[tuple]:
    s3 = stack.client("s3")
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=lake.TARGET_PREFIX):
        for obj in page.get("Contents", []):
            table = pq.read_table(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()))
            found += [tuple(sorted(row.items())) for row in table.to_pylist()]
    return sorted(found)


def write_chunk(clients: dict, chunk: dict, name: str) -> dict[str, float]:
    """One chunk as WriteChunkOperator writes it; its steps' times."""
    athena = clients["athena"]
    write = ChunkWrite(chunk, BUCKET, name, glue=clients["glue"], s3=clients["s3"],
                       dynamodb=clients["dynamodb"], athena=athena, poll_seconds=0.5)  # fmt: skip
    began = time.monotonic()
    write.prepare()
    prepared = time.monotonic()
    query_id = athena.start_query_execution(
        QueryString=render_insert_sql(chunk), ResultConfiguration=RESULTS
    )["QueryExecutionId"]
    while (
        state := athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"]
    ) in (
        "QUEUED",
        "RUNNING",
    ):
        time.sleep(0.1)
    assert state == "SUCCEEDED", state
    inserted = time.monotonic()
    write.commit()
    return {"ours": (prepared - began) + (time.monotonic() - inserted), "query": inserted - prepared}


def clear_target(stack) -> None:
    s3 = stack.client("s3")
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=lake.TARGET_PREFIX)
        for o in page.get("Contents", [])
    ]
    for start in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]]})


def main() -> None:
    with LocalAWS() as stack:
        provision(stack.endpoint_url)
        athena = stack.client("athena")
        end = START + timedelta(hours=CHUNKS * CHUNK_HOURS)
        write_raw(stack.client("s3"), BUCKET, START - timedelta(hours=1), end + timedelta(hours=2),
                  locations=2, lanes=1)  # fmt: skip
        athena_run(athena, render("create_raw_table.sql"))
        athena_run(athena, render("create_target_table.sql"))
        planned = plan(
            {"start": START.isoformat(), "end": end.isoformat(), "chunk_hours": CHUNK_HOURS}, None, None
        )
        assert len(planned["chunks"]) == CHUNKS
        lake.register_raw_partitions(planned["chunks"], BUCKET, stack.client("glue"))
        set_faults(stack, athena_queue_seconds=0, athena_run_seconds=QUERY_SECONDS)
        # made once, shared by the writers (boto3 clients are thread-safe): making a client
        # costs about a second of CPU, which is not part of a write (a task's hook makes one)
        clients = {name: stack.client(name) for name in ("athena", "glue", "s3", "dynamodb")}
        wall: dict[int, float] = {}
        written: dict[int, list[tuple]] = {}
        steps: list[dict[str, float]] = []
        for size in POOL_SIZES:
            clear_target(stack)  # the same starting lake for each size
            began = time.monotonic()
            with ThreadPoolExecutor(max_workers=size) as pool:
                futures = [
                    pool.submit(write_chunk, clients, c, f"size{size}-{i}")
                    for i, c in enumerate(planned["chunks"])
                ]
                steps += [f.result() for f in futures]
            wall[size] = time.monotonic() - began
            written[size] = rows(stack)
            these = steps[-CHUNKS:]
            print(f"pool size {size}: {CHUNKS} chunks of {CHUNK_HOURS} h at {QUERY_SECONDS:g} s a query: "
                  f"{wall[size]:.1f} s wall, {len(written[size])} rows; per write (median): query "
                  f"{statistics.median(s['query'] for s in these):.2f} s, ours "
                  f"{statistics.median(s['ours'] for s in these):.2f} s")  # fmt: skip
        set_faults(stack, athena_run_seconds=0)
    assert written[1] == written[4] and written[1], "pool sizes wrote different rows"
    speedup = wall[1] / wall[4]
    print(f"RESULT traffic_parallel_wall_1_over_4 {speedup:.2f} >=3 wall time of {CHUNKS} chunk writes, "
          f"pool size 1 over 4 ({QUERY_SECONDS:g} s a query), identical rows")  # fmt: skip
    # the model: a write is our steps around the INSERT plus the INSERT; writes at pool size P
    # run P at a time (a 365-day backfill: 365 runs of one 24-hour chunk each)
    # the undisturbed per-write figures: pool size 1's (nothing else runs beside a write)
    ours = statistics.median(s["ours"] for s in steps[:CHUNKS])
    query = statistics.median(s["query"] for s in steps[:CHUNKS])
    print(f"per chunk write at pool size 1 (median of {CHUNKS}): Athena {query:.2f} s (knob {QUERY_SECONDS:g} s), "
          f"our steps around it {ours:.2f} s")  # fmt: skip
    for size in MODELLED_SIZES:
        rounds = math.ceil(BACKFILL_DAYS / size)
        print(f"modelled 365-day backfill (365 one-chunk writes) at pool size {size:2d}: {rounds} rounds x "
              f"({query:.2f} s query + {ours:.2f} s ours) = {rounds * (ours + query) / 60:.1f} min")  # fmt: skip


if __name__ == "__main__":
    main()
