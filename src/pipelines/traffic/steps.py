"""traffic_repartition's task bodies: planning, SQL rendering, the run summary."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import jinja2

from pipelines.config import TRAFFIC_AWS_CONN_ID as AWS_CONN_ID
from pipelines.config import sql_dir
from pipelines.errors import BadInput
from pipelines.traffic.chunks import (
    HOUR,
    chunk_payload,
    resolve_range,
    split_into_chunks,
    target_hour_ranges,
)

log = logging.getLogger(__name__)

# Athena's StartQueryExecution takes a query string of at most 262144 bytes (API reference:
# QueryString, "Length Constraints: Maximum length of 262144").
ATHENA_MAX_QUERY_BYTES = 262144

# Kinesis Firehose holds records up to its buffering interval before it writes an object
# (BufferingHints.IntervalInSeconds, default 300 s), so an arrival hour's last object can
# land that long after the hour: the default delivery margin added to ready_at.
STREAM_BUFFER_INTERVAL = timedelta(seconds=300)
DEFAULT_DELIVERY_MARGIN_MINUTES = int(STREAM_BUFFER_INTERVAL.total_seconds() // 60)


def plan(
    params: dict[str, Any],
    interval_start: datetime | None,
    interval_end: datetime | None,
    run_after: datetime | None = None,
) -> dict[str, Any]:
    """Validate the run's range and cut it into chunks (the first task: fails fast on bad params)."""
    start, end = resolve_range(
        params.get("start"), params.get("end"), interval_start, interval_end, run_after
    )
    lateness = timedelta(minutes=int(params.get("max_lateness_minutes", 120)))
    margin = timedelta(minutes=int(params.get("delivery_margin_minutes", DEFAULT_DELIVERY_MARGIN_MINUTES)))
    chunks = split_into_chunks(start, end, int(params.get("chunk_hours", 96)))
    payloads = [chunk_payload(c, lateness, params.get("measuring_points")) for c in chunks]
    for payload in payloads:  # a query Athena would refuse fails the run here, before any write
        render_insert_sql(payload)
    log.info("event time %s .. %s: %s chunk(s)", start.isoformat(), end.isoformat(), len(chunks))
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        # every event of the range has arrived by then, and the stream has written it out
        "ready_at": (end + lateness + margin).isoformat(),
        "first_hour": start.strftime("%Y%m%d%H"),
        "last_hour": (end - HOUR).strftime("%Y%m%d%H"),
        "event_days": target_hour_ranges(start, end),
        "chunks": payloads,
    }


class QueryTooLong(BadInput):
    """A chunk's rendered INSERT is longer than Athena accepts."""


def render_insert_sql(chunk: dict[str, Any]) -> str:
    """include/sql/traffic/insert_chunk.sql with the chunk's computed values, checked against
    Athena's query size limit (so an oversized filter fails before anything is cleared)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(sql_dir()), undefined=jinja2.StrictUndefined, autoescape=False
    )
    query = environment.get_template("traffic/insert_chunk.sql").render(chunk=chunk)
    size = len(query.encode("utf-8"))
    if size > ATHENA_MAX_QUERY_BYTES:
        raise QueryTooLong(
            f"param measuring_points: chunk {chunk['chunk_start']}..{chunk['chunk_end']} renders a query "
            f"of {size} bytes, over Athena's limit of {ATHENA_MAX_QUERY_BYTES}; list fewer points"
        )
    return query


def rows_per_day(query_execution_id: str, aws_conn_id: str = AWS_CONN_ID) -> dict[str, int]:
    from airflow.providers.amazon.aws.hooks.athena import AthenaHook

    results = AthenaHook(aws_conn_id=aws_conn_id).get_query_results(query_execution_id)
    rows = results["ResultSet"]["Rows"][1:]
    return {row["Data"][0]["VarCharValue"]: int(row["Data"][1]["VarCharValue"]) for row in rows}
