"""Demo: generate two days of raw traffic events and repartition one of them by event time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devtools.demo import DemoContext, DemoRun
from devtools.traffic_generator import write_raw

DAG_ID = "traffic_repartition"
ORDER = 10
START = datetime(2024, 2, 28, 22, tzinfo=UTC)  # across a (leap) month end
END = datetime(2024, 3, 1, 2, tzinfo=UTC)


def prepare(ctx: DemoContext) -> DemoRun:
    counts = write_raw(
        ctx.client("s3"), "pipelines-data-lake", START - timedelta(hours=3), END + timedelta(hours=3),
        locations=3, lanes=2,
    )  # fmt: skip
    print(f"   wrote {counts['records']} raw readings in {counts['files']} arrival-hour files")
    return DemoRun(conf={"start": START.isoformat(), "end": END.isoformat(), "chunk_hours": 24})


def standalone(ctx: DemoContext, now: datetime | None = None) -> dict[str, str]:
    """``make airflow``: raw events around yesterday's event day, the range a default manual run takes.

    A manual run without ``start``/``end`` processes the last complete data interval
    (yesterday, UTC); three hours either side give it late and early arrivals.
    """
    today = (now or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    counts = write_raw(
        ctx.client("s3"), "pipelines-data-lake", today - timedelta(days=1, hours=3), today + timedelta(hours=3),
        locations=3, lanes=2,
    )  # fmt: skip
    print(f"   wrote {counts['records']} raw traffic readings for {(today - timedelta(days=1)).date()}")
    return {}


def summarize(ctx: DemoContext) -> list[tuple[str, object]]:
    glue = ctx.client("glue")
    raw = glue.get_partitions(DatabaseName="traffic", TableName="raw")["Partitions"]
    partitions = []
    for page in glue.get_paginator("get_partitions").paginate(
        DatabaseName="traffic", TableName="events_by_event_time"
    ):
        partitions += page["Partitions"]
    athena = ctx.client("athena")
    query_id = athena.start_query_execution(
        QueryString="SELECT count(*) FROM traffic.events_by_event_time",
        ResultConfiguration={"OutputLocation": "s3://pipelines-data-lake/athena-results/"},
    )["QueryExecutionId"]
    import time

    while athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"] in (
        "QUEUED",
        "RUNNING",
    ):
        time.sleep(0.2)
    rows = athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"][1]["Data"][0][
        "VarCharValue"
    ]
    return [
        ("raw arrival-hour partitions registered", len(raw)),
        ("event-hour partitions written", len(partitions)),
        ("rows (location-minutes) written", rows),
    ]
