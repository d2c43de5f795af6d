"""
### traffic_repartition: raw traffic events by arrival hour -> Parquet by event time

Operators' page (reads, writes, params with examples, failures, re-runs): `docs/pipelines/traffic_repartition.md`.

`plan_chunks` (validate start/end, cut into chunks of at most 96 event hours)
-> `wait_for_late_events` (deferrable: until the range end + `max_lateness_minutes`)
-> `create_raw_table` / `create_target_table` (Athena DDL, IF NOT EXISTS)
-> `crawl_raw` (Glue crawler `traffic_raw_crawler`, deferrable)
-> per chunk, mapped, pool `athena`: `clear_target_partitions` (idempotency: the chunk's
   event-hour partitions removed, files and catalog) -> `insert_chunk` (Athena INSERT INTO,
   deferrable, reading only the raw arrival partitions it needs)
-> `crawl_transformed` (Glue crawler `traffic_transformed_crawler`, deferrable)
-> `count_rows` -> `log_summary` (rows per event day).

A scheduled run processes the event day of its data interval; a backfill
(`airflow backfill create`) processes each day of its range; a manual run may give
`start`/`end` (ISO, end after start, at most 366 days). Re-running any range leaves
the same data.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.amazon.aws.operators.glue_crawler import GlueCrawlerOperator
from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import CronDataIntervalTimetable, Param, chain, dag, task, task_group

from pipelines.config import ATHENA_RESULTS_TEMPLATE, AWS_CONN_ID
from pipelines.dag_defaults import DEFAULT_ARGS

SQL_DIR = Path(__file__).resolve().parents[1] / "include" / "sql"
CRAWLER_ROLE = "{{ var.value.get('glue_crawler_role', 'glue-crawler-traffic') }}"
ATHENA = {"database": "traffic", "output_location": ATHENA_RESULTS_TEMPLATE, "aws_conn_id": AWS_CONN_ID,
          "deferrable": True, "sleep_time": 2}  # fmt: skip
CRAWLER = {
    "aws_conn_id": AWS_CONN_ID,
    "deferrable": True,
    "poll_interval": 2,
    "fail_on_already_running": False,
}


def _crawler(name: str, table: str) -> dict:
    return {
        "Name": name,
        "Role": CRAWLER_ROLE,
        "DatabaseName": "traffic",
        "Targets": {"CatalogTargets": [{"DatabaseName": "traffic", "Tables": [table]}]},
        "SchemaChangePolicy": {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"},
    }


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
    doc_md=__doc__,
    params={
        "start": Param(
            None, type=["null", "string"], format="date-time", description="Event time from (ISO), with end"
        ),
        "end": Param(
            None, type=["null", "string"], format="date-time", description="Event time to (ISO, exclusive)"
        ),
        "measuring_points": Param(
            None, type=["null", "array"], items={"type": "integer"}, description="unieke_id filter"
        ),
        "max_lateness_minutes": Param(120, type="integer", minimum=0, maximum=1440),
        "chunk_hours": Param(
            96, type="integer", minimum=1, maximum=96, description="Event hours per Athena query"
        ),
    },
)
def traffic_repartition():
    @task
    def plan_chunks(params=None, data_interval_start=None, data_interval_end=None) -> dict:
        from pipelines.traffic.steps import plan

        return plan(params, data_interval_start, data_interval_end)

    @task
    def chunk_list(planned: dict) -> list[dict]:
        return planned["chunks"]

    planned = plan_chunks()
    wait_for_late_events = DateTimeSensorAsync(
        task_id="wait_for_late_events",
        target_time="{{ ti.xcom_pull(task_ids='plan_chunks')['ready_at'] }}",
    )
    create_raw_table = AthenaOperator(
        task_id="create_raw_table", query="traffic/create_raw_table.sql", **ATHENA
    )
    create_target_table = AthenaOperator(
        task_id="create_target_table", query="traffic/create_target_table.sql", **ATHENA
    )
    crawl_raw = GlueCrawlerOperator(
        task_id="crawl_raw", config=_crawler("traffic_raw_crawler", "raw_events"), **CRAWLER
    )

    @task_group
    def process_chunk(chunk: dict):
        @task
        def clear_target_partitions(chunk: dict) -> int:
            from pipelines.config import data_lake_bucket
            from pipelines.traffic.steps import clear_target_partitions as clear

            return clear(chunk, data_lake_bucket())

        @task
        def render_insert_sql(chunk: dict) -> str:
            from pipelines.traffic.steps import render_insert_sql as render

            return render(chunk)

        insert_chunk = AthenaOperator(
            task_id="insert_chunk", query=render_insert_sql(chunk), pool="athena", **ATHENA
        )
        clear_target_partitions(chunk) >> insert_chunk

    chunks = process_chunk.expand(chunk=chunk_list(planned))
    crawl_transformed = GlueCrawlerOperator(
        task_id="crawl_transformed",
        config=_crawler("traffic_transformed_crawler", "events_by_event_time"),
        **CRAWLER,
    )
    count_rows = AthenaOperator(task_id="count_rows", query="traffic/rows_per_day.sql", **ATHENA)

    @task
    def log_summary(query_execution_id: str) -> dict:
        from pipelines.traffic.steps import rows_per_day

        summary = rows_per_day(query_execution_id)
        for day, rows in summary.items():
            print(f"event day {day}: {rows} rows")
        return summary

    chain(planned, wait_for_late_events, [create_raw_table, create_target_table], crawl_raw, chunks)
    chain(chunks, crawl_transformed, count_rows)
    log_summary(count_rows.output)


traffic_repartition()
