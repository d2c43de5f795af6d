"""Test-only DAG: a successful `load` task, whose end the results API reports as "data as of"."""

from __future__ import annotations

from airflow.sdk import dag, task


@dag(schedule=None, tags=["test"], doc_md="A `load` task that succeeds.")
def freshness_check():
    @task
    def load() -> int:
        return 1

    load()


freshness_check()
