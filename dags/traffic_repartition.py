"""
### traffic_repartition: raw traffic events by arrival hour -> Parquet by event time

Operators' page (reads, writes, params with examples, failures, re-runs): `docs/pipelines/traffic_repartition.md`.

`plan_chunks` (validate start/end, cut into chunks of at most 96 event hours)
-> `wait_for_late_events` (deferrable: until the range end + `max_lateness_minutes`
   + `delivery_margin_minutes`, the stream's buffer interval by default)
-> `create_raw_table` / `create_target_table` (Athena DDL, IF NOT EXISTS)
-> `crawl_raw` (crawler `traffic_raw_crawler`, deferrable: adds the raw arrival-hour folders
   no crawl has read yet, so a crawl costs what arrived since the last one, not what history
   holds; a crawl already running is waited for, and crawled again if it started before this
   run's data landed)
-> `check_raw_schema` (the fields of the newest raw objects against the declared table: a
   column the SQL reads gone or retyped fails here, before any write; any other change is a
   warning in the log and the run summary)
-> per chunk, mapped, in parallel in pool `athena`: `write_chunk` (one task attempt takes
   leases on the chunk's event hours, so writers of overlapping hours take turns; stops
   leftover writes, runs Athena INSERT INTO deferred, then retires the old files; a failed
   attempt keeps the old rows. With `measuring_points`, only those points' rows change)
-> `recrawl_target` (crawler `traffic_transformed_crawler`, deferrable: the written table as
   the catalog sees it, in S3 event mode: it reads only the partition folders the run's
   writes and retirements named in the queue's S3 events, so it too costs what this run
   wrote, not what history holds; the writers register their own partitions, see
   write_chunk; a crawl already running is waited for, and crawled again if it started
   before this task did, i.e. before the writes ended) and `count_rows` -> `log_summary` (rows per event day).

A scheduled run processes the event day of its data interval; a backfill
(`airflow backfill create`) processes each day of its range; a manual run may give
`start`/`end` (ISO date or date-time, a date meaning midnight UTC; end after start, at
most 366 days). Re-running any range, or running overlapping ranges at once, leaves the
same data for the same `max_lateness_minutes` (it decides which late arrivals the range's
last hours hold).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import CronDataIntervalTimetable, Param, chain, dag, task

from pipelines.config import ATHENA_RESULTS_TEMPLATE, DATA_LAKE_BUCKET_TEMPLATE
from pipelines.config import TRAFFIC_AWS_CONN_ID as AWS_CONN_ID
from pipelines.dag_defaults import DEFAULT_ARGS
from pipelines.deadlines import late_run_alert
from pipelines.errors import fails_fast
from pipelines.traffic.chunks import LARGEST_POINT, MAX_MEASURING_POINTS
from pipelines.traffic.operators import CHUNK_WRITER_POOL, CrawlArrivedDataOperator, WriteChunkOperator
from pipelines.traffic.steps import DEFAULT_DELIVERY_MARGIN_MINUTES

SQL_DIR = Path(__file__).resolve().parents[1] / "include" / "sql"
ATHENA = {"database": "traffic", "output_location": ATHENA_RESULTS_TEMPLATE, "aws_conn_id": AWS_CONN_ID,
          "deferrable": True, "sleep_time": 2}  # fmt: skip
# infra/pipelines.yaml's crawlers, both incremental: TrafficRawCrawler (CRAWL_NEW_FOLDERS_ONLY)
# and TrafficTransformedCrawler (CRAWL_EVENT_MODE, queue traffic-transformed-events)
RAW_CRAWLER, TARGET_CRAWLER = "traffic_raw_crawler", "traffic_transformed_crawler"
CRAWL = {"aws_conn_id": AWS_CONN_ID, "poll_interval": 2}
READY_AT = "{{ ti.xcom_pull(task_ids='plan_chunks')['ready_at'] }}"
# `start`/`end`: an ISO date (midnight UTC) or date-time. Airflow's trigger form picks its
# widget from the top-level "type"/"format" only (it ignores anyOf), and a top-level
# "format" would be checked against every value. Under draft-07, keywords beside "$ref"
# are ignored by validation, so the top-level format is only the form's hint (a
# date-time picker) while values are validated by the referenced anyOf (date or
# date-time). tests/traffic/test_params.py holds both halves to this.
ISO_MOMENT_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "definitions": {
        "iso_date_or_time": {
            "anyOf": [
                {"type": "null"},
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"},
            ]
        }
    },
    "$ref": "#/definitions/iso_date_or_time",
}


def iso_moment_param(description: str) -> Param:
    return Param(None, type=["null", "string"], format="date-time", description=description,
                 **ISO_MOMENT_SCHEMA)  # fmt: skip


@dag(
    dag_id="traffic_repartition",
    # A data-interval timetable, not "@daily" (a zero-length trigger interval in Airflow 3):
    # each run, scheduled or backfilled, owns the event day [midnight, next midnight).
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=2,
    default_args=DEFAULT_ARGS,
    template_searchpath=[str(SQL_DIR)],
    tags=["traffic", "athena", "glue"],
    deadline=late_run_alert("traffic_repartition"),  # pipelines.deadlines.RUN_DEADLINES
    doc_md=__doc__,
    params={
        "start": iso_moment_param("Event time from: ISO date (midnight UTC) or date-time; with end"),
        "end": iso_moment_param("Event time to (exclusive): ISO date (midnight UTC) or date-time"),
        "measuring_points": Param(
            None,
            type=["null", "array"],
            items={"type": "integer", "minimum": 0, "maximum": LARGEST_POINT},
            maxItems=MAX_MEASURING_POINTS,
            description="unieke_id filter: only these points' rows are rewritten, every other row stays",
        ),
        "max_lateness_minutes": Param(120, type="integer", minimum=0, maximum=1440),
        "delivery_margin_minutes": Param(
            DEFAULT_DELIVERY_MARGIN_MINUTES,
            type="integer",
            minimum=0,
            maximum=60,
            description="Added to ready_at: how long after an hour its last raw object may land "
            "(default: the Firehose stream's buffer interval)",
        ),
        "chunk_hours": Param(
            96, type="integer", minimum=1, maximum=96, description="Event hours per Athena query"
        ),
    },
)
def traffic_repartition():
    @task
    @fails_fast  # a range that makes no sense fails at once, naming the param
    def plan_chunks(params=None, data_interval_start=None, data_interval_end=None, dag_run=None) -> dict:
        from pipelines.traffic.steps import plan

        # run_after: a manual run without a logical date (REST API, CLI) processes the day before it
        return plan(params, data_interval_start, data_interval_end, dag_run.run_after if dag_run else None)

    @task
    def chunk_list(planned: dict) -> list[dict]:
        return planned["chunks"]

    planned = plan_chunks()
    wait_for_late_events = DateTimeSensorAsync(
        task_id="wait_for_late_events",
        target_time=READY_AT,
    )
    create_raw_table = AthenaOperator(
        task_id="create_raw_table", query="traffic/create_raw_table.sql", **ATHENA
    )
    create_target_table = AthenaOperator(
        task_id="create_target_table", query="traffic/create_target_table.sql", **ATHENA
    )

    # Raw partitions come from the crawl (after the sensor: every object of the range has
    # landed). Target partitions stay registered by write_chunk itself: a chunk's new files
    # must be in the catalog before it retires the old ones under its leases, and before
    # count_rows reads them, which a crawl after all chunks cannot give.
    crawl_raw = CrawlArrivedDataOperator(
        task_id="crawl_raw", crawler_name=RAW_CRAWLER, data_landed_by=READY_AT, **CRAWL
    )
    @task
    @fails_fast  # a renamed or retyped column the SQL reads: no retry fixes it
    def check_raw_schema(planned: dict) -> list[str]:
        from pipelines.config import data_lake_bucket
        from pipelines.traffic.lake import DATABASE, RAW_TABLE, clients, new_raw_objects
        from pipelines.traffic.raw_schema import check, columns_read_by, compare, object_fields
        from pipelines.traffic.steps import render_insert_sql

        glue, s3 = clients(AWS_CONN_ID)
        table = glue.get_table(DatabaseName=DATABASE, Name=RAW_TABLE)["Table"]
        declared = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
        objects = new_raw_objects(planned["chunks"], data_lake_bucket(), s3)
        report = compare({uri: object_fields(uri, body) for uri, body in objects.items()}, declared)
        warnings = check(report, columns_read_by(render_insert_sql(planned["chunks"][0]), list(declared)))
        for warning in warnings:
            print(f"WARNING raw schema: {warning}")
        print(f"raw schema checked against {len(objects)} new object(s): {len(warnings)} change(s)")
        return warnings

    schema_warnings = check_raw_schema(planned)
    chunks = WriteChunkOperator.partial(
        task_id="write_chunk", pool=CHUNK_WRITER_POOL, bucket=DATA_LAKE_BUCKET_TEMPLATE, **ATHENA
    ).expand(chunk=chunk_list(planned))
    # its data is the chunk writes upstream: landed when it starts (data_landed_by None)
    recrawl_target = CrawlArrivedDataOperator(task_id="recrawl_target", crawler_name=TARGET_CRAWLER, **CRAWL)
    count_rows = AthenaOperator(task_id="count_rows", query="traffic/rows_per_day.sql", **ATHENA)

    @task
    def log_summary(query_execution_id: str, schema_warnings: list[str]) -> dict:
        from pipelines.traffic.steps import rows_per_day

        summary = rows_per_day(query_execution_id, AWS_CONN_ID)
        for day, rows in summary.items():
            print(f"event day {day}: {rows} rows")
        for warning in schema_warnings:
            print(f"WARNING raw schema: {warning}")
        return {"rows_per_day": summary, "raw_schema_warnings": schema_warnings}

    chain(planned, wait_for_late_events, [create_raw_table, create_target_table], crawl_raw,
          schema_warnings, chunks)  # fmt: skip
    chain(chunks, [recrawl_target, count_rows])
    log_summary(count_rows.output, schema_warnings)


traffic_repartition()
