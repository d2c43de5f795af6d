"""traffic_repartition's cost per processed day does not grow with history (issue 14.4).

For 7, 30 and 90 days of history already in the lake (raw arrival hours, and the target
written by earlier runs), one daily run processes the next day, on the offline stack,
through the DAG's own code (``steps.plan``, ``lake.*``, ``insert_chunk.sql``,
``rows_per_day.sql``). Per processed day it measures:

* bytes Athena scans (the chunk INSERT and the run's row count);
* S3 objects the run's crawls read (``ObjectsRead`` of the offline crawler's crawl summary,
  ``localaws/glue/crawler.py``): ``crawl_raw`` on ``traffic_raw_crawler`` (incremental,
  CRAWL_NEW_FOLDERS_ONLY: only the arrival-hour folders that landed since the last crawl)
  and ``recrawl_target`` on ``traffic_transformed_crawler`` (a catalog target in S3 event
  mode, CRAWL_EVENT_MODE: only the partition folders the run's writes and retirements named
  in the queue's S3 events); the crawler samples at most 2 objects per folder. The baseline,
  measured in the same run on the same lake: a CRAWL_EVERYTHING crawler of each (same
  target, role and schema-change policy), which reads every folder of the history;
* S3 objects our writer lists to register its partitions (the processed day's only).

Then, on the 30-day lake: a 7-day backfill (7 daily runs) against one run over the same 7
days, bytes scanned (both O(days)). Prints the 90-day/7-day ratios and the modelled AWS
cost (Athena $5/TB scanned, 10 MB minimum per query; Glue crawler $0.44/DPU-hour,
10-minute minimum, 2 DPUs a run).
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.update(
    {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
)
os.environ.setdefault("PIPELINES_SQL_DIR", str(REPO / "include" / "sql"))

import jinja2  # noqa: E402

from devtools.traffic_generator import write_raw  # noqa: E402
from infra.provision import provision  # noqa: E402
from localaws import LocalAWS  # noqa: E402
from pipelines.traffic.steps import plan, render_insert_sql  # noqa: E402
from pipelines.traffic.writes import ChunkWrite  # noqa: E402

BUCKET = "pipelines-data-lake"
RESULTS = {"OutputLocation": f"s3://{BUCKET}/athena-results/"}
PROCESSED_DAY = datetime(2024, 6, 1, tzinfo=UTC)
# days of history measured; BENCH_TRAFFIC_HISTORIES=90 measures one (its ratios are then 1)
HISTORIES = tuple(int(d) for d in os.environ.get("BENCH_TRAFFIC_HISTORIES", "7,30,90").split(","))
ATHENA_USD_PER_TB, ATHENA_MIN_BYTES = 5.0, 10 * 1024**2
GLUE_USD_PER_DPU_HOUR, CRAWLER_DPUS, CRAWL_MIN_HOURS = 0.44, 2, 10 / 60


def athena_run(athena, sql: str) -> int:
    """Run a query to its end; its DataScannedInBytes."""
    query_id = athena.start_query_execution(QueryString=sql, ResultConfiguration=RESULTS)["QueryExecutionId"]
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if execution["Status"]["State"] not in ("QUEUED", "RUNNING"):
            assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
            return int(execution["Statistics"]["DataScannedInBytes"])
        time.sleep(0.05)


def render(name: str, **context) -> str:
    text = (REPO / "include" / "sql" / "traffic" / name).read_text()
    return jinja2.Template(text).render(var={"value": {"get": lambda _k, default: default}}, **context)


def objects(s3, prefix: str) -> int:
    return sum(
        len(page.get("Contents", []))
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    )


BASELINES = {"traffic_raw_crawler": "baseline_raw_everything",
             "traffic_transformed_crawler": "baseline_transformed_everything"}  # fmt: skip


def create_baselines(glue) -> None:
    """The template's two crawlers as CRAWL_EVERYTHING: what the crawls cost without incremental crawling."""
    for name, baseline in BASELINES.items():
        crawler = glue.get_crawler(Name=name)["Crawler"]
        targets = {kind: [{k: v for k, v in t.items() if k in ("Path", "DatabaseName", "Tables")}
                          for t in crawler["Targets"].get(kind, [])]
                   for kind in ("S3Targets", "CatalogTargets") if crawler["Targets"].get(kind)}  # fmt: skip
        glue.create_crawler(Name=baseline, Role=crawler["Role"], DatabaseName=crawler["DatabaseName"],
                            Targets=targets, SchemaChangePolicy=crawler["SchemaChangePolicy"],
                            RecrawlPolicy={"RecrawlBehavior": "CRAWL_EVERYTHING"},
                            Configuration=crawler["Configuration"])  # fmt: skip


def daily_run(stack, start: datetime, end: datetime) -> dict[str, int]:
    """One run of the DAG's data path over [start, end): what it scans and lists."""
    s3, glue, athena = stack.client("s3"), stack.client("glue"), stack.client("athena")
    planned = plan({"start": start.isoformat(), "end": end.isoformat()}, None, None)
    raw_read = crawl(glue, "traffic_raw_crawler")  # crawl_raw
    scanned, queries, listed = 0, 0, 0
    for chunk in planned["chunks"]:  # as WriteChunkOperator: leases, leftovers, INSERT, retire, register
        write = ChunkWrite(chunk, BUCKET, "bench", glue=glue, s3=s3, dynamodb=stack.client("dynamodb"),
                           athena=athena)  # fmt: skip
        write.prepare()
        scanned += athena_run(athena, render_insert_sql(chunk))
        write.commit()
        days = {
            datetime.fromtimestamp(epoch, UTC).date()
            for epoch in range(chunk["chunk_start_epoch"], chunk["chunk_end_epoch"], 3600)
        }
        listed += sum(objects(s3, f"traffic/transformed/year={d:%Y}/month={d:%m}/day={d:%d}/") for d in days)
        queries += 1
    ti = type("TI", (), {"xcom_pull": staticmethod(lambda task_ids: planned)})
    scanned += athena_run(athena, render("rows_per_day.sql", ti=ti))
    target_read = crawl(glue, "traffic_transformed_crawler")  # recrawl_target
    return {"scanned": scanned, "queries": queries + 1, "listed_by_writer": listed,
            "raw_crawl_read": raw_read, "target_crawl_read": target_read, "days": (end - start).days}  # fmt: skip


def crawl(glue, name: str) -> int:
    """Start the crawler, wait for it; the S3 objects its crawl read."""
    glue.start_crawler(Name=name)
    while glue.get_crawler(Name=name)["Crawler"]["State"] != "READY":
        time.sleep(0.1)
    last = glue.list_crawls(CrawlerName=name)["Crawls"][0]
    assert last["State"] == "COMPLETED", last
    return int(json.loads(last["Summary"])["ObjectsRead"])


def lake_with_history(stack, days: int) -> None:
    stack.reset()
    provision(stack.endpoint_url)
    s3, athena = stack.client("s3"), stack.client("athena")
    first = PROCESSED_DAY - timedelta(days=days)
    write_raw(s3, BUCKET, first - timedelta(hours=3), PROCESSED_DAY, locations=2, lanes=1)
    athena_run(athena, render("create_raw_table.sql"))
    athena_run(athena, render("create_target_table.sql"))
    create_baselines(stack.client("glue"))
    daily_run(stack, first, PROCESSED_DAY)  # the history, as earlier runs left it (first crawl: all of it)
    # the processed day's feed lands after that (its own object names: seed 43)
    write_raw(s3, BUCKET, PROCESSED_DAY, PROCESSED_DAY + timedelta(days=1, hours=3), locations=2, lanes=1, seed=43)


def main() -> None:
    per_day: dict[int, dict[str, float]] = {}
    with LocalAWS() as stack:
        for days in HISTORIES:
            lake_with_history(stack, days)
            started = time.monotonic()
            run = daily_run(stack, PROCESSED_DAY, PROCESSED_DAY + timedelta(days=1))
            glue = stack.client("glue")
            run["raw_baseline_read"] = crawl(glue, BASELINES["traffic_raw_crawler"])
            run["target_baseline_read"] = crawl(glue, BASELINES["traffic_transformed_crawler"])
            per_day[days] = run
            print(f"history {days:3d} days: per processed day {run['scanned'] / 1e6:7.3f} MB scanned "
                  f"in {run['queries']} queries; listed by our writer {run['listed_by_writer']} "
                  f"(run {time.monotonic() - started:.0f} s)")  # fmt: skip
            for crawler, key, baseline in (("crawl_raw", "raw_crawl_read", "raw_baseline_read"),
                                           ("recrawl_target", "target_crawl_read", "target_baseline_read")):  # fmt: skip
                print(f"  {crawler:14s}: S3 objects read per crawl {run[key]:5d}, per processed day "
                      f"{run[key] / run['days']:7.1f}; baseline CRAWL_EVERYTHING {run[baseline]:5d} "
                      f"({run[key] / run[baseline]:.3f} of it)")  # fmt: skip
            if days == 30:
                week = PROCESSED_DAY - timedelta(days=7)
                one = daily_run(stack, week, PROCESSED_DAY)["scanned"]
                backfill = sum(
                    daily_run(stack, week + timedelta(days=i), week + timedelta(days=i + 1))["scanned"]
                    for i in range(7)
                )
                print(f"7 days: backfill of 7 daily runs {backfill / 1e6:.3f} MB scanned, "
                      f"one 7-day run {one / 1e6:.3f} MB; per day {backfill / 7 / 1e6:.3f} vs "
                      f"{run['scanned'] / 1e6:.3f} MB for a single day")  # fmt: skip
                print(f"RESULT traffic_backfill_over_one_run_7d {backfill / one:.2f} - bytes scanned, O(days) both")
    small, large = per_day[HISTORIES[0]], per_day[HISTORIES[-1]]
    print(f"RESULT traffic_scan_per_day_90d_over_7d {large['scanned'] / small['scanned']:.2f} ~1 "
          "bytes Athena scans per processed day")  # fmt: skip
    for key in ("raw_crawl_read", "target_crawl_read", "raw_baseline_read", "target_baseline_read"):
        figures = ", ".join(f"{per_day[d][key]} at {d} days" for d in HISTORIES)
        print(f"RESULT traffic_{key}_per_day {figures} - S3 objects read per crawl (one crawl per processed day)")
    for key, crawler in (("raw_crawl_read", "crawl_raw"), ("target_crawl_read", "recrawl_target")):
        ratio = large[key] / max(small[key], 1)
        print(f"RESULT traffic_{key}_objects_90d_over_7d {ratio:.2f} ~1 "
              f"S3 objects {crawler} reads per processed day (incremental)")  # fmt: skip
        baseline = key.replace("crawl_read", "baseline_read")
        print(f"RESULT traffic_{key}_over_everything_90d {large[key] / large[baseline]:.3f} - S3 objects "
              f"{crawler} reads per crawl over a CRAWL_EVERYTHING crawl of the same 90-day lake")  # fmt: skip
    print(f"RESULT traffic_writer_listed_90d_over_7d {large['listed_by_writer'] / small['listed_by_writer']:.2f} ~1 "
          "S3 objects the writer lists per processed day")  # fmt: skip
    # modelled AWS cost of one day and a 365-day backfill, from the measured per-day figures
    queries, scanned = large["queries"], large["scanned"]
    athena_day = max(scanned / queries, ATHENA_MIN_BYTES) * queries / 1024**4 * ATHENA_USD_PER_TB
    crawl_usd = GLUE_USD_PER_DPU_HOUR * CRAWLER_DPUS * CRAWL_MIN_HOURS  # a crawl at its 10-minute minimum
    day = athena_day + 2 * crawl_usd  # crawl_raw and recrawl_target
    print(f"cost: one day >= ${day:.4f} (Athena ${athena_day:.6f}, {queries} queries at the 10 MB minimum; "
          f"2 crawls >= ${crawl_usd:.4f} each), 365-day backfill >= ${365 * day:.2f}")  # fmt: skip
    print(f"RESULT traffic_cost_day_usd {day:.4f} - modelled, with the two crawls at their minimum")


if __name__ == "__main__":
    main()
