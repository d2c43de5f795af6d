"""DynamoDB writes as AWS answers them: the 25-request limit, throttling, UnprocessedItems, failures.

moto accepts any number of requests and always processes all of them; code that never
meets UnprocessedItems, throttling or a write failing half-way through a load in tests
loses data in production. PutItem and DeleteItem pass through to moto unless the fault
``dynamodb_fail_after_writes`` fails them.
"""

from __future__ import annotations

import json
from typing import Any

from localaws.errors import AwsError
from localaws.faults import DYNAMODB_FAILURES
from localaws.server import Extension, JsonHandler, is_internal

MAX_BATCH_REQUESTS = 25


class DynamoDBExtension(Extension):
    def handlers(self) -> dict[str, JsonHandler]:
        return {
            "DynamoDB_20120810.BatchWriteItem": self.batch_write_item,
            "DynamoDB_20120810.PutItem": self.single_write,
            "DynamoDB_20120810.DeleteItem": self.single_write,
        }

    def _fail_injected_write(self, request: dict[str, Any]) -> None:
        """Raise the injected error when this write is past ``dynamodb_fail_after_writes``."""
        if is_internal(request["__environ__"]):
            return
        code = self.stack.faults.dynamodb_write_failure()
        if code is not None:
            status, message = DYNAMODB_FAILURES[code]
            raise AwsError(f"com.amazonaws.dynamodb.v20120810#{code}", message, status)

    def _forward(self, request: dict[str, Any], body: bytes) -> dict[str, Any]:
        status, answer = self.stack.app.call_moto(request["__environ__"], body)  # type: ignore[union-attr]
        if status != 200:
            raise AwsError(answer.get("__type", "InternalFailure"), answer.get("message", ""), status)
        return answer

    def single_write(self, request: dict[str, Any]) -> dict[str, Any]:
        """PutItem / DeleteItem: moto's answer, unless the injected failure hits it."""
        self._fail_injected_write(request)
        return self._forward(request, request["__raw_body__"])

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
        self._fail_injected_write(request)
        processed, unprocessed = request_items, {}
        if faults.draw("dynamodb_unprocessed_rate"):
            processed, unprocessed = _split(request_items, keep_fraction=faults.fraction())
        result: dict[str, Any] = {"UnprocessedItems": unprocessed}
        if processed:
            forwarded = {k: v for k, v in request.items() if not k.startswith("__")}
            forwarded["RequestItems"] = processed
            body = self._forward(request, json.dumps(forwarded).encode())
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
