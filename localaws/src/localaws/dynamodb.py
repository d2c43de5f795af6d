"""DynamoDB BatchWriteItem as AWS answers it: the 25-request limit, throttling, UnprocessedItems.

moto accepts any number of requests and always processes all of them; code that never
meets UnprocessedItems or throttling in tests loses data in production.
"""

from __future__ import annotations

import json
from typing import Any

from localaws.errors import AwsError
from localaws.server import Extension, JsonHandler

MAX_BATCH_REQUESTS = 25


class DynamoDBExtension(Extension):
    def handlers(self) -> dict[str, JsonHandler]:
        return {"DynamoDB_20120810.BatchWriteItem": self.batch_write_item}

    def batch_write_item(self, request: dict[str, Any]) -> dict[str, Any]:
        request_items: dict[str, list[dict[str, Any]]] = request.get("RequestItems") or {}
        total = sum(len(writes) for writes in request_items.values())
        if total == 0:
            raise AwsError(
                "ValidationException",
                "1 validation error detected: Value at 'requestItems' failed to satisfy "
                "constraint: Member must have length greater than or equal to 1",
            )
        if total > MAX_BATCH_REQUESTS:
            raise AwsError(
                "ValidationException",
                "1 validation error detected: Value at 'requestItems' failed to satisfy "
                f"constraint: Map value must satisfy constraint: [Member must have length "
                f"less than or equal to {MAX_BATCH_REQUESTS}, Member must have length greater "
                "than or equal to 1]",
            )
        faults = self.stack.faults
        if faults.draw("dynamodb_throttle_rate"):
            raise AwsError(
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded. "
                "Consider increasing your provisioning level with the UpdateTable API.",
            )
        processed, unprocessed = request_items, {}
        if faults.draw("dynamodb_unprocessed_rate"):
            processed, unprocessed = _split(request_items, keep_fraction=faults.fraction())
        result: dict[str, Any] = {"UnprocessedItems": unprocessed}
        if processed:
            forwarded = {k: v for k, v in request.items() if not k.startswith("__")}
            forwarded["RequestItems"] = processed
            status, body = self.stack.app.call_moto(  # type: ignore[union-attr]
                request["__environ__"], json.dumps(forwarded).encode()
            )
            if status != 200:
                raise AwsError(body.get("__type", "InternalFailure"), body.get("message", ""), status)
            for table, writes in (body.get("UnprocessedItems") or {}).items():
                result["UnprocessedItems"].setdefault(table, []).extend(writes)
            if "ConsumedCapacity" in body:
                result["ConsumedCapacity"] = body["ConsumedCapacity"]
        return result


def _split(
    request_items: dict[str, list[dict[str, Any]]], keep_fraction: float
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """Keep the first ``keep_fraction`` of the writes; the rest come back unprocessed (at least one)."""
    flat = [(table, write) for table, writes in request_items.items() for write in writes]
    keep = min(int(len(flat) * keep_fraction), len(flat) - 1)
    processed: dict[str, list[dict[str, Any]]] = {}
    unprocessed: dict[str, list[dict[str, Any]]] = {}
    for index, (table, write) in enumerate(flat):
        (processed if index < keep else unprocessed).setdefault(table, []).append(write)
    return processed, unprocessed
