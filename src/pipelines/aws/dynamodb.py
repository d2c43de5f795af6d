"""DynamoDB writes and key listings that survive throttling and lose nothing.

BatchWriteItem takes at most 25 requests and may hand some back as UnprocessedItems;
those are resent with exponential backoff and jitter until accepted (bounded attempts,
then a clear error). Throttling errors are retried by botocore's standard retry mode.
Values go in as DynamoDB numbers (Decimal), never floats or strings.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config

from pipelines.config import pipeline_aws_conn_id

log = logging.getLogger(__name__)

BATCH_SIZE = 25
MAX_UNPROCESSED_ATTEMPTS = 12
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 10})

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class IncompleteWriteError(RuntimeError):
    """DynamoDB kept refusing some writes after every retry."""


def dynamodb_client(aws_conn_id: str | None = None) -> Any:
    """A low-level DynamoDB client from the Airflow connection (the running pipeline's by default)."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    conn_id = aws_conn_id or pipeline_aws_conn_id()
    return AwsBaseHook(aws_conn_id=conn_id, client_type="dynamodb", config=RETRY_CONFIG).conn


def to_dynamodb_value(value: Any) -> Any:
    """Python value -> what TypeSerializer accepts: floats become exact Decimals."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: to_dynamodb_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamodb_value(v) for v in value]
    return value


def serialize_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(to_dynamodb_value(value)) for name, value in item.items()}


def deserialize_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def _batches(requests: Iterable[dict[str, Any]], size: int = BATCH_SIZE) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for request in requests:
        batch.append(request)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _backoff(attempt: int, base: float = 0.05, cap: float = 5.0) -> float:
    """Full-jitter exponential backoff (AWS architecture blog's recommendation)."""
    return random.uniform(0, min(cap, base * 2**attempt))


def batch_write(client: Any, table: str, requests: Iterable[dict[str, Any]]) -> int:
    """Send PutRequest/DeleteRequest entries in batches of 25; answer how many were accepted."""
    accepted = 0
    for batch in _batches(requests):
        pending = {table: batch}
        for attempt in range(MAX_UNPROCESSED_ATTEMPTS):
            response = client.batch_write_item(RequestItems=pending)
            unprocessed = response.get("UnprocessedItems") or {}
            accepted += len(pending[table]) - len(unprocessed.get(table, []))
            if not unprocessed.get(table):
                break
            pending = {table: unprocessed[table]}
            time.sleep(_backoff(attempt))
        else:
            raise IncompleteWriteError(
                f"DynamoDB table {table}: {len(pending[table])} write(s) still unprocessed after "
                f"{MAX_UNPROCESSED_ATTEMPTS} attempts"
            )
    return accepted


def put_items(client: Any, table: str, items: Iterable[dict[str, Any]]) -> int:
    """Batched PutItem of plain Python dicts; answer how many were written."""
    return batch_write(client, table, ({"PutRequest": {"Item": serialize_item(i)}} for i in items))


def delete_keys(client: Any, table: str, keys: Iterable[dict[str, Any]]) -> int:
    """Batched DeleteItem by key dicts; answer how many were deleted."""
    return batch_write(client, table, ({"DeleteRequest": {"Key": serialize_item(k)}} for k in keys))


def query_keys(
    client: Any, table: str, partition_key: str, partition_value: str, sort_key: str
) -> Iterator[dict[str, Any]]:
    """Every key in one partition, page by page (Query, never Scan)."""
    paginator = client.get_paginator("query")
    pages = paginator.paginate(
        TableName=table,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": partition_key, "#sk": sort_key},
        ExpressionAttributeValues={":pk": _serializer.serialize(partition_value)},
        ProjectionExpression="#pk, #sk",
    )
    for page in pages:
        for item in page.get("Items", []):
            yield deserialize_item(item)


def scan_keys(client: Any, table: str, key_names: list[str]) -> Iterator[dict[str, Any]]:
    """Every key of a table (for tables whose whole content is one data set)."""
    paginator = client.get_paginator("scan")
    names = {f"#k{i}": name for i, name in enumerate(key_names)}
    for page in paginator.paginate(
        TableName=table, ProjectionExpression=", ".join(names), ExpressionAttributeNames=names
    ):
        for item in page.get("Items", []):
            yield deserialize_item(item)
