"""What every DAG of the project shares: owner, retries with backoff, timeout, failure alert,
and the refusal of undeclared ``conf`` keys (and, for the snapshot pipelines, of backfill runs).

Use as ``@dag(..., default_args=DEFAULT_ARGS, doc_md=__doc__, tags=[...])``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pipelines.alerts import FailureEmailNotifier
from pipelines.conf_check import undeclared_conf_message

OWNER = "data-platform"


def refuse_undeclared_conf(context: Any) -> None:
    """``pre_execute`` of every task: fail the run, without retries, on a conf key no param declares.

    Runs before the task's ``execute``, so a root task fails before it reads or writes
    anything and everything downstream becomes upstream_failed.
    """
    dag_run = context["dag_run"]
    message = undeclared_conf_message(dag_run.dag_id, context["dag"].params.keys(), dag_run.conf)
    if message:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(message)


def refuse_backfill_and_undeclared_conf(context: Any) -> None:
    """``pre_execute`` of a snapshot pipeline's tasks: no backfill run (pipelines.backfill), no stray conf."""
    from pipelines.backfill import refuse_backfill

    refuse_backfill(context)
    refuse_undeclared_conf(context)


DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(hours=2),
    "on_failure_callback": [FailureEmailNotifier()],
    "pre_execute": refuse_undeclared_conf,
}

# market_orders and covid_daily: their source serves only its current state, so a backfill
# run is refused (with allowed_run_types=SNAPSHOT_RUN_TYPES on the DAG; see pipelines.backfill).
SNAPSHOT_DEFAULT_ARGS = {**DEFAULT_ARGS, "pre_execute": refuse_backfill_and_undeclared_conf}
