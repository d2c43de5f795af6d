"""
### market_orders: EVE Online market orders -> per-type aggregates in DynamoDB

Operators' page (reads, writes, params with examples, failures, re-runs): `docs/pipelines/market_orders.md`.

`plan_download` (ESI through connection `esi_default`: page 1 gives `X-Pages` and the
snapshot's `Last-Modified`; the other pages are cut into shares of `pages_per_task`)
-> `download_pages`, mapped, one task per share (pages fetched concurrently, param
`concurrency`, with retries and ESI's error budget respected; every page lands in S3 as
gzip JSON lines as it arrives; every page must be of the pinned snapshot: the sole share
of a region restarts the download when ESI replaces it, a share of a split region fails
clearly and the next run takes the new snapshot)
-> `combine` (every share holds the same snapshot)
-> `aggregate` (validate every order, aggregate per `type_id` with buy and sell apart,
streaming page by page)
-> `load` (batched writes to `market_orders`, then the region's vanished types deleted).

Trigger with `{"region_id": 10000002, "concurrency": 16}` from the UI form or the REST
API; an invalid value is refused at trigger time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from pipelines.dag_defaults import DEFAULT_ARGS


@dag(
    dag_id="market_orders",
    schedule="@hourly",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    default_args=DEFAULT_ARGS,
    tags=["market", "esi", "dynamodb"],
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
    },
)
def market_orders():
    @task
    def plan_download(params=None) -> list[dict]:
        from airflow.sdk.exceptions import AirflowFailException

        from pipelines.config import data_lake_bucket
        from pipelines.market.domain import PageValidationError
        from pipelines.market.esi import UnknownRegionError
        from pipelines.market.steps import plan_download

        try:
            return plan_download(
                int(params["region_id"]), int(params["concurrency"]), int(params["pages_per_task"]),
                data_lake_bucket(),
            )  # fmt: skip
        except (UnknownRegionError, PageValidationError) as invalid:
            raise AirflowFailException(str(invalid)) from invalid  # retrying won't fix it

    @task(max_active_tis_per_dagrun=8)
    def download_pages(share: dict, params=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from pipelines.config import data_lake_bucket
        from pipelines.market.domain import PageValidationError
        from pipelines.market.esi import SnapshotChangedError
        from pipelines.market.steps import download_share

        try:
            return download_share(share, int(params["concurrency"]), data_lake_bucket())
        except (SnapshotChangedError, PageValidationError) as invalid:
            raise AirflowFailException(str(invalid)) from invalid

    @task
    def combine(shares: list[dict]) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from pipelines.market.esi import SnapshotChangedError
        from pipelines.market.steps import combine_shares

        try:
            return combine_shares(list(shares))
        except SnapshotChangedError as changed:
            raise AirflowFailException(str(changed)) from changed

    @task
    def aggregate(downloaded: dict) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from pipelines.market.domain import PageValidationError
        from pipelines.market.steps import aggregate_pages

        try:
            return aggregate_pages(downloaded)
        except PageValidationError as invalid:
            raise AirflowFailException(str(invalid)) from invalid

    @task
    def load(aggregated: dict) -> dict:
        from pipelines.market.steps import load

        return load(aggregated)

    load(aggregate(combine(download_pages.expand(share=plan_download()))))


market_orders()
