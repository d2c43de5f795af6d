"""
### covid_daily: NYT cases + Johns Hopkins recoveries, merged daily into DynamoDB

Operators' page (reads, writes, params with examples, failures, re-runs): `docs/pipelines/covid_daily.md`.

`extract` (fetch and validate both sources, inner-join on date, stage in S3)
-> `plan` (diff against the previous snapshot: inserts, updates, deletes)
-> `load` (batched writes to `covid_stats`, pk `CASES`, sk the date)
-> `replace_snapshot` (only after every write succeeded)
-> `notify_success` (SNS topic `covid-refresh`).

A failure anywhere e-mails `alert_emails` and publishes a failure message to the same
topic; invalid input fails at once (no retries), naming the file, row and value.
Variables `covid_cases_url` / `covid_recoveries_url`, when set, replace the params'
defaults (a mirror of the sources, or local copies offline); a URL given when
triggering always wins. A rerun over unchanged sources writes nothing. Params `cases_url` and
`recoveries_url` take http(s)://, s3:// or local paths.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, Param, dag, task

from pipelines.alerts import FailureEmailNotifier
from pipelines.config import data_lake_bucket
from pipelines.covid.notifications import CovidFailureSnsNotifier
from pipelines.dag_defaults import DEFAULT_ARGS

NYT_US_CSV = "https://raw.githubusercontent.com/nytimes/covid-19-data/master/us.csv"
JHU_COMBINED_CSV = (
    "https://raw.githubusercontent.com/datasets/covid-19/main/data/time-series-19-covid-combined.csv"
)
SOURCE_PATTERN = r"^((https?|s3|file)://\S+|[^:\s]\S*)$"

COVID_STATS = Asset(name="covid_stats", uri="dynamodb://covid_stats")


@dag(
    dag_id="covid_daily",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "on_failure_callback": [FailureEmailNotifier(), CovidFailureSnsNotifier()]},
    tags=["covid", "dynamodb", "sns"],
    doc_md=__doc__,
    params={
        "cases_url": Param(NYT_US_CSV, type="string", pattern=SOURCE_PATTERN, description="NYT us.csv"),
        "recoveries_url": Param(
            JHU_COMBINED_CSV, type="string", pattern=SOURCE_PATTERN, description="JHU combined time series"
        ),
    },
)
def covid_daily():
    @task
    def extract(params=None, run_id=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from pipelines.covid import steps  # pandas & co. load in the task, not at parse time

        cases_url = steps.source_url(params["cases_url"], NYT_US_CSV, "covid_cases_url")
        recoveries_url = steps.source_url(params["recoveries_url"], JHU_COMBINED_CSV, "covid_recoveries_url")
        try:
            return steps.extract(cases_url, recoveries_url, data_lake_bucket(), run_id)
        except steps.SourceValidationError as invalid:
            raise AirflowFailException(str(invalid)) from invalid  # bad input: retrying won't help

    @task
    def plan(extracted: dict, run_id=None) -> dict:
        from pipelines.covid import steps

        return steps.plan(extracted["merged_uri"], data_lake_bucket(), run_id)

    @task(outlets=[COVID_STATS])
    def load(planned: dict) -> dict:
        from pipelines.covid import steps

        return steps.load(planned["changes_uri"])

    @task
    def replace_snapshot(extracted: dict, loaded: dict) -> str:
        from pipelines.covid import steps

        return steps.replace_snapshot(extracted["merged_uri"], data_lake_bucket())

    @task
    def notify_success(extracted: dict, planned: dict, snapshot: str) -> None:
        from pipelines.covid import steps

        steps.publish(*steps.success_message(extracted, planned))

    extracted = extract()
    planned = plan(extracted)
    loaded = load(planned)
    snapshot = replace_snapshot(extracted, loaded)
    notify_success(extracted, planned, snapshot)


covid_daily()
