"""Drive include/sql/traffic/insert_chunk.sql chunk by chunk on the offline Athena, without
Airflow: land raw files, register their arrival-hour partitions, run one INSERT per chunk, read
back the Parquet the INSERTs wrote, and compare with the plain-Python reference."""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import jinja2
import pyarrow.parquet as pq

from pipelines.config import DATA_LAKE_BUCKET_DEFAULT, sql_dir
from pipelines.traffic.chunks import Chunk, sql_parameters
from pipelines.traffic.reference import OUTPUT_COLUMNS
from pipelines.traffic.steps import render_insert_sql
from tests.localaws.conftest import wait_for_query

BUCKET = DATA_LAKE_BUCKET_DEFAULT
RAW_PREFIX = "traffic/raw/"
TARGET_PREFIX = "traffic/transformed/"
LATENESS = timedelta(hours=2)
WINDOW = timedelta(minutes=20)  # the longest window: the least lookback that must give exact values
# The indicators' thresholds (docs/PIPELINES.md section 1 steps 5 and 6): an indicator may differ only
# where its input lies within float noise of one of them.
SPEED_DIFF_THRESHOLDS = (-20.0, 20.0)
JAM_THRESHOLDS = (0.0, 40.0, 250.0)


def succeeded(athena: Any, sql: str) -> dict:
    query_id = athena.start_query_execution(
        QueryString=sql,
        QueryExecutionContext={"Database": "traffic"},
        ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/athena-results/"},
    )["QueryExecutionId"]
    execution = wait_for_query(athena, query_id, timeout=120)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    return execution


def fresh_lake(stack: Any) -> None:
    """An empty stack with the bucket, database ``traffic`` and both tables of the DAG's DDL."""
    stack.reset()
    stack.client("s3").create_bucket(Bucket=BUCKET)
    stack.client("glue").create_database(DatabaseInput={"Name": "traffic"})
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(sql_dir()), undefined=jinja2.StrictUndefined, autoescape=False
    )
    no_variables = {"value": {}}  # ``var.value.get(name, default)`` answers the default
    for name in ("create_raw_table.sql", "create_target_table.sql"):
        succeeded(
            stack.client("athena"), environment.get_template(f"traffic/{name}").render(var=no_variables)
        )


def register_arrival_partitions(stack: Any) -> int:
    """ALTER TABLE ADD PARTITION for every arrival-hour folder under traffic/raw/ (the DAG
    registers only the hours a run reads; registering all of them proves the SQL's own pruning)."""
    s3 = stack.client("s3")
    folders = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=RAW_PREFIX):
        folders |= {obj["Key"][len(RAW_PREFIX) :].rsplit("/", 1)[0] for obj in page.get("Contents", [])}
    clauses = []
    for folder in sorted(folders):
        year, month, day, hour = folder.split("/")
        clauses.append(
            f"PARTITION (arrival_year={int(year)}, arrival_month={int(month)}, arrival_day={int(day)}, "
            f"arrival_hour={int(hour)}) LOCATION 's3://{BUCKET}/{RAW_PREFIX}{folder}/'"
        )
    if clauses:
        succeeded(stack.client("athena"), "ALTER TABLE raw ADD " + " ".join(clauses))
    return len(clauses)


def consecutive_chunks(start: datetime, hours: Sequence[int]) -> list[Chunk]:
    chunks, cursor = [], start
    for size in hours:
        chunks.append(Chunk(cursor, cursor + timedelta(hours=size)))
        cursor += timedelta(hours=size)
    return chunks


def chunk_parameters(chunk: Chunk, lookback: timedelta | None = None) -> dict[str, Any]:
    """The steps' SQL parameters of a chunk; ``lookback`` narrows the window lookback (never the
    raw partitions read), to check that the spec's minimum gives exact values."""
    parameters = sql_parameters(chunk, LATENESS, None)
    if lookback is not None:
        parameters["lookback_start_epoch"] = int((chunk.start - lookback).timestamp())
    return parameters


def insert_chunks(stack: Any, chunks: Iterable[Chunk], lookback: timedelta | None = None) -> None:
    athena = stack.client("athena")
    for chunk in chunks:
        succeeded(athena, render_insert_sql(chunk_parameters(chunk, lookback)))


def clear_hours(stack: Any, chunk: Chunk) -> None:
    """What a re-run does before a chunk's INSERT: drop its event-hour partitions' files and entries."""
    s3, glue = stack.client("s3"), stack.client("glue")
    for hour in chunk.event_hours():
        values = [f"{hour:%Y}", f"{hour:%m}", f"{hour:%d}", f"{hour:%H}"]
        prefix = f"{TARGET_PREFIX}year={values[0]}/month={values[1]}/day={values[2]}/hour={values[3]}/"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys]})
        glue.batch_delete_partition(
            DatabaseName="traffic", TableName="events_by_event_time", PartitionsToDelete=[{"Values": values}]
        )


def written(stack: Any) -> tuple[list[dict[str, Any]], Counter]:
    """Every row the INSERTs wrote (spec column names, plus its partition folder) and the number
    of files per partition folder."""
    s3 = stack.client("s3")
    by_lower_name = {column.lower(): column for column in OUTPUT_COLUMNS}
    rows, files = [], Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=TARGET_PREFIX):
        for obj in page.get("Contents", []):
            folder = tuple(part.split("=")[1] for part in obj["Key"][len(TARGET_PREFIX) :].split("/")[:-1])
            files[folder] += 1
            table = pq.read_table(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()))
            for row in table.to_pylist():
                rows.append({**{by_lower_name[k]: v for k, v in row.items()}, "partition": folder})
    return rows, files


def event_hour_folder(epoch: int) -> tuple[str, str, str, str]:
    hour = datetime.fromtimestamp(epoch, UTC)
    return (f"{hour:%Y}", f"{hour:%m}", f"{hour:%d}", f"{hour:%H}")


def _same_number(got: Any, want: Any) -> bool:
    if got is None or want is None:
        return got is None and want is None
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)


def _borderline(value: float | None, thresholds: Sequence[float]) -> bool:
    return value is not None and any(math.isclose(value, t, rel_tol=0, abs_tol=1e-9) for t in thresholds)


def assert_written_equals_reference(stack: Any, want: list[dict[str, Any]]) -> None:
    """The target holds exactly the reference's rows, every event hour in one file of its own folder."""
    rows, files = written(stack)
    keys = Counter((r["lveNr"], r["recordTimestamp"]) for r in rows)
    duplicated = [key for key, n in keys.items() if n > 1]
    assert not duplicated, f"rows written more than once: {duplicated[:5]}"
    misplaced = [r for r in rows if r["partition"] != event_hour_folder(r["recordTimestamp"])]
    assert not misplaced, f"rows outside their event-hour folder: {misplaced[:3]}"
    assert set(files.values()) <= {1}, f"event hours written more than once: {files}"
    assert set(files) == {event_hour_folder(r["recordTimestamp"]) for r in want}

    got_by_key = {(r["lveNr"], r["recordTimestamp"]): r for r in rows}
    want_by_key = {(r["lveNr"], r["recordTimestamp"]): r for r in want}
    missing, extra = (
        sorted(want_by_key.keys() - got_by_key.keys()),
        sorted(got_by_key.keys() - want_by_key.keys()),
    )
    assert not missing and not extra, f"missing {missing[:5]}, unexpected {extra[:5]}"
    for key, expected in want_by_key.items():
        got = got_by_key[key]
        mismatches = []
        for column in OUTPUT_COLUMNS:
            if isinstance(expected[column], float) or isinstance(got[column], float):
                if not _same_number(got[column], expected[column]):
                    mismatches.append(column)
            elif got[column] != expected[column]:
                mismatches.append(column)
        speed_jump = (
            None
            if expected["currentSpeed"] is None or expected["previousSpeed"] is None
            else expected["currentSpeed"] - expected["previousSpeed"]
        )
        tolerated = {
            "speedDiffIndicator": _borderline(speed_jump, SPEED_DIFF_THRESHOLDS),
            "trafficJamIndicator": _borderline(expected["avgSpeed3Minutes"], JAM_THRESHOLDS),
            "trafficJamIndicatorLong": _borderline(expected["avgSpeed20Minutes"], JAM_THRESHOLDS),
        }
        mismatches = [c for c in mismatches if not tolerated.get(c, False)]
        assert not mismatches, (
            f"location {key[0]} minute {datetime.fromtimestamp(key[1], UTC).isoformat()}: {mismatches} differ\n"
            f"  SQL:       { ({c: got[c] for c in OUTPUT_COLUMNS}) }\n"
            f"  reference: {expected}"
        )
