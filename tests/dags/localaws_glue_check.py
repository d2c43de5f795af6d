"""Test-only: the provider's GlueCrawlerOperator, deferrable and not, against the offline stack."""

from __future__ import annotations

from airflow.providers.amazon.aws.operators.glue_crawler import GlueCrawlerOperator
from airflow.sdk import dag

from pipelines.dag_defaults import DEFAULT_ARGS

CONFIG = {
    "Name": "check_crawler",
    "Role": "arn:aws:iam::123456789012:role/glue-crawler",
    "DatabaseName": "traffic",
    "Targets": {"S3Targets": [{"Path": "s3://pipelines-data-lake/check/raw/"}]},
}


@dag(schedule=None, default_args=DEFAULT_ARGS, tags=["test"], doc_md=__doc__)
def localaws_glue_check():
    crawl_deferrable = GlueCrawlerOperator(
        task_id="crawl_deferrable",
        config=CONFIG,
        deferrable=True,
        poll_interval=1,
        fail_on_already_running=False,
    )
    crawl_blocking = GlueCrawlerOperator(
        task_id="crawl_blocking",
        config={**CONFIG, "TablePrefix": "again_"},
        deferrable=False,
        poll_interval=1,
        fail_on_already_running=False,
    )
    crawl_deferrable >> crawl_blocking


localaws_glue_check()
