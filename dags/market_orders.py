"""
### market_orders: EVE Online market orders -> per-type aggregates in DynamoDB

`download` (ESI through connection `esi_default`: page 1 gives `X-Pages` and the
snapshot's `Last-Modified`, the other pages are fetched concurrently (param
`concurrency`) with retries and ESI's error budget respected; every page lands in S3 as
gzip JSON lines as it arrives; a snapshot change mid-download restarts it)
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
            16, type="integer", minimum=1, maximum=64, description="Pages in flight at once"
        ),
    },
)
def market_orders():
    @task
    def download(params=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from pipelines.config import data_lake_bucket
        from pipelines.market.domain import PageValidationError
        from pipelines.market.esi import UnknownRegionError
        from pipelines.market.steps import download

        try:
            return download(int(params["region_id"]), int(params["concurrency"]), data_lake_bucket())
        except (UnknownRegionError, PageValidationError) as invalid:
            raise AirflowFailException(str(invalid)) from invalid  # retrying won't fix it

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

    load(aggregate(download()))


market_orders()
