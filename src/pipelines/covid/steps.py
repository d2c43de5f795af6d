"""The covid_daily tasks' bodies: thin I/O around the pure functions in ``domain``.

Why the table is the baseline: ``plan`` reads every row of the table's partition (one
paginated Query on pk=CASES) and diffs the merged sources against it. Whatever happened
to the table since the last run (a load that died half-way, rows deleted or restored by
hand, a table recreated empty), the next run writes exactly what makes it equal to the
sources again. Puts and deletes are idempotent, so a retried ``load`` converges too.

Why a removal guard (``pipelines.guard``, the same in every pipeline): a truncated source
(30 rows instead of 800) would otherwise plan hundreds of deletes, a source rewritten to
zeros hundreds of lowered days; ``plan`` refuses a plan that deletes or lowers more than a
set share of the table (at least a floor of days is always allowed) unless the run was
triggered with ``allow_large_removal=true``.

Why a table mark: ``plan`` diffs against the table as it is then. Each load leaves a mark
(``covid/table-version.json``: the run that loaded, its run_after, when); the plan records
the mark it was computed against, and ``load`` refuses a plan when another run has loaded
since (a cleared ``load`` of an older run would otherwise overwrite newer data).

Each run's merged data and plan stay under ``covid/runs/<run_id>/`` as its audit trail.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pipelines.aws.dynamodb import delete_keys, dynamodb_client, put_items, query_items, query_keys
from pipelines.aws.s3 import read_bytes, read_bytes_if_exists, write_bytes
from pipelines.config import COVID_AWS_CONN_ID as AWS_CONN_ID
from pipelines.covid.domain import (
    COUNT_NAMES,
    DEFAULT_MAX_REMOVAL_SHARE,
    REMOVAL_FLOOR,
    Changes,
    Row,
    SourceValidationError,
    as_rows,
    diff,
    merge_sources,
    parse_cases,
    parse_recoveries,
    removal_problems,
    rows_from_csv,
    rows_to_csv,
)
from pipelines.guard import (
    STALE_PLAN,
    LargeRemovalRefused,
    LoadMark,
    RemovalLimit,
    StalePlanRefused,
    enforce_removal_limit,
    override_note,
    refuse_stale_plan,
)
from pipelines.sources import SourcePolicy, fetch, policy_from_settings
from pipelines.tables import COVID_PARTITION as PARTITION_VALUE
from pipelines.tables import COVID_TABLE as TABLE

log = logging.getLogger(__name__)

TOPIC_NAME = "covid-refresh"
# A row the table holds in a shape the pipeline never writes: always differs, so it is rewritten.
UNREADABLE_ROW: Row = (-1, -1, -1)


def source_url(param_value: str, default: str, variable_name: str) -> str:
    """The param, unless it is the default and a Variable names a replacement (run time only)."""
    if param_value != default:
        return param_value
    from pipelines.config import variable

    return variable(variable_name, default)


def run_prefix(bucket: str, run_id: str) -> str:
    return f"s3://{bucket}/covid/runs/{re.sub(r'[^A-Za-z0-9_.-]', '_', run_id)}/"


def extract(
    cases_url: str, recoveries_url: str, bucket: str, run_id: str, policy: SourcePolicy | None = None
) -> dict[str, Any]:
    """Fetch and validate both sources, merge them, stage the result in S3 (nothing loaded yet)."""
    policy = policy or policy_from_settings(bucket)
    cases = parse_cases(fetch(cases_url, policy), cases_url)
    recoveries = parse_recoveries(fetch(recoveries_url, policy), recoveries_url)
    merged = merge_sources(cases, recoveries)
    if merged.empty:
        raise SourceValidationError(
            f"{cases_url} + {recoveries_url}", "the two sources have no date in common"
        )
    uri = run_prefix(bucket, run_id) + "merged.csv"
    write_bytes(uri, rows_to_csv(as_rows(merged)), "text/csv")
    summary = {
        "merged_uri": uri,
        "rows": len(merged),
        "first_date": merged["date"].iloc[0],
        "last_date": merged["date"].iloc[-1],
    }
    log.info("merged %s rows, %s..%s", summary["rows"], summary["first_date"], summary["last_date"])
    return summary


def _row_of(item: dict[str, Any]) -> Row:
    values = [item.get(name) for name in COUNT_NAMES]
    if all(isinstance(v, Decimal) and v == v.to_integral_value() for v in values):
        return tuple(int(v) for v in values)  # type: ignore[return-value]
    return UNREADABLE_ROW


def table_rows() -> dict[str, Row]:
    """Every row the table holds now (one paginated Query of the partition, no Scan)."""
    return {
        str(item["sk"]): _row_of(item)
        for item in query_items(dynamodb_client(), TABLE, "pk", PARTITION_VALUE)
    }


def mark_uri(bucket: str) -> str:
    """Where the last load of covid_stats is recorded (see the module doc)."""
    return f"s3://{bucket}/covid/table-version.json"


def current_mark(uri: str) -> LoadMark | None:
    return LoadMark.from_json(read_bytes_if_exists(uri))


def plan(
    merged_uri: str, bucket: str, run_id: str, allow_large_removal: bool = False,
    max_removal_share: float = DEFAULT_MAX_REMOVAL_SHARE,
) -> dict[str, Any]:  # fmt: skip
    """Diff the merged data against the table; refuse a suspicious shrink; stage the writes in S3.

    The staged plan records the table mark it was computed against, for ``load`` to check.
    """
    current = rows_from_csv(read_bytes(merged_uri))
    # the mark before the table: a load finishing in between makes this plan look stale (refused), never fresh
    planned_against = current_mark(mark_uri(bucket))
    table = table_rows()
    changes = diff(table, current)
    limit = RemovalLimit(max_share=max_removal_share, floor=REMOVAL_FLOOR)
    let_through = enforce_removal_limit(removal_problems(table, current, changes, limit), allow_large_removal)
    if let_through:
        log.warning("%s", override_note(let_through))
    uri = run_prefix(bucket, run_id) + "changes.json"
    payload = {
        "put": {**changes.puts_new, **changes.puts_changed},
        "delete": changes.deletes,
        "counts": changes.counts,
        "table_rows_before": len(table),
        "run_id": run_id,
        "mark_uri": mark_uri(bucket),
        "planned_against": asdict(planned_against) if planned_against else None,
        "removal_allowed": let_through,
    }
    write_bytes(uri, json.dumps(payload).encode(), "application/json")
    log.info("planned %s against %s table rows", changes.counts, len(table))
    summary: dict[str, Any] = {"changes_uri": uri, **changes.counts}
    if let_through:
        summary["override"] = override_note(let_through)
    return summary


class LoadInterrupted(RuntimeError):
    """``load`` failed; says how many of the planned writes this attempt applied first."""

    def __init__(self, applied: int, planned: int | None, cause: BaseException):
        self.applied, self.planned, self.cause = applied, planned, cause
        of = f" of {planned}" if planned is not None else ""
        if applied == 0:
            done = f"nothing written to {TABLE} by this attempt (0{of} planned writes applied)"
        else:
            done = f"{applied}{of} planned writes applied to {TABLE} before the failure"
        super().__init__(
            f"{done}; re-run to converge (the next run diffs against the table). "
            f"Cause: {type(cause).__name__}: {cause}"
        )


def load(changes_uri: str, run_id: str, run_after: str) -> dict[str, int]:
    """Apply the staged puts, then the deletes (batched, retried; idempotent on re-run).

    A plan another run's load has overtaken is refused before any write (StalePlanRefused);
    a load that completes leaves this run's mark.
    """
    applied = 0
    planned: int | None = None

    def count(accepted: int) -> None:
        nonlocal applied
        applied += accepted

    try:
        payload = json.loads(read_bytes(changes_uri))
        planned = len(payload["put"]) + len(payload["delete"])
        planned_against = LoadMark.from_json(payload["planned_against"])
        refuse_stale_plan(TABLE, payload["run_id"], planned_against, current_mark(payload["mark_uri"]))
        client = dynamodb_client()
        items = (
            {"pk": PARTITION_VALUE, "sk": date, "cases": c, "deaths": d, "recoveries": r}
            for date, (c, d, r) in sorted(payload["put"].items())
        )
        written = put_items(client, TABLE, items, on_accepted=count)
        keys = ({"pk": PARTITION_VALUE, "sk": date} for date in payload["delete"])
        deleted = delete_keys(client, TABLE, keys, on_accepted=count)
        mark = LoadMark(run_id=run_id, run_after=run_after, loaded_at=datetime.now(UTC).isoformat())
        write_bytes(payload["mark_uri"], mark.to_json(), "application/json")
    except StalePlanRefused:
        raise  # before any write: bad input for this run, not an interrupted load
    except Exception as error:
        raise LoadInterrupted(applied, planned, error) from error
    log.info("wrote %s item(s), deleted %s; %s", written, deleted, mark.describe())
    return {"written": written, "deleted": deleted}


def table_keys() -> list[str]:
    return [k["sk"] for k in query_keys(dynamodb_client(), TABLE, "pk", PARTITION_VALUE, "sk")]


def topic_arn(name: str = TOPIC_NAME, aws_conn_id: str = AWS_CONN_ID) -> str:
    """The topic's ARN from the connection's partition/region and the caller's account (no lookup)."""
    from airflow.providers.amazon.aws.hooks.sns import SnsHook
    from airflow.providers.amazon.aws.hooks.sts import StsHook

    hook = SnsHook(aws_conn_id=aws_conn_id)
    account = StsHook(aws_conn_id=aws_conn_id).get_account_number()
    return f"arn:{hook.conn_partition}:sns:{hook.conn_region_name}:{account}:{name}"


SNS_SUBJECT_MAX = 100  # SNS refuses a longer Subject (InvalidParameter)


def notice(subject: str, message: str, aws_conn_id: str = AWS_CONN_ID) -> dict[str, str]:
    """What the provider's SnsPublishOperator / SnsNotifier publish to topic ``covid-refresh``.

    They publish ``{"default": message}`` with MessageStructure "json": every subscriber
    without a protocol-specific message (e-mail ones included) receives ``message`` as
    plain text, as a plain publish would.
    """
    return {
        "topic_arn": topic_arn(aws_conn_id=aws_conn_id),
        "subject": subject[:SNS_SUBJECT_MAX],
        "message": message,
    }


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
    if counts.get("override"):
        body += f"\nOverride: {counts['override']}\n"
    return subject, body


BEFORE_LOAD = ("extract", "plan")
AFTER_LOAD = ("success_notice", "notify_success")


def what_was_written(task_id: str, error: object, try_number: int = 1) -> str:
    """A true sentence about the table's state after ``task_id`` failed with ``error``."""
    if task_id in BEFORE_LOAD:
        return f"Nothing was written to {TABLE}: the failure came before the load."
    if task_id in AFTER_LOAD:
        return f"Every planned write was applied to {TABLE} before this step failed."
    if task_id == "load":
        if isinstance(error, StalePlanRefused) or str(error).startswith(STALE_PLAN):
            return f"Nothing was written to {TABLE}: the plan was stale (a newer run has loaded)."
        if isinstance(error, LoadInterrupted):
            said = str(error).split("; re-run", 1)[0]
            sentence = said[0].upper() + said[1:] + "; re-run to converge."
        else:
            sentence = (
                f"The load ended without reporting what it wrote ({type(error).__name__}); "
                f"part of the plan may be applied; re-run to converge."
            )
        if try_number > 1:
            sentence += f" Earlier attempts (tries 1-{try_number - 1}) may have applied writes too."
        return sentence
    return f"Unknown how much was written to {TABLE}; re-run to converge."


def failure_message(
    dag_id: str, task_id: str, run_id: str, error: object, log_url: str, try_number: int = 1
) -> tuple[str, str]:
    subject = f"COVID data refresh FAILED ({task_id})"
    body = (
        f"The covid_stats refresh failed. {what_was_written(task_id, error, try_number)}\n\n"
        f"DAG: {dag_id}\nTask: {task_id}\nRun: {run_id}\n"
        f"Error: {type(error).__name__}: {error}\n"
        f"Log: {log_url}\n"
    )
    return subject, body


__all__ = ["Changes", "LargeRemovalRefused", "extract", "plan", "load", "notice", "topic_arn"]
