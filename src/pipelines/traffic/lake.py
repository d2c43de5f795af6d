"""traffic_repartition's AWS adapters: the Glue catalog, S3 and Athena calls around a chunk.

Thin functions over boto3 clients, which the DAG takes from the Amazon provider's hooks
(``clients()``) and the benchmark from the offline stack; what to do is decided in
``chunks.py`` (pure), in what order by ``writes.ChunkWrite`` and ``operators.WriteChunkOperator``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from pipelines.traffic.chunks import arrival_hours, target_partitions

log = logging.getLogger(__name__)

DATABASE = "traffic"
RAW_TABLE = "raw"
TARGET_TABLE = "events_by_event_time"
RAW_PREFIX = "traffic/raw/"
TARGET_PREFIX = "traffic/transformed/"
# Every query that writes the target starts with this; a running one that the chunk
# writer did not start itself is a leftover of a lost attempt (see writes.ChunkWrite.stop_leftover_writes).
WRITE_MARKER = "INSERT INTO traffic.events_by_event_time"
# Athena ends a DML query after 30 minutes (service quota "DML query timeout", at most
# 240): a query submitted longer ago than this cannot still be running.
LONGEST_ATHENA_QUERY = timedelta(hours=4)
UNFINISHED = ("QUEUED", "RUNNING")
GLUE_BATCH_CREATE_MAX = 100
GLUE_BATCH_DELETE_MAX = 25


def clients(aws_conn_id: str) -> tuple[Any, Any]:
    """The Glue and S3 clients of an Airflow AWS connection, through the provider's hooks."""
    from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return GlueCatalogHook(aws_conn_id=aws_conn_id).get_conn(), S3Hook(aws_conn_id=aws_conn_id).get_conn()


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    return [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
    ]


class CatalogError(RuntimeError):
    """The Glue catalog refused a partition change for a reason other than 'already there'."""


def _batch_create(glue: Any, table: str, inputs: list[dict[str, Any]]) -> int:
    """Create the partitions not yet in the catalog; fail on any error but AlreadyExists."""
    created = 0
    for start in range(0, len(inputs), GLUE_BATCH_CREATE_MAX):
        batch = inputs[start : start + GLUE_BATCH_CREATE_MAX]
        errors = glue.batch_create_partition(
            DatabaseName=DATABASE, TableName=table, PartitionInputList=batch
        ).get("Errors", [])
        real = [e for e in errors if e["ErrorDetail"]["ErrorCode"] != "AlreadyExistsException"]
        if real:
            first = real[0]
            raise CatalogError(
                f"Glue refused partition {first['PartitionValues']} of {DATABASE}.{table}: "
                f"{first['ErrorDetail']['ErrorCode']}: {first['ErrorDetail'].get('ErrorMessage', '')}"
                + (f" (and {len(real) - 1} more)" if len(real) > 1 else "")
            )
        created += len(batch) - len(errors)
    return created


def _partition_input(table: dict[str, Any], values: list[str], location: str) -> dict[str, Any]:
    """A partition that inherits the table's storage (columns, format, SerDe): only its place differs."""
    storage = {k: v for k, v in table["StorageDescriptor"].items() if k != "Location"}
    return {"Values": values, "StorageDescriptor": {**storage, "Location": location}}


def register_raw_partitions(chunks: list[dict[str, Any]], bucket: str, glue: Any) -> int:
    """Register the arrival-hour partitions the chunks read, and only those (no crawl).

    Values are the canonical integers of the typed partition columns; the location is the
    Firehose prefix. An hour whose folder is still empty is registered too: a file landing
    there later is read like any other (a partition is a location, not a listing).
    Returns how many were new.
    """
    table = glue.get_table(DatabaseName=DATABASE, Name=RAW_TABLE)["Table"]
    hours = arrival_hours(chunks)
    inputs = [
        _partition_input(
            table,
            [str(h.year), str(h.month), str(h.day), str(h.hour)],
            f"s3://{bucket}/{RAW_PREFIX}{h:%Y/%m/%d/%H}/",
        )
        for h in hours
    ]
    created = _batch_create(glue, RAW_TABLE, inputs)
    log.info("raw arrival hours %s..%s: %s partition(s), %s new", hours[0], hours[-1], len(hours), created)
    return created


def _target_prefix(partition: dict[str, str]) -> str:
    return TARGET_PREFIX + "/".join(f"{k}={v}" for k, v in partition.items()) + "/"


def register_target_partitions(chunk: dict[str, Any], bucket: str, glue: Any, s3: Any) -> int:
    """Register the chunk's event-hour partitions that hold files (the writer's job, no crawl).

    Athena's INSERT INTO registers what it writes; this makes the catalog right whatever
    wrote the files, at one S3 listing per event day. Returns how many were new.
    """
    table = glue.get_table(DatabaseName=DATABASE, Name=TARGET_TABLE)["Table"]
    partitions = target_partitions(chunk["chunk_start_epoch"], chunk["chunk_end_epoch"])
    with_files: set[str] = set()
    for day_prefix in sorted({_target_prefix(p).rsplit("hour=", 1)[0] for p in partitions}):
        for key in _keys(s3, bucket, day_prefix):
            with_files.add(key.rsplit("/", 1)[0] + "/")
    inputs = [
        _partition_input(table, list(p.values()), f"s3://{bucket}/{_target_prefix(p)}")
        for p in partitions
        if _target_prefix(p) in with_files
    ]
    return _batch_create(glue, TARGET_TABLE, inputs)


def new_raw_objects(chunks: list[dict[str, Any]], bucket: str, s3: Any) -> dict[str, bytes]:
    """One raw object of the first and one of the last arrival hour the run reads (the
    newest data): what ``raw_schema`` compares with the declared table. At most two
    listings and two reads, whatever the range."""
    hours = arrival_hours(chunks)
    found: dict[str, bytes] = {}
    for hour in dict.fromkeys((hours[0], hours[-1])):
        keys = sorted(_keys(s3, bucket, f"{RAW_PREFIX}{hour:%Y/%m/%d/%H}/"))
        if keys:
            found[f"s3://{bucket}/{keys[0]}"] = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    return found
