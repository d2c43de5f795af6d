"""One chunk write, safe beside other writers and after a lost attempt: leases, then write new, then retire old.

Chunks of different runs may cover the same event hours (a backfill beside a manual run,
overlapping manual runs); chunks of one run never do. Writers run in parallel (pool
``athena``), so every write takes a lease on each event hour it replaces first: one item
per hour in DynamoDB table ``traffic_write_leases``, taken with a conditional UpdateItem
(free, expired, or already ours), in ascending hour order; a writer that meets a held hour
gives back what it took and waits. Two writers with a common hour therefore never work at
the same time, and writers with disjoint hours never wait for each other (ARCHITECTURE.md,
"traffic chunk writes", says why a lease and not a catalog swap or a one-slot pool).

The write itself never empties a partition first:

1. (leases held) stop a target write of these hours left running by a lost attempt;
2. finish or undo what a lost attempt left (its state is on the lease items, see below);
3. list the hours' files (``old_keys``) and record them on the leases (phase ``writing``);
4. INSERT INTO: the new rows (and, with ``measuring_points``, every other stored row, read
   from the old files, which are still there);
5. on success: phase ``retiring`` (recorded before anything is deleted), delete the old
   files, register the partitions, release the leases;
   on failure: delete the files not in ``old_keys`` (a partial INSERT), release.

So readers see the old rows until the INSERT succeeded, a failed write changes nothing, and
a write lost at any point is completed (``retiring``) or undone (``writing``) by whoever
takes the hours next (its own retry takes them at once: the lease holder is the task
instance, whatever the try). What a lost attempt left is kept on the lease items, not in
the worker, because a killed worker keeps nothing.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.traffic.chunks import target_partitions
from pipelines.traffic.lake import (
    DATABASE,
    GLUE_BATCH_DELETE_MAX,
    LONGEST_ATHENA_QUERY,
    TARGET_TABLE,
    UNFINISHED,
    WRITE_MARKER,
    _keys,
    _target_prefix,
    register_target_partitions,
)

log = logging.getLogger(__name__)

LEASE_TABLE = "traffic_write_leases"
# A lease outlives the longest query a holder can be waiting for; a holder lost for good
# (a killed worker never retried) blocks its hours at most this long.
LEASE_DURATION = LONGEST_ATHENA_QUERY + timedelta(minutes=30)
# How long a writer waits for hours another writer holds before its attempt fails (and retries).
LEASE_WAIT = LEASE_DURATION
# The query header names the event hours it writes (insert_chunk.sql): "-- event hours A..B".
EVENT_HOURS = re.compile(r"^-- event hours (\d+)\.\.(\d+)", re.MULTILINE)


class LeaseLost(RuntimeError):
    """This writer's lease expired and another writer took the hours: nothing of ours is kept."""


class LeaseWaitTimeout(RuntimeError):
    """Another writer held some of the chunk's hours for longer than LEASE_WAIT."""


def event_hour_keys(chunk: dict[str, Any]) -> list[str]:
    """The chunk's event hours as lease keys YYYYMMDDHH, ascending (the order leases are taken in)."""
    return [
        "".join(p.values()) for p in target_partitions(chunk["chunk_start_epoch"], chunk["chunk_end_epoch"])
    ]


def written_range(query: str) -> tuple[int, int] | None:
    """The event hours [start, end) a target write's query writes, from its header."""
    match = EVENT_HOURS.search(query)
    return (int(match.group(1)), int(match.group(2))) if match else None


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def leftover_files_to_delete(leftover: dict[str, Any], present: list[str]) -> list[str]:
    """What a lost attempt's state on one hour's lease says to delete (pure).

    ``writing``: its INSERT may have written some files: everything not in its old_keys goes.
    ``retiring``: its INSERT succeeded: its old_keys go (the new files stay).
    """
    phase = leftover.get("phase")
    old = set(leftover.get("old_keys") or [])
    if phase == "writing":
        return [k for k in present if k not in old]
    if phase == "retiring":
        return [k for k in present if k in old]
    return []


def _attribute(value: Any) -> Any:
    if "S" in value:
        return value["S"]
    if "N" in value:
        return int(value["N"])
    if "L" in value:
        return [_attribute(v) for v in value["L"]]
    return None


def _plain(item: dict[str, Any] | None) -> dict[str, Any]:
    return {name: _attribute(value) for name, value in (item or {}).items()}


class ChunkWrite:
    """The steps around one chunk's INSERT; the caller runs the INSERT between prepare and commit."""

    def __init__(
        self,
        chunk: dict[str, Any],
        bucket: str,
        holder: str,
        *,
        glue: Any,
        s3: Any,
        dynamodb: Any,
        athena: Any,
        workgroup: str = "primary",
        clock: Callable[[], float] = time.time,
        poll_seconds: float = 2.0,
    ) -> None:
        self.chunk, self.bucket, self.holder = chunk, bucket, holder
        self.glue, self.s3, self.dynamodb, self.athena = glue, s3, dynamodb, athena
        self.workgroup, self.clock, self.poll_seconds = workgroup, clock, poll_seconds
        self.hours = event_hour_keys(chunk)
        self.range = (int(chunk["chunk_start_epoch"]), int(chunk["chunk_end_epoch"]))

    # -- leases -----------------------------------------------------------------------------

    def _expiry(self) -> int:
        return int(self.clock() + LEASE_DURATION.total_seconds())

    def _take(self, hour: str) -> dict[str, Any] | None:
        """Take one hour's lease; answer what was on it before, or None if another writer holds it."""
        try:
            answer = self.dynamodb.update_item(
                TableName=LEASE_TABLE,
                Key={"event_hour": {"S": hour}},
                UpdateExpression="SET holder = :me, expires_at = :expires",
                ConditionExpression="attribute_not_exists(holder) OR holder = :me OR expires_at < :now",
                ExpressionAttributeValues={
                    ":me": {"S": self.holder},
                    ":expires": {"N": str(self._expiry())},
                    ":now": {"N": str(int(self.clock()))},
                },
                ReturnValues="ALL_OLD",
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return None
        return _plain(answer.get("Attributes"))

    def _give_back(self, hours: list[str]) -> None:
        """Contention: hand back hours taken in this try, keeping any lost attempt's state on them."""
        for hour in hours:
            try:
                self.dynamodb.update_item(
                    TableName=LEASE_TABLE,
                    Key={"event_hour": {"S": hour}},
                    UpdateExpression="REMOVE holder, expires_at",
                    ConditionExpression="holder = :me",
                    ExpressionAttributeValues={":me": {"S": self.holder}},
                )
            except self.dynamodb.exceptions.ConditionalCheckFailedException:
                pass

    def acquire(self) -> dict[str, dict[str, Any]]:
        """Take every hour's lease (waiting while another writer holds one); answer each hour's prior state."""
        deadline = self.clock() + LEASE_WAIT.total_seconds()
        while True:
            taken: dict[str, dict[str, Any]] = {}
            for hour in self.hours:
                before = self._take(hour)
                if before is None:
                    break
                taken[hour] = before
            else:
                return taken
            self._give_back(list(taken))
            if self.clock() > deadline:
                raise LeaseWaitTimeout(
                    f"event hours {self.hours[0]}..{self.hours[-1]}: another writer held some for over {LEASE_WAIT}"
                )
            log.info("event hours %s..%s: another writer holds some; waiting", self.hours[0], self.hours[-1])
            time.sleep(self.poll_seconds * (0.5 + random.random()))  # noqa: S311 - jitter, not crypto

    def _record(self, phase: str, old_keys: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
        """Set the phase on every lease (still ours), renewing it; answer each hour's old_keys."""
        recorded: dict[str, list[str]] = {}
        for hour in self.hours:
            values = {":me": {"S": self.holder}, ":phase": {"S": phase}, ":expires": {"N": str(self._expiry())},
                      ":now": {"N": str(int(self.clock()))}}  # fmt: skip
            expression = "SET phase = :phase, expires_at = :expires"
            if old_keys is not None:
                expression += ", old_keys = :old"
                values[":old"] = {"L": [{"S": k} for k in old_keys[hour]]}
            try:
                answer = self.dynamodb.update_item(
                    TableName=LEASE_TABLE,
                    Key={"event_hour": {"S": hour}},
                    UpdateExpression=expression,
                    ConditionExpression="holder = :me AND expires_at >= :now",
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
            except self.dynamodb.exceptions.ConditionalCheckFailedException as error:
                raise LeaseLost(
                    f"event hour {hour}: the lease of {self.holder} expired or was taken"
                ) from error
            recorded[hour] = _plain(answer["Attributes"]).get("old_keys") or []
        return recorded

    def release(self) -> None:
        for hour in self.hours:
            try:
                self.dynamodb.delete_item(
                    TableName=LEASE_TABLE,
                    Key={"event_hour": {"S": hour}},
                    ConditionExpression="holder = :me",
                    ExpressionAttributeValues={":me": {"S": self.holder}},
                )
            except self.dynamodb.exceptions.ConditionalCheckFailedException:
                log.warning("event hour %s: lease no longer ours at release", hour)

    # -- files -----------------------------------------------------------------------------

    def _hour_prefix(self, hour: str) -> str:
        return _target_prefix({"year": hour[:4], "month": hour[4:6], "day": hour[6:8], "hour": hour[8:]})

    def _files(self) -> dict[str, list[str]]:
        return {hour: _keys(self.s3, self.bucket, self._hour_prefix(hour)) for hour in self.hours}

    def delete(self, keys: list[str]) -> int:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = keys[start : start + 1000]
            failed = self.s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            ).get("Errors", [])
            if failed:
                raise RuntimeError(
                    f"S3 refused to delete s3://{self.bucket}/{failed[0]['Key']}: {failed[0]['Code']}"
                )
        return len(keys)

    def stop_leftover_writes(self) -> list[str]:
        """Stop every running target write of any of these hours, and wait until each has ended.

        With the leases ours, such a write belongs to a lost attempt (ours, or a writer whose
        lease expired): left alone, it would add its rows after ours. Writes of other hours
        are other writers' and are left alone.
        """
        since = datetime.now(UTC) - LONGEST_ATHENA_QUERY
        running: list[str] = []
        token = None
        while True:
            page = self.athena.list_query_executions(
                WorkGroup=self.workgroup, **({"NextToken": token} if token else {})
            )
            ids = page.get("QueryExecutionIds", [])
            if not ids:
                break
            for start in range(0, len(ids), 50):  # BatchGetQueryExecution takes at most 50 ids
                executions = self.athena.batch_get_query_execution(QueryExecutionIds=ids[start : start + 50])[
                    "QueryExecutions"
                ]
                for execution in executions:
                    query = execution["Query"]
                    hours = written_range(query)
                    if (
                        execution["Status"]["State"] in UNFINISHED
                        and WRITE_MARKER in query
                        and (hours is None or overlaps(hours, self.range))
                    ):
                        running.append(execution["QueryExecutionId"])
                oldest = min(e["Status"]["SubmissionDateTime"] for e in executions)
            token = page.get("NextToken")
            if not token or oldest < since:  # newest first: older ones have ended long ago
                break
        for query_id in running:
            log.warning(
                "stopping query %s: a write of these event hours left running by a lost attempt", query_id
            )
            self.athena.stop_query_execution(QueryExecutionId=query_id)
        for query_id in running:
            while (
                self.athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"][
                    "State"
                ]
                in UNFINISHED
            ):
                time.sleep(1.0)
        return running

    # -- the protocol ------------------------------------------------------------------------

    def prepare(self) -> dict[str, int]:
        """Leases, leftovers, then the old files recorded: the INSERT may run after this."""
        leftovers = self.acquire()
        stopped = self.stop_leftover_writes()
        present = self._files()
        recovered = 0
        for hour, state in leftovers.items():
            recovered += self.delete(leftover_files_to_delete(state, present[hour]))
        if recovered:
            log.warning("event hours %s..%s: %s file(s) of a lost attempt removed", self.hours[0], self.hours[-1],
                        recovered)  # fmt: skip
            present = self._files()
        self._record("writing", present)
        return {"stopped": len(stopped), "recovered": recovered, "old_files": sum(map(len, present.values()))}

    def commit(self) -> dict[str, int]:
        """The INSERT succeeded: retire the old files, make the catalog match, release."""
        old = self._record("retiring")
        retired = self.delete([k for hour in self.hours for k in old[hour]])
        registered = register_target_partitions(self.chunk, self.bucket, self.glue, self.s3)
        emptied = self._deregister_empty_hours()
        self.release()
        return {"retired": retired, "registered": registered, "emptied": emptied}

    def abort(self) -> int:
        """The INSERT failed or was stopped: remove what it wrote, keep the old files, release."""
        old = self._record("writing")  # still ours: the old files are what to keep
        present = self._files()
        removed = self.delete([k for hour in self.hours for k in present[hour] if k not in set(old[hour])])
        self.release()
        return removed

    def _deregister_empty_hours(self) -> int:
        """Hours left without files (every reading now defect) leave the catalog too."""
        empty = [
            {"Values": [hour[:4], hour[4:6], hour[6:8], hour[8:]]}
            for hour, keys in self._files().items()
            if not keys
        ]
        for start in range(0, len(empty), GLUE_BATCH_DELETE_MAX):
            try:
                self.glue.batch_delete_partition(
                    DatabaseName=DATABASE,
                    TableName=TARGET_TABLE,
                    PartitionsToDelete=empty[start : start + GLUE_BATCH_DELETE_MAX],
                )  # absent partitions come back as Errors: nothing to delete is fine
            except self.glue.exceptions.EntityNotFoundException:
                break
        return len(empty)
