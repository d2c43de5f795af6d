"""market_orders' ``plan_download``: pins ESI's snapshot, deferring (no worker held) while
waiting for the next one.

ESI replaces its market snapshot every 5 minutes and says when (``Expires``). A download
started on a snapshot about to be replaced would see its pages change underneath, so when
fewer than ``snapshot_margin_seconds`` are left, the task waits for the next snapshot. It
waits *deferred*: it hands airflow's ``DateTimeTrigger`` the moment the snapshot expires
and leaves its worker slot; the triggerer resumes it then, and it pins again (at most
``MAX_PIN_WAITS`` waits, then the snapshot is taken as it is, as before).

An operator, not ``@task``: resuming a deferred task calls a method of its operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from pipelines.config import DATA_LAKE_BUCKET_TEMPLATE
from pipelines.errors import fails_fast


class PlanDownloadOperator(BaseOperator):
    """Pins the region's current snapshot and cuts its pages into shares (the list is the XCom)."""

    template_fields: Sequence[str] = ("region_id", "concurrency", "pages_per_task", "margin_seconds", "bucket")

    def __init__(
        self,
        *,
        region_id: int | str = "{{ params.region_id }}",
        concurrency: int | str = "{{ params.concurrency }}",
        pages_per_task: int | str = "{{ params.pages_per_task }}",
        margin_seconds: float | str = "{{ params.snapshot_margin_seconds }}",
        bucket: str = DATA_LAKE_BUCKET_TEMPLATE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.region_id = region_id
        self.concurrency = concurrency
        self.pages_per_task = pages_per_task
        self.margin_seconds = margin_seconds
        self.bucket = bucket

    def execute(self, context: Any, waits: int = 0) -> list[dict]:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        from pipelines.market.esi import MAX_PIN_WAITS, SnapshotExpiresSoon
        from pipelines.market.steps import plan_download

        try:
            # an unknown region, an empty or header-less answer: BadInput, failed without retries
            # after MAX_PIN_WAITS waits the snapshot is taken as it is (margin 0), never slept on
            margin = float(self.margin_seconds) if waits < MAX_PIN_WAITS else 0.0
            return fails_fast(plan_download)(
                int(self.region_id), int(self.concurrency), int(self.pages_per_task), str(self.bucket),
                margin, wait=False,
            )  # fmt: skip
        except SnapshotExpiresSoon as soon:
            self.log.info("%s; deferred until %s (wait %s of %s)", soon, soon.next_at.isoformat(),
                          waits + 1, MAX_PIN_WAITS)  # fmt: skip
            self.defer(
                trigger=DateTimeTrigger(moment=soon.next_at),
                method_name="resume",
                kwargs={"waits": waits + 1},
            )

    def resume(self, context: Any, event: Any = None, waits: int = 0) -> list[dict]:
        """After the trigger fired: pin again (the next snapshot, normally)."""
        return self.execute(context, waits=waits)
