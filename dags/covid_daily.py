"""
### covid_daily: NYT cases + Johns Hopkins recoveries, merged daily into DynamoDB

Operators' page (reads, writes, params with examples, failures, re-runs): `docs/pipelines/covid_daily.md`.

`extract` (fetch both sources from allowed places, validate, inner-join on date, stage in S3)
-> `plan` (diff against the table itself, read with one paginated Query: inserts,
updates, deletes; a suspicious shrink is refused)
-> `load` (batched writes to `covid_stats`, pk `CASES`, sk the date)
-> `success_notice` (the counts, the topic's ARN) -> `notify_success` (the Amazon provider's
`SnsPublishOperator`, topic `covid-refresh`).

A failure anywhere e-mails `alert_emails` and publishes a failure message to the same
topic (the provider's `SnsNotifier`, subclassed to state the failure's facts) saying what was written before it ("nothing written", or "12 of 40 planned writes
applied; re-run to converge"). Invalid input fails at once (no retries), naming the file,
row and column, never quoting the file's contents.

Sources: `https://` under a host-and-path prefix of Variable `covid_source_prefixes`
(default the NYT and JHU repositories on `raw.githubusercontent.com`; redirects only
within a prefix), `s3://<data lake
bucket>/covid/...`, and local paths only where `PIPELINES_ALLOW_LOCAL_SOURCES=1` (offline
and dev). At most Variable `covid_source_max_bytes` bytes (default 50 MB) per file.
Variables `covid_cases_url` / `covid_recoveries_url`, when set, replace the params'
defaults; a URL given when triggering always wins.

Removal guard (the same in every pipeline, `pipelines.guard`): a plan that deletes, or
lowers by more than the share, more than `max_removal_share` (5%) of the table's rows
(3 rows are always allowed), or lowers the highest cumulative cases, deaths or recoveries
by more than that share, fails `plan` with the counts and writes nothing; trigger with
`allow_large_removal: true` when the sources really shrank (the override is logged and
named in the success message). A plan is refused by `load` when another run has loaded
the table since it was computed (a cleared `load` of an older run). A rerun over
unchanged sources writes nothing.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator
from airflow.sdk import Asset, Param, dag, task

from pipelines.alerts import FailureEmailNotifier
from pipelines.backfill import SNAPSHOT_RUN_TYPES
from pipelines.config import COVID_AWS_CONN_ID as AWS_CONN_ID
from pipelines.config import data_lake_bucket
from pipelines.covid.notifications import CovidFailureSnsNotifier
from pipelines.dag_defaults import SNAPSHOT_DEFAULT_ARGS
from pipelines.deadlines import late_run_alert
from pipelines.errors import fails_fast

NYT_US_CSV = "https://raw.githubusercontent.com/nytimes/covid-19-data/master/us.csv"
JHU_COMBINED_CSV = (
    "https://raw.githubusercontent.com/datasets/covid-19/main/data/time-series-19-covid-combined.csv"
)
# The shape only; where a URL may point is checked at run time (pipelines.sources).
SOURCE_PATTERN = r"^((https|s3|file)://\S+|/\S*)$"

COVID_STATS = Asset(name="covid_stats", uri="dynamodb://covid_stats")


@dag(
    dag_id="covid_daily",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    # the sources serve only their current files: no backfill (pipelines.backfill)
    allowed_run_types=SNAPSHOT_RUN_TYPES,
    default_args={
        **SNAPSHOT_DEFAULT_ARGS,
        "on_failure_callback": [FailureEmailNotifier(), CovidFailureSnsNotifier()],
    },
    tags=["covid", "dynamodb", "sns"],
    deadline=late_run_alert("covid_daily"),  # pipelines.deadlines.RUN_DEADLINES
    doc_md=__doc__,
    params={
        "cases_url": Param(NYT_US_CSV, type="string", pattern=SOURCE_PATTERN, description="NYT us.csv"),
        "recoveries_url": Param(
            JHU_COMBINED_CSV, type="string", pattern=SOURCE_PATTERN, description="JHU combined time series"
        ),
        "allow_large_removal": Param(
            False,
            type="boolean",
            description="Apply a plan even if it deletes or lowers more than max_removal_share of "
            "covid_stats (only when the sources really shrank); logged in the run",
        ),
        "max_removal_share": Param(
            0.05,
            type="number",
            minimum=0,
            maximum=1,
            description="Largest share of covid_stats' rows one run may delete or lower (3 rows always may)",
        ),
    },
)
def covid_daily():
    @task
    @fails_fast  # a bad or refused source fails at once: retrying won't help
    def extract(params=None, run_id=None) -> dict:
        from pipelines.covid import steps  # pandas & co. load in the task, not at parse time

        cases_url = steps.source_url(params["cases_url"], NYT_US_CSV, "covid_cases_url")
        recoveries_url = steps.source_url(params["recoveries_url"], JHU_COMBINED_CSV, "covid_recoveries_url")
        return steps.extract(cases_url, recoveries_url, data_lake_bucket(), run_id)

    @task
    @fails_fast  # a refused removal: the same sources give the same plan
    def plan(extracted: dict, params=None, run_id=None) -> dict:
        from pipelines.covid import steps

        return steps.plan(
            extracted["merged_uri"], data_lake_bucket(), run_id,
            allow_large_removal=bool(params["allow_large_removal"]),
            max_removal_share=float(params["max_removal_share"]),
        )  # fmt: skip

    @task(outlets=[COVID_STATS])
    @fails_fast  # a stale plan stays stale; a failed write is retried
    def load(planned: dict, run_id=None, dag_run=None) -> dict:
        from pipelines.covid import steps

        return steps.load(planned["changes_uri"], run_id, dag_run.run_after.isoformat())

    @task
    def success_notice(extracted: dict, planned: dict, loaded: dict) -> dict:
        from pipelines.covid import steps

        return steps.notice(*steps.success_message(extracted, planned))

    extracted = extract()
    planned = plan(extracted)
    notice = success_notice(extracted, planned, load(planned))
    # The provider's operator publishes {"default": message} (MessageStructure json): e-mail
    # subscribers receive the plain text.
    SnsPublishOperator(
        task_id="notify_success",
        aws_conn_id=AWS_CONN_ID,
        target_arn=notice["topic_arn"],
        subject=notice["subject"],
        message=notice["message"],
    )


covid_daily()
