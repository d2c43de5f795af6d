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
from collections.abc import Callable, Iterable, Iterator
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


def batch_write(
    client: Any,
    table: str,
    requests: Iterable[dict[str, Any]],
    on_accepted: Callable[[int], None] | None = None,
) -> int:
    """Send PutRequest/DeleteRequest entries in batches of 25; answer how many were accepted.

    ``on_accepted(n)`` is told after every answer how many more writes DynamoDB took, so a
    caller that fails half-way can still say truthfully what was applied.
    """
    accepted = 0
    for batch in _batches(requests):
        pending = {table: batch}
        for attempt in range(MAX_UNPROCESSED_ATTEMPTS):
            response = client.batch_write_item(RequestItems=pending)
            unprocessed = response.get("UnprocessedItems") or {}
            taken = len(pending[table]) - len(unprocessed.get(table, []))
            accepted += taken
            if on_accepted is not None and taken:
                on_accepted(taken)
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


def put_items(
    client: Any,
    table: str,
    items: Iterable[dict[str, Any]],
    on_accepted: Callable[[int], None] | None = None,
) -> int:
    """Batched PutItem of plain Python dicts; answer how many were written."""
    return batch_write(
        client, table, ({"PutRequest": {"Item": serialize_item(i)}} for i in items), on_accepted
    )


def put_wire_items(
    client: Any,
    table: str,
    items: Iterable[dict[str, Any]],
    on_accepted: Callable[[int], None] | None = None,
) -> int:
    """Batched PutItem of items already in DynamoDB's wire form ({"S": ...}, {"N": ...})."""
    return batch_write(client, table, ({"PutRequest": {"Item": item}} for item in items), on_accepted)


def delete_keys(
    client: Any,
    table: str,
    keys: Iterable[dict[str, Any]],
    on_accepted: Callable[[int], None] | None = None,
) -> int:
    """Batched DeleteItem by key dicts; answer how many were deleted."""
    return batch_write(
        client, table, ({"DeleteRequest": {"Key": serialize_item(k)}} for k in keys), on_accepted
    )


def paginated_items(client: Any, operation: str, **request: Any) -> Iterator[dict[str, Any]]:
    """Every item a Query or Scan (``operation``) answers, page by page, as plain Python values.

    The one loop over DynamoDB's pages, for the pipelines and the results API alike: botocore's
    paginator hands each page's LastEvaluatedKey on as the next ExclusiveStartKey, so no page
    is skipped however the 1 MB (or ``PaginationConfig`` PageSize) limit cuts the answer.
    This module stays light (boto3's type codec and botocore's Config, Airflow only inside
    ``dynamodb_client``) so the results API can import it on the api-server.
    """
    for page in client.get_paginator(operation).paginate(**request):
        for item in page.get("Items", []):
            yield deserialize_item(item)


def _query_partition(
    client: Any,
    table: str,
    partition_key: str,
    partition_value: str,
    more_names: dict[str, str] | None = None,
    **options: Any,
) -> Iterator[dict[str, Any]]:
    """Every item of one partition (``#pk = :pk``), page by page: one paginated Query, never Scan."""
    return paginated_items(
        client,
        "query",
        TableName=table,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": partition_key, **(more_names or {})},
        ExpressionAttributeValues={":pk": _serializer.serialize(partition_value)},
        **options,
    )


def query_items(
    client: Any, table: str, partition_key: str, partition_value: str
) -> Iterator[dict[str, Any]]:
    """Every whole item of one partition, read consistently (the diff baseline must be current)."""
    return _query_partition(client, table, partition_key, partition_value, ConsistentRead=True)


def query_keys(
    client: Any, table: str, partition_key: str, partition_value: str, sort_key: str
) -> Iterator[dict[str, Any]]:
    """Every key (partition and sort attribute only) in one partition."""
    return _query_partition(
        client,
        table,
        partition_key,
        partition_value,
        more_names={"#sk": sort_key},
        ProjectionExpression="#pk, #sk",
    )


def scan_keys(client: Any, table: str, key_names: list[str]) -> Iterator[dict[str, Any]]:
    """Every key of a table (for tables whose whole content is one data set)."""
    names = {f"#k{i}": name for i, name in enumerate(key_names)}
    return paginated_items(
        client, "scan", TableName=table, ProjectionExpression=", ".join(names), ExpressionAttributeNames=names
    )
