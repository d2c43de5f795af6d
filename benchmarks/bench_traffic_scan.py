"""Bytes Athena scans for a 30-day traffic_repartition, pruned vs the original's predicate form.

The same 30 days of generated raw events, the same chunks (96 hours), the same SQL from
include/sql/traffic/insert_chunk.sql, run on the offline stack twice in one run:
* ours: the chunk filters the typed raw partition columns one by one, so Athena reads only the arrival
  hours the chunk can need (plus the window lookback and max lateness);
* original: the partition filter removed, only the computed-timestamp filter left, as
  the original did: every chunk reads the whole raw table.
Prints total DataScannedInBytes / raw table size for both (goal for ours <= 1.3), and
the wall time of the 30-day run.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.update(
    {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
)
os.environ.setdefault("LOCALAWS_CRAWL_MIN_SECONDS", "0")
os.environ.setdefault("PIPELINES_SQL_DIR", str(REPO / "include" / "sql"))

from devtools.traffic_generator import write_raw  # noqa: E402
from infra.provision import provision  # noqa: E402
from localaws import LocalAWS  # noqa: E402
from pipelines.traffic.lake import register_raw_partitions  # noqa: E402
from pipelines.traffic.steps import plan, render_insert_sql  # noqa: E402

BUCKET = "pipelines-data-lake"
START, DAYS = datetime(2024, 1, 1, tzinfo=UTC), 30
RESULTS = {"OutputLocation": f"s3://{BUCKET}/athena-results/"}


def run(athena, sql: str) -> dict:
    query_id = athena.start_query_execution(QueryString=sql, ResultConfiguration=RESULTS)["QueryExecutionId"]
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if execution["Status"]["State"] not in ("QUEUED", "RUNNING"):
            assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
            return execution
        time.sleep(0.05)


def render(name: str) -> str:
    import jinja2

    text = (REPO / "include" / "sql" / "traffic" / name).read_text()
    return jinja2.Template(text).render(var={"value": {"get": lambda k, d: d}})


def range_scan(athena, chunks, unpruned: bool) -> int:
    scanned = 0
    for chunk in chunks:
        sql = render_insert_sql(chunk)
        if unpruned:  # the original filtered computed timestamps only, never partition columns
            sql = re.sub(r"WHERE \(\s*\(arrival_year.*?\)\s*\)\s*AND", "WHERE", sql, count=1, flags=re.S)
        scanned += run(athena, sql)["Statistics"]["DataScannedInBytes"]
    return scanned


def main() -> None:
    end = START + timedelta(days=DAYS)
    with LocalAWS() as stack:
        provision(stack.endpoint_url)
        s3, glue, athena = stack.client("s3"), stack.client("glue"), stack.client("athena")
        counts = write_raw(
            s3, BUCKET, START - timedelta(hours=3), end + timedelta(hours=3), locations=2, lanes=2
        )
        raw_bytes = sum(
            o["Size"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="traffic/raw/")
            for o in page.get("Contents", [])
        )
        run(athena, render("create_raw_table.sql"))
        run(athena, render("create_target_table.sql"))
        chunks = plan({"start": START.isoformat(), "end": end.isoformat()}, None, None)["chunks"]
        # every arrival hour of the lake registered, as the runs that wrote it would have
        register_raw_partitions(
            plan({"start": (START - timedelta(hours=1)).isoformat(), "end": (end + timedelta(hours=1)).isoformat()},
                 None, None)["chunks"], BUCKET, glue)  # fmt: skip

        started = time.perf_counter()
        ours = range_scan(athena, chunks, unpruned=False)
        ours_seconds = time.perf_counter() - started
        original = range_scan(athena, chunks, unpruned=True)
    print(f"raw table: {counts['records']} readings in {counts['files']} files, {raw_bytes / 1e6:.1f} MB")
    print(
        f"{DAYS} days in {len(chunks)} chunks; 30-day range run time (all chunk INSERTs): {ours_seconds:.1f}s"
    )
    print(f"ours:     {ours / 1e6:8.1f} MB scanned = {ours / raw_bytes:.2f}x the raw table")
    print(f"original: {original / 1e6:8.1f} MB scanned = {original / raw_bytes:.2f}x the raw table")
    print(
        f"RESULT traffic_scan_ratio_ours {ours / raw_bytes:.2f} <=1.3 bytes scanned over raw table size, pruned"
    )
    print(
        f"RESULT traffic_scan_ratio_original {original / raw_bytes:.2f} - bytes scanned over raw table size, unpruned"
    )
    print(f"RESULT traffic_original_over_ours {original / ours:.1f} - scan saved by partition pruning")


if __name__ == "__main__":
    main()
