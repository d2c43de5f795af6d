"""
### market_orders: EVE Online market orders -> per-type aggregates in DynamoDB

Operators' page (reads, writes, params with examples, failures, re-runs): `docs/pipelines/market_orders.md`.

`plan_download` (ESI through connection `esi_default`: page 1 pins the snapshot, its
`Last-Modified`, and gives `X-Pages`; an empty page 1 or one without these headers fails
the run, nothing changed; a snapshot ESI replaces within `snapshot_margin_seconds`
(`Expires`) is waited out deferred, no worker held; the other pages are cut into shares of `pages_per_task`)
-> `download_pages`, mapped, one task per share (pages fetched concurrently, param
`concurrency`, with retries and ESI's error budget respected; every page lands in S3 as
gzip JSON lines, under its snapshot, as it arrives; every page must be of the pinned
snapshot: the sole share of a region restarts the download when ESI replaces it, a share
of a split region fails its attempt and its Airflow retry re-pins the new snapshot, waiting
out a snapshot about to be replaced deferred, as `plan_download` does)
-> `combine` (every page of one snapshot: the newest the shares hold, its missing pages
downloaded here after pinning the current snapshot, waited out deferred as above; retried,
re-pinning, if ESI replaces it again meanwhile)
-> `aggregate` (validate every order, aggregate per `type_id` with buy and sell apart,
streaming page by page)
-> `name_types` (ESI's name for each type the region's stored items do not name yet, one
`POST /universe/names/` per 1000 new types, none for known ones; names are stored on the
items, so the results API serves them without asking ESI)
-> `load` (before any write: an aggregate of a snapshot older than the one the region's
last load brought is refused, naming that run (a cleared `load` of an older run); the
deletions are planned and held to the shared removal guard: more than `max_removal_share`
(10%) of the region's stored types, and more than 10, fails the run unless
`allow_large_removal` (then logged, and named in the task's result); then batched writes
to `market_orders`, then the region's vanished types deleted, then the region's load mark).

Trigger with `{"region_id": 10000002, "concurrency": 16}` from the UI form or the REST
API (`{"allow_large_removal": true}` when a region really lost many types); an invalid
value is refused at trigger time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from pipelines.backfill import SNAPSHOT_RUN_TYPES
from pipelines.dag_defaults import SNAPSHOT_DEFAULT_ARGS
from pipelines.deadlines import late_run_alert
from pipelines.errors import fails_fast
from pipelines.market.operators import CombineOperator, DownloadPagesOperator, PlanDownloadOperator

SNAPSHOT_RETRY_DELAY = timedelta(seconds=5)


@dag(
    dag_id="market_orders",
    schedule="@hourly",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    # ESI serves only the current snapshot: no backfill (pipelines.backfill)
    allowed_run_types=SNAPSHOT_RUN_TYPES,
    default_args=SNAPSHOT_DEFAULT_ARGS,
    tags=["market", "esi", "dynamodb"],
    deadline=late_run_alert("market_orders"),  # pipelines.deadlines.RUN_DEADLINES
    doc_md=__doc__,
    params={
        "region_id": Param(
            10000002,
            type="integer",
            minimum=10000000,
            maximum=19999999,
            description="ESI region (The Forge: 10000002)",
        ),
        "concurrency": Param(
            16, type="integer", minimum=1, maximum=64, description="Pages in flight at once, per task"
        ),
        "pages_per_task": Param(
            200,
            type="integer",
            minimum=10,
            maximum=10000,
            description="Pages per download task: a larger region is shared by several workers",
        ),
        "snapshot_margin_seconds": Param(
            60,
            type="integer",
            minimum=0,
            maximum=290,
            description="Wait for ESI's next snapshot when the current one is replaced sooner (Expires)",
        ),
        "max_removal_share": Param(
            0.1,
            type="number",
            minimum=0,
            maximum=1,
            description="Largest share of a region's stored types one run may delete (10 types always may)",
        ),
        "allow_large_removal": Param(
            False,
            type="boolean",
            description="Override max_removal_share for this run (the market really lost that many "
            "types); logged in the run",
        ),
    },
)
def market_orders():
    # Waiting for ESI's next snapshot defers (triggerer), holding no worker slot meanwhile, in
    # each task that pins one (pipelines.market.operators); an unknown region, an empty or
    # header-less answer fails at once (no retries).
    plan_download = PlanDownloadOperator(task_id="plan_download")

    # A snapshot replaced mid-download is retried soon: ESI serves the next one for 5 minutes.
    # A malformed page fails at once; a SnapshotChangedError is retried, and the retry re-pins.
    download_pages = DownloadPagesOperator.partial(
        task_id="download_pages", max_active_tis_per_dagrun=8, retries=3, retry_delay=SNAPSHOT_RETRY_DELAY
    ).expand(share=plan_download.output)

    combine = CombineOperator(
        task_id="combine", shares=download_pages.output, retries=3, retry_delay=SNAPSHOT_RETRY_DELAY
    )

    @task
    @fails_fast
    def aggregate(downloaded: dict) -> dict:
        from pipelines.market.steps import aggregate_pages

        return aggregate_pages(downloaded)

    @task
    def name_types(aggregated: dict, params=None) -> dict:
        from pipelines.market.names import name_types

        return name_types(aggregated, int(params["concurrency"]))

    @task
    @fails_fast  # a refused removal or a stale aggregate: a retry would refuse again
    def load(aggregated: dict, params=None, run_id=None, dag_run=None) -> dict:
        from pipelines.config import data_lake_bucket
        from pipelines.market.steps import load

        return load(
            aggregated, data_lake_bucket(), run_id, dag_run.run_after.isoformat(),
            max_removal_share=float(params["max_removal_share"]),
            allow_large_removal=bool(params["allow_large_removal"]),
        )  # fmt: skip

    load(name_types(aggregate(combine.output)))


market_orders()
