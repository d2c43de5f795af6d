"""One task that does nothing: what benchmarks/bench_components.py times from queued to success."""

from __future__ import annotations

from airflow.sdk import dag, task


@dag(schedule=None, catchup=False, tags=["benchmark"])
def trivial_task():
    @task
    def noop() -> None:
        return None

    noop()


trivial_task()
