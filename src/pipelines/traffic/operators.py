"""traffic_repartition's operators: the chunk writer and the crawler run.

The chunk writer: one task attempt replaces a chunk's event-hour partitions, whole.

Every attempt (first try or retry, after a lost worker, a timeout or an INSERT that
failed after writing part of its files) runs ``writes.ChunkWrite``'s protocol around the
provider's Athena operator: leases on the chunk's event hours (writers of overlapping
hours take turns, others run at once in pool ``athena``), leftovers of a lost attempt
stopped and completed or undone, the old files recorded, INSERT INTO (deferred while
Athena works), then the old files retired (success) or the new ones removed (failure).
So after any attempt the chunk's partitions hold exactly one copy of its rows: the new
ones (success) or the old ones (failure); never none, never both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.athena import AthenaHook
from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.amazon.aws.operators.glue_crawler import GlueCrawlerRunOperator
from airflow.providers.amazon.aws.triggers.glue_crawler import GlueCrawlerCompleteTrigger
from airflow.providers.common.compat.sdk import TaskDeferred
from botocore.exceptions import ClientError

from pipelines.traffic.lake import WRITE_MARKER, clients
from pipelines.traffic.writes import ChunkWrite

if TYPE_CHECKING:
    from airflow.sdk import Context

# Athena's concurrent queries per account are a quota shared by every DAG: the deployment's
# pool of Athena queries (infra/airflow_pools.json; a deferred INSERT keeps its slot).
CHUNK_WRITER_POOL = "athena"


class WriteChunkOperator(AthenaOperator):
    """Replace one chunk's event-hour partitions of ``traffic.events_by_event_time``."""

    template_fields: Sequence[str] = (*AthenaOperator.template_fields, "bucket")

    def __init__(self, *, chunk: dict[str, Any], bucket: str, **kwargs: Any) -> None:
        # the query is rendered from the chunk at run time (the chunk is a mapped XCom value)
        super().__init__(query="-- rendered from the chunk at run time", **kwargs)
        self.chunk = chunk
        self.bucket = bucket

    def _write(self, context: Context) -> ChunkWrite:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        ti = context["ti"]
        # the task instance, whatever its try: a retry takes over its own lost attempt's leases
        holder = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}"
        glue, s3 = clients(self.aws_conn_id)
        dynamodb = AwsBaseHook(aws_conn_id=self.aws_conn_id, client_type="dynamodb").get_conn()
        return ChunkWrite(self.chunk, self.bucket, holder, glue=glue, s3=s3, dynamodb=dynamodb,
                          athena=self.hook.get_conn(), workgroup=self.workgroup)  # fmt: skip

    def execute(self, context: Context) -> str | None:
        from pipelines.traffic.steps import render_insert_sql

        query = render_insert_sql(self.chunk)  # refuses a query Athena would, before any change
        if WRITE_MARKER not in query:
            raise ValueError(
                f"insert_chunk.sql no longer contains {WRITE_MARKER!r}: leftover writes unfindable"
            )
        write = self._write(context)
        prepared = write.prepare()
        self.log.info(
            "chunk %s..%s: leases taken, %s", self.chunk["chunk_start"], self.chunk["chunk_end"], prepared
        )
        self.query = query
        try:
            query_execution_id = super().execute(context)  # deferrable: resumes in execute_complete
        except TaskDeferred:
            raise
        except Exception:
            self._undo(write, {"value": self.query_execution_id})
            raise
        return self._committed(write, query_execution_id)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        write = self._write(context)
        try:
            query_execution_id = super().execute_complete(context, event)
        except Exception:
            self._undo(write, event)
            raise
        return self._committed(write, query_execution_id)

    def _committed(self, write: ChunkWrite, query_execution_id: str) -> str:
        done = write.commit()
        self.log.info("chunk %s..%s written: %s", self.chunk["chunk_start"], self.chunk["chunk_end"], done)
        return query_execution_id

    def _undo(self, write: ChunkWrite, event: dict[str, Any] | None) -> None:
        """A failed (or timed-out) INSERT may have written some files: remove them, keep the old ones."""
        query_id = (event or {}).get("value")
        if query_id:
            state = self.hook.check_query_status(query_id)
            if state in AthenaHook.INTERMEDIATE_STATES:
                self.hook.stop_query(query_id)
                self.hook.poll_query_status(query_id, sleep_time=self.sleep_time)
        removed = write.abort()
        self.log.error("chunk %s..%s failed; its partitions keep their earlier rows (%s partial file(s) removed)",
                       self.chunk["chunk_start"], self.chunk["chunk_end"], removed)  # fmt: skip


class CrawlArrivedDataOperator(GlueCrawlerRunOperator):
    """The provider's crawler run (deferrable), made safe for overlapping runs and backfills.

    ``GlueCrawlerRunOperator`` either fails on ``CrawlerRunningException`` or, with
    ``fail_on_already_running=False``, waits for the crawl already running and stops there.
    Neither is enough here: a crawl that another run started before this run's data had
    landed (``data_landed_by``, the run's ``ready_at``) may have missed this run's new folders,
    and an incremental crawler would then never add them. So a crawl already running is
    waited for (deferred, the provider's trigger), and if it started before this run's data
    landed, or did not succeed, the crawler is started again; this ends, because any crawl
    started after ``data_landed_by`` (in the past once the run's sensor has passed) covers
    the run's data. A crawl this task started itself fails the task if it fails.

    ``data_landed_by`` None: the data is what upstream tasks wrote, landed when this task
    starts (``recrawl_target`` after the chunk writes). For an S3 event mode crawler the
    same rule holds: a crawl that started before the writes may have taken the queue
    before their events arrived, so it is followed by one of this task's own.
    """

    template_fields: Sequence[str] = (*GlueCrawlerRunOperator.template_fields, "data_landed_by")

    def __init__(self, *, data_landed_by: str | None = None, **kwargs: Any) -> None:
        super().__init__(deferrable=True, **kwargs)
        self.data_landed_by = data_landed_by

    def _trigger(self) -> GlueCrawlerCompleteTrigger:
        return GlueCrawlerCompleteTrigger(
            crawler_name=self.crawler_name, waiter_delay=self.poll_interval, aws_conn_id=self.aws_conn_id,
            region_name=self.region_name, verify=self.verify, botocore_config=self.botocore_config,
        )  # fmt: skip

    def execute(self, context: Context) -> str:
        return self._crawl(self.data_landed_by or datetime.now(UTC).isoformat())

    def _crawl(self, landed: str) -> str:
        try:
            self.hook.start_crawler(self.crawler_name)
        except ClientError as error:
            if error.response["Error"]["Code"] != "CrawlerRunningException":
                raise
            self.log.warning(
                "crawler %s is already running (another run or a backfill): waiting for it", self.crawler_name
            )
            self.defer(trigger=self._trigger(), method_name="after_other_crawl", kwargs={"landed": landed})
        self.log.info("crawler %s started", self.crawler_name)
        self.defer(trigger=self._trigger(), method_name="execute_complete")
        return self.crawler_name  # not reached: defer raises

    def after_other_crawl(
        self, context: Context, event: dict[str, Any] | None = None, landed: str | None = None
    ) -> str:
        landed = landed or self.data_landed_by
        last = self.hook.get_crawler(self.crawler_name).get("LastCrawl") or {}
        started, status = last.get("StartTime"), last.get("Status")
        landed_at = datetime.fromisoformat(landed)
        if status == "SUCCEEDED" and started is not None and started >= landed_at:
            self.log.info("the crawl of %s that started at %s, after this run's data landed (%s), covers it",
                          self.crawler_name, started, landed_at)  # fmt: skip
            return self.crawler_name
        self.log.warning(
            "the crawl of %s that was running started at %s (%s), before this run's data landed (%s): "
            "crawling again",
            self.crawler_name, started, status, landed_at,
        )  # fmt: skip
        return self._crawl(landed)
