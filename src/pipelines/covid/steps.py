"""The covid_daily tasks' bodies: thin I/O around the pure functions in ``domain``.

Why a snapshot *and* a fallback: the diff is taken against the previous run's snapshot
(``s3://<bucket>/covid/snapshot/covid_stats.csv``), which is replaced only after
DynamoDB accepted every write. If a load dies half-way, the old snapshot stays, the next
run computes the same (or a superset of the) writes again, and puts/deletes are
idempotent, so nothing is lost. When there is no snapshot yet (first run, or a
snapshot removed by hand), the table's own content (one Query on pk=CASES) is the
baseline, so rows already in the table are neither rewritten nor left stale.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from pipelines.aws.dynamodb import delete_keys, dynamodb_client, put_items, query_keys
from pipelines.aws.s3 import read_bytes, read_bytes_if_exists, write_bytes
from pipelines.config import COVID_AWS_CONN_ID as AWS_CONN_ID
from pipelines.covid.domain import (
    Changes,
    SourceValidationError,
    as_rows,
    diff,
    merge_sources,
    parse_cases,
    parse_recoveries,
    parse_snapshot,
    snapshot_csv,
)
from pipelines.sources import fetch

log = logging.getLogger(__name__)

TABLE = "covid_stats"
PARTITION_VALUE = "CASES"
TOPIC_NAME = "covid-refresh"
SNAPSHOT_KEY = "covid/snapshot/covid_stats.csv"


def source_url(param_value: str, default: str, variable_name: str) -> str:
    """The param, unless it is the default and a Variable names a replacement (run time only)."""
    if param_value != default:
        return param_value
    from pipelines.config import variable

    return variable(variable_name, default)


def run_prefix(bucket: str, run_id: str) -> str:
    return f"s3://{bucket}/covid/runs/{re.sub(r'[^A-Za-z0-9_.-]', '_', run_id)}/"


def extract(cases_url: str, recoveries_url: str, bucket: str, run_id: str) -> dict[str, Any]:
    """Fetch and validate both sources, merge them, stage the result in S3 (nothing loaded yet)."""
    cases = parse_cases(fetch(cases_url), cases_url)
    recoveries = parse_recoveries(fetch(recoveries_url), recoveries_url)
    merged = merge_sources(cases, recoveries)
    if merged.empty:
        raise SourceValidationError(
            f"{cases_url} + {recoveries_url}", "the two sources have no date in common"
        )
    uri = run_prefix(bucket, run_id) + "merged.csv"
    write_bytes(uri, snapshot_csv(as_rows(merged)), "text/csv")
    summary = {
        "merged_uri": uri,
        "rows": len(merged),
        "first_date": merged["date"].iloc[0],
        "last_date": merged["date"].iloc[-1],
    }
    log.info("merged %s rows, %s..%s", summary["rows"], summary["first_date"], summary["last_date"])
    return summary


def previous_rows(bucket: str) -> dict[str, tuple[int, int, int]]:
    snapshot = read_bytes_if_exists(f"s3://{bucket}/{SNAPSHOT_KEY}")
    if snapshot is not None:
        return parse_snapshot(snapshot)
    log.info("no snapshot yet: diffing against the table's current content")
    client = dynamodb_client()
    rows = {}
    paginator = client.get_paginator("query")
    for page in paginator.paginate(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": PARTITION_VALUE}},
    ):
        for item in page["Items"]:
            rows[item["sk"]["S"]] = (
                int(item["cases"]["N"]),
                int(item["deaths"]["N"]),
                int(item["recoveries"]["N"]),
            )
    return rows


def plan(merged_uri: str, bucket: str, run_id: str) -> dict[str, Any]:
    """Diff the merged data against the previous load; stage the writes in S3."""
    current = parse_snapshot(read_bytes(merged_uri))
    changes = diff(previous_rows(bucket), current)
    uri = run_prefix(bucket, run_id) + "changes.json"
    payload = {
        "put": {**changes.puts_new, **changes.puts_changed},
        "delete": changes.deletes,
        "counts": changes.counts,
    }
    write_bytes(uri, json.dumps(payload).encode(), "application/json")
    log.info("planned %s", changes.counts)
    return {"changes_uri": uri, **changes.counts}


def load(changes_uri: str) -> dict[str, int]:
    """Apply the staged puts, then the deletes (batched, retried; idempotent on re-run)."""
    payload = json.loads(read_bytes(changes_uri))
    client = dynamodb_client()
    items = (
        {"pk": PARTITION_VALUE, "sk": date, "cases": c, "deaths": d, "recoveries": r}
        for date, (c, d, r) in sorted(payload["put"].items())
    )
    written = put_items(client, TABLE, items)
    deleted = delete_keys(client, TABLE, ({"pk": PARTITION_VALUE, "sk": date} for date in payload["delete"]))
    log.info("wrote %s item(s), deleted %s", written, deleted)
    return {"written": written, "deleted": deleted}


def replace_snapshot(merged_uri: str, bucket: str) -> str:
    """Only after every write succeeded: the merged data becomes the baseline of the next run."""
    uri = f"s3://{bucket}/{SNAPSHOT_KEY}"
    write_bytes(uri, read_bytes(merged_uri), "text/csv")
    return uri


def table_keys() -> list[str]:
    return [k["sk"] for k in query_keys(dynamodb_client(), TABLE, "pk", PARTITION_VALUE, "sk")]


def topic_arn(name: str = TOPIC_NAME, aws_conn_id: str = AWS_CONN_ID) -> str:
    """The topic's ARN from the connection's partition/region and the caller's account (no lookup)."""
    from airflow.providers.amazon.aws.hooks.sns import SnsHook
    from airflow.providers.amazon.aws.hooks.sts import StsHook

    hook = SnsHook(aws_conn_id=aws_conn_id)
    account = StsHook(aws_conn_id=aws_conn_id).get_account_number()
    return f"arn:{hook.conn_partition}:sns:{hook.conn_region_name}:{account}:{name}"


def publish(subject: str, message: str) -> str:
    from airflow.providers.amazon.aws.hooks.sns import SnsHook

    # a plain-text Message (not the hook's JSON MessageStructure): e-mail subscribers read it as is
    response = (
        SnsHook(aws_conn_id=AWS_CONN_ID)
        .get_conn()
        .publish(TopicArn=topic_arn(), Message=message, Subject=subject[:100])
    )
    return response["MessageId"]


def success_message(extracted: dict[str, Any], counts: dict[str, int]) -> tuple[str, str]:
    subject = "COVID data refresh succeeded"
    body = (
        f"The covid_stats table was refreshed successfully.\n\n"
        f"Dates: {extracted['first_date']} to {extracted['last_date']} ({extracted['rows']} days)\n"
        f"Inserted: {counts['inserted']}\n"
        f"Updated: {counts['updated']}\n"
        f"Deleted: {counts['deleted']}\n"
        f"Unchanged: {counts['unchanged']}\n"
    )
    return subject, body


def failure_message(dag_id: str, task_id: str, run_id: str, error: object, log_url: str) -> tuple[str, str]:
    subject = f"COVID data refresh FAILED ({task_id})"
    body = (
        f"The covid_stats refresh failed; the table was left as it was before this step.\n\n"
        f"DAG: {dag_id}\nTask: {task_id}\nRun: {run_id}\n"
        f"Error: {type(error).__name__}: {error}\n"
        f"Log: {log_url}\n"
    )
    return subject, body


__all__ = ["Changes", "extract", "plan", "load", "replace_snapshot", "publish", "topic_arn"]
