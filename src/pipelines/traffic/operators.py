"""The chunk writer: one task attempt replaces a chunk's event-hour partitions, whole.

Every attempt (first try or retry, after a lost worker, a timeout or an INSERT that
failed after writing part of its files) does, in this order:

1. stop any target write still running (a lost attempt's query would add rows later);
2. clear the chunk's event-hour partitions (files and catalog);
3. INSERT INTO through the provider's Athena operator, deferred while Athena works;
4. on success, register the partitions written; on failure, stop the query if it still
   runs and clear the partitions again, so a failed attempt leaves them empty, never
   partial.

So after any attempt the chunk's partitions hold exactly one copy of its rows (success)
or none (failure). Two attempts never overlap because the task runs in the one-slot pool
``traffic_chunk_writer`` (deferred tasks keep their slot), which serialises chunk
writers of every run: scheduled, manual and backfill runs are all scheduled task
instances competing for the same pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.athena import AthenaHook
from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.common.compat.sdk import TaskDeferred

from pipelines.traffic.lake import (
    WRITE_MARKER,
    clear_target_partitions,
    clients,
    register_target_partitions,
    stop_unfinished_writes,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

CHUNK_WRITER_POOL = "traffic_chunk_writer"


class WriteChunkOperator(AthenaOperator):
    """Replace one chunk's event-hour partitions of ``traffic.events_by_event_time``."""

    template_fields: Sequence[str] = (*AthenaOperator.template_fields, "bucket")

    def __init__(self, *, chunk: dict[str, Any], bucket: str, **kwargs: Any) -> None:
        # the query is rendered from the chunk at run time (the chunk is a mapped XCom value)
        super().__init__(query="-- rendered from the chunk at run time", **kwargs)
        self.chunk = chunk
        self.bucket = bucket

    def execute(self, context: Context) -> str | None:
        from pipelines.traffic.steps import render_insert_sql

        query = render_insert_sql(self.chunk)
        if WRITE_MARKER not in query:
            raise ValueError(
                f"insert_chunk.sql no longer contains {WRITE_MARKER!r}: leftover writes unfindable"
            )
        stopped = stop_unfinished_writes(self.hook.get_conn(), self.workgroup)
        if stopped:
            self.log.warning("stopped %s leftover target write(s): %s", len(stopped), ", ".join(stopped))
        clear_target_partitions(self.chunk, self.bucket, *clients(self.aws_conn_id))
        self.query = query
        try:
            query_execution_id = super().execute(context)  # deferrable: resumes in execute_complete
        except TaskDeferred:
            raise
        except Exception:
            self._leave_nothing_partial({"value": self.query_execution_id})
            raise
        return self._registered(query_execution_id)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        try:
            query_execution_id = super().execute_complete(context, event)
        except Exception:
            self._leave_nothing_partial(event)
            raise
        return self._registered(query_execution_id)

    def _registered(self, query_execution_id: str) -> str:
        registered = register_target_partitions(self.chunk, self.bucket, *clients(self.aws_conn_id))
        self.log.info("chunk %s..%s written; %s partition(s) newly registered",
                      self.chunk["chunk_start"], self.chunk["chunk_end"], registered)  # fmt: skip
        return query_execution_id

    def _leave_nothing_partial(self, event: dict[str, Any] | None) -> None:
        """A failed (or timed-out) INSERT may have written some files: remove them."""
        query_id = (event or {}).get("value")
        if query_id:
            state = self.hook.check_query_status(query_id)
            if state in AthenaHook.INTERMEDIATE_STATES:
                self.hook.stop_query(query_id)
                self.hook.poll_query_status(query_id, sleep_time=self.sleep_time)
        removed = clear_target_partitions(self.chunk, self.bucket, *clients(self.aws_conn_id))
        self.log.error("chunk %s..%s failed; its partitions were emptied (%s partial file(s) removed)",
                       self.chunk["chunk_start"], self.chunk["chunk_end"], removed)  # fmt: skip
