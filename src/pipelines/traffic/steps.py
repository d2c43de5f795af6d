"""traffic_repartition's task bodies: planning, per-chunk partition clean-up, SQL rendering."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import jinja2

from pipelines.config import TRAFFIC_AWS_CONN_ID as AWS_CONN_ID
from pipelines.config import sql_dir
from pipelines.traffic.chunks import (
    HOUR,
    chunk_payload,
    resolve_range,
    split_into_chunks,
    target_partitions,
)

log = logging.getLogger(__name__)

DATABASE = "traffic"
RAW_TABLE = "raw_events"
TARGET_TABLE = "events_by_event_time"
TARGET_PREFIX = "traffic/transformed/"


def plan(
    params: dict[str, Any], interval_start: datetime | None, interval_end: datetime | None
) -> dict[str, Any]:
    """Validate the run's range and cut it into chunks (the first task: fails fast on bad params)."""
    start, end = resolve_range(params.get("start"), params.get("end"), interval_start, interval_end)
    lateness = timedelta(minutes=int(params.get("max_lateness_minutes", 120)))
    chunks = split_into_chunks(start, end, int(params.get("chunk_hours", 96)))
    payloads = [chunk_payload(c, lateness, params.get("measuring_points")) for c in chunks]
    log.info("event time %s .. %s: %s chunk(s)", start.isoformat(), end.isoformat(), len(chunks))
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "ready_at": (end + lateness).isoformat(),  # every event of the range has arrived by then
        "first_hour": start.strftime("%Y%m%d%H"),
        "last_hour": (end - HOUR).strftime("%Y%m%d%H"),
        "chunks": payloads,
    }


def render_insert_sql(chunk: dict[str, Any]) -> str:
    """include/sql/traffic/insert_chunk.sql with the chunk's computed values."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(sql_dir()), undefined=jinja2.StrictUndefined, autoescape=False
    )
    return environment.get_template("traffic/insert_chunk.sql").render(chunk=chunk)


def clear_target_partitions(chunk: dict[str, Any], bucket: str, aws_conn_id: str = AWS_CONN_ID) -> int:
    """Make the chunk's INSERT idempotent: delete its event-hour partitions (files and catalog)."""
    from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    s3 = S3Hook(aws_conn_id=aws_conn_id)
    glue = GlueCatalogHook(aws_conn_id=aws_conn_id).get_conn()
    partitions = target_partitions(chunk["chunk_start_epoch"], chunk["chunk_end_epoch"])
    removed = 0
    for partition in partitions:
        prefix = TARGET_PREFIX + "/".join(f"{k}={v}" for k, v in partition.items()) + "/"
        keys = s3.list_keys(bucket_name=bucket, prefix=prefix)
        if keys:
            s3.delete_objects(bucket=bucket, keys=keys)
            removed += len(keys)
    values = [{"Values": list(p.values())} for p in partitions]
    for start in range(0, len(values), 25):
        try:
            glue.batch_delete_partition(
                DatabaseName=DATABASE, TableName=TARGET_TABLE, PartitionsToDelete=values[start : start + 25]
            )  # absent partitions come back as Errors, which is fine
        except glue.exceptions.EntityNotFoundException:
            break  # no table yet: nothing to clear
    log.info("chunk %s..%s: removed %s file(s) of %s partition(s)", chunk["chunk_start"], chunk["chunk_end"],
             removed, len(partitions))  # fmt: skip
    return removed


def rows_per_day(query_execution_id: str, aws_conn_id: str = AWS_CONN_ID) -> dict[str, int]:
    from airflow.providers.amazon.aws.hooks.athena import AthenaHook

    results = AthenaHook(aws_conn_id=aws_conn_id).get_query_results(query_execution_id)
    rows = results["ResultSet"]["Rows"][1:]
    return {row["Data"][0]["VarCharValue"]: int(row["Data"][1]["VarCharValue"]) for row in rows}
