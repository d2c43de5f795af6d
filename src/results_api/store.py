"""The results API's only contact with DynamoDB: GetItem and paginated Query, never Scan.

Reads the tables the pipelines write, under their public names and key schemas
(``pipelines.tables``). The client comes from the ``aws_results`` connection (the read-only
role ``results-api-reader``) through the Amazon provider's hook
(``pipelines.aws.dynamodb.dynamodb_client``). It is built once,
on the first request (never at import time: the plugin is imported by every Airflow
component), and shared: boto3 clients are thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from pipelines.aws.dynamodb import deserialize_item, paginated_items
from pipelines.tables import (
    COVID_PARTITION,
    COVID_TABLE,
    DEPARTMENT_INDEX,
    DEPARTMENT_LISTING,
    DEPARTMENT_LISTING_ATTRIBUTE,
    DIRECTORY_TABLE,
    MARKET_TABLE,
)
from results_api.domain import CumulativeDay

# One partition of the department index holds every name: fine for a directory
# (thousands of keys-only entries), and a prefix search is one Query in name order.

_serialize = TypeSerializer().serialize


class ResultsStore:
    """Typed reads over the three result tables."""

    def __init__(self, client: Any, page_size: int | None = None) -> None:
        self.client = client
        self.page_size = page_size  # items per Query page; None: DynamoDB's 1 MB pages

    def department(self, department: str) -> dict[str, Any] | None:
        response = self.client.get_item(TableName=DIRECTORY_TABLE, Key={"department": _serialize(department)})
        item = response.get("Item")
        return deserialize_item(item) if item else None

    def departments(self, prefix: str, limit: int, after: str | None) -> tuple[list[str], str | None]:
        """Up to ``limit`` department names starting with ``prefix``, in order, after the name
        ``after``; and the name to continue after (None when nothing follows)."""
        condition = f"{DEPARTMENT_LISTING_ATTRIBUTE} = :listing"
        values = {":listing": _serialize(DEPARTMENT_LISTING)}
        if prefix:
            condition += " AND begins_with(department, :prefix)"
            values[":prefix"] = _serialize(prefix)
        request: dict[str, Any] = {
            "TableName": DIRECTORY_TABLE,
            "IndexName": DEPARTMENT_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "Limit": limit + 1,  # one more than asked: tells whether another page follows
        }
        if after:
            # the index's key (and the table's) of the last name served
            request["ExclusiveStartKey"] = {
                DEPARTMENT_LISTING_ATTRIBUTE: _serialize(DEPARTMENT_LISTING),
                "department": _serialize(after),
            }
        response = self.client.query(**request)
        names = [deserialize_item(item)["department"] for item in response.get("Items", [])]
        return names[:limit], names[limit - 1] if len(names) > limit else None

    def covid_days(
        self, first: date | None, last: date | None
    ) -> tuple[CumulativeDay | None, list[CumulativeDay]]:
        """The stored days in [first, last] and, when ``first`` is given, the day just before it.

        Sort keys are ISO dates, so string order is date order and a range is a key condition.
        """
        condition, values = "pk = :pk", {":pk": _serialize(COVID_PARTITION)}
        if first is not None and last is not None:
            condition += " AND sk BETWEEN :first AND :last"
        elif first is not None:
            condition += " AND sk >= :first"
        elif last is not None:
            condition += " AND sk <= :last"
        if first is not None:
            values[":first"] = _serialize(first.isoformat())
        if last is not None:
            values[":last"] = _serialize(last.isoformat())
        days = [_cumulative_day(item) for item in self._query(COVID_TABLE, condition, values)]
        baseline = None
        if first is not None:
            # The one stored day before the range, newest first, one item: what the first
            # day's change is measured against.
            response = self.client.query(
                TableName=COVID_TABLE,
                KeyConditionExpression="pk = :pk AND sk < :first",
                ExpressionAttributeValues={":pk": values[":pk"], ":first": values[":first"]},
                ScanIndexForward=False,
                Limit=1,
            )
            if response.get("Items"):
                baseline = _cumulative_day(deserialize_item(response["Items"][0]))
        return baseline, days

    def market_types(self, region_id: int) -> list[dict[str, Any]]:
        return list(self._query(MARKET_TABLE, "region_id = :region", {":region": _serialize(str(region_id))}))

    def market_type(self, region_id: int, type_id: int) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=MARKET_TABLE,
            Key={"region_id": _serialize(str(region_id)), "type_id": _serialize(str(type_id))},
        )
        item = response.get("Item")
        return deserialize_item(item) if item else None

    def _query(self, table: str, condition: str, values: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item matching a key condition, following LastEvaluatedKey page by page."""
        return paginated_items(
            self.client,
            "query",
            TableName=table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            PaginationConfig={"PageSize": self.page_size} if self.page_size else {},
        )


def _cumulative_day(item: dict[str, Any]) -> CumulativeDay:
    return CumulativeDay(
        day=date.fromisoformat(item["sk"]),
        cases=int(item["cases"]),
        deaths=int(item["deaths"]),
        recoveries=int(item["recoveries"]),
    )


_store: ResultsStore | None = None
_store_lock = threading.Lock()


def default_store() -> ResultsStore:
    """The process-wide store on connection aws_results (the read-only role; FastAPI dependency)."""
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                from pipelines.aws.dynamodb import dynamodb_client
                from pipelines.config import RESULTS_AWS_CONN_ID

                _store = ResultsStore(dynamodb_client(RESULTS_AWS_CONN_ID))
    return _store


def reset_default_store() -> None:
    """Forget the shared client (tests that repoint the connections at a new stack)."""
    global _store
    with _store_lock:
        _store = None
