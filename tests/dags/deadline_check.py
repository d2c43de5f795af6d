"""Test-only DAG (bundle ``test-dags``): one task, and a deadline alert as the pipelines declare."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from pipelines.dag_defaults import DEFAULT_ARGS
from pipelines.deadlines import late_run_alert


@dag(
    schedule=None,
    default_args={**DEFAULT_ARGS, "retries": 0},
    tags=["test"],
    deadline=late_run_alert("deadline_check", interval=timedelta(hours=1)),
    doc_md="Succeeds at once; its deadline is never reached.",
)
def deadline_check():
    @task
    def succeed() -> int:
        return 1

    succeed()


deadline_check()
