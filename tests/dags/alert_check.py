"""Test-only DAGs (bundle ``test-dags``, configured by tests/conftest.py), never deployed."""

from __future__ import annotations

from airflow.sdk import dag, task

from pipelines.dag_defaults import DEFAULT_ARGS


@dag(schedule=None, default_args={**DEFAULT_ARGS, "retries": 0}, tags=["test"], doc_md="Fails on purpose.")
def alert_check():
    @task
    def explode():
        raise ValueError("source file s3://bucket/x.csv row 7: bad date '2020-13-01'")

    explode()


alert_check()
