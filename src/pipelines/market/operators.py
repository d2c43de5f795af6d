"""market_orders' tasks that pin ESI's snapshot: each waits for the next one *deferred*, no
worker held.

ESI replaces its market snapshot every 5 minutes and says when (``Expires``). A download
started on a snapshot about to be replaced would see its pages change underneath, so when
fewer than ``snapshot_margin_seconds`` are left, a task that pins waits for the next
snapshot. Three tasks pin: ``plan_download`` (every run), ``download_pages`` (a retry
after ESI replaced the snapshot re-pins the one it serves now) and ``combine`` (it pins
the current snapshot to complete its missing pages). None of them sleeps: the step raises
SnapshotExpiresSoon, and the task hands airflow's ``DateTimeTrigger`` the moment the
snapshot expires and leaves its worker slot; the triggerer resumes it then, and it runs
its step again from the start, pinning again (at most ``MAX_PIN_WAITS`` waits, then the
snapshot is taken as it is, as before).

Why a deferral and not a failed attempt whose retry delay is the wait: a deferral resumes
the same try at the snapshot's ``Expires``, while a retry would use up the retries kept
for a snapshot that changes mid-download (a task's ``retry_delay`` is fixed, not the
wait), and the data is the same either way: nothing of the doomed snapshot is used. The
step re-runs from the start and pins afresh, and every page it downloads must carry the
``Last-Modified`` of that pin (``EsiClient``), so a download stays on one snapshot; page 1
of the doomed snapshot, already written under that snapshot's own S3 prefix, is never
read (``combine`` reads the newest snapshot its shares pinned).

Operators, not ``@task``: resuming a deferred task calls a method of its operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from pipelines.config import DATA_LAKE_BUCKET_TEMPLATE
from pipelines.errors import fails_fast


class _PinsTheSnapshot(BaseOperator):
    """Runs ``pinning(context, margin, resumed)``; a snapshot that expires within the margin
    defers the task until it does, then runs it again (``resume``)."""

    margin_seconds: float | str

    def pinning(self, context: Any, margin: float, resumed: bool) -> Any:
        raise NotImplementedError

    def execute(self, context: Any, waits: int = 0) -> Any:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        from pipelines.market.esi import MAX_PIN_WAITS, SnapshotExpiresSoon

        try:
            # after MAX_PIN_WAITS waits the snapshot is taken as it is (margin 0), never slept on
            margin = float(self.margin_seconds) if waits < MAX_PIN_WAITS else 0.0
            return self.pinning(context, margin, resumed=waits > 0)
        except SnapshotExpiresSoon as soon:
            self.log.info("%s; deferred until %s (wait %s of %s)", soon, soon.next_at.isoformat(),
                          waits + 1, MAX_PIN_WAITS)  # fmt: skip
            self.defer(
                trigger=DateTimeTrigger(moment=soon.next_at),
                method_name="resume",
                kwargs={"waits": waits + 1},
            )

    def resume(self, context: Any, event: Any = None, waits: int = 0) -> Any:
        """After the trigger fired: the step again, from the start (pinning the next snapshot, normally)."""
        return self.execute(context, waits=waits)


class PlanDownloadOperator(_PinsTheSnapshot):
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

    def pinning(self, context: Any, margin: float, resumed: bool) -> list[dict]:
        from pipelines.market.steps import plan_download

        # an unknown region, an empty or header-less answer: BadInput, failed without retries
        return fails_fast(plan_download)(
            int(self.region_id), int(self.concurrency), int(self.pages_per_task), str(self.bucket), margin
        )


class DownloadPagesOperator(_PinsTheSnapshot):
    """One share of the pages (mapped over ``plan_download``'s shares); the XCom says which
    snapshot's pages it holds. A retry (try 2 on) re-pins: ESI replaced the planned snapshot."""

    template_fields: Sequence[str] = ("concurrency", "margin_seconds", "bucket")

    def __init__(
        self,
        *,
        share: dict[str, Any],
        concurrency: int | str = "{{ params.concurrency }}",
        margin_seconds: float | str = "{{ params.snapshot_margin_seconds }}",
        bucket: str = DATA_LAKE_BUCKET_TEMPLATE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.share = share
        self.concurrency = concurrency
        self.margin_seconds = margin_seconds
        self.bucket = bucket

    def pinning(self, context: Any, margin: float, resumed: bool) -> dict:
        from pipelines.market.steps import download_share

        # a malformed page fails at once; a SnapshotChangedError is retried. Only a re-pin
        # can defer, so a resumed task re-pins whatever its try number says.
        repin = resumed or context["ti"].try_number > 1
        return fails_fast(download_share)(
            dict(self.share), int(self.concurrency), str(self.bucket), repin=repin, margin=margin
        )


class CombineOperator(_PinsTheSnapshot):
    """Every page of one snapshot: the newest the shares hold, completed (the XCom)."""

    template_fields: Sequence[str] = ("shares", "concurrency", "margin_seconds", "bucket")

    def __init__(
        self,
        *,
        shares: Any,
        concurrency: int | str = "{{ params.concurrency }}",
        margin_seconds: float | str = "{{ params.snapshot_margin_seconds }}",
        bucket: str = DATA_LAKE_BUCKET_TEMPLATE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.shares = shares  # download_pages' results (an XComArg until rendered)
        self.concurrency = concurrency
        self.margin_seconds = margin_seconds
        self.bucket = bucket

    def pinning(self, context: Any, margin: float, resumed: bool) -> dict:
        from pipelines.market.steps import combine_shares

        return fails_fast(combine_shares)(list(self.shares), int(self.concurrency), str(self.bucket), margin)
