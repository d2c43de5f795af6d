"""Snapshot pipelines refuse backfills: their source serves only its current state.

market_orders (ESI's current market) and covid_daily (the sources' current files) load
whatever their source serves *now*. A backfill run for a past date would reload today's
data and report success for a date it never saw, so such a DAG:

* declares ``allowed_run_types`` without ``backfill`` (``SNAPSHOT_RUN_TYPES``): Airflow's
  UI offers no backfill for it and its API and CLI refuse to create one;
* and, should a backfill run exist anyway (created before this rule, or by hand in the
  metadata DB), fails it at its first task before anything is read, without retries,
  saying why and how to load the data (``refuse_backfill``, a ``pre_execute``).

traffic_repartition (each run reads its own event days) and department_directory (asset
triggered, no schedule to backfill) are unaffected.
"""

from __future__ import annotations

from typing import Any

BACKFILL = "backfill"
# Every run type but backfill: the schedule, the UI/REST/CLI trigger, TriggerDagRunOperator
# and an asset materialisation all load the source's current state, which is what they ask for.
SNAPSHOT_RUN_TYPES = ("scheduled", "manual", "operator_triggered", "asset_materialization")

CURRENT_STATE_ONLY = {
    "market_orders": "ESI serves only the current market snapshot (replaced every 5 minutes)",
    "covid_daily": "the COVID sources serve only their current files (the whole history as of today, not as of a past date)",
}


def backfill_refusal(dag_id: str, run_type: object, logical_date: object) -> str | None:
    """The message that fails a backfill run of a snapshot pipeline; None for any other run."""
    if str(getattr(run_type, "value", run_type)) != BACKFILL:
        return None
    source = CURRENT_STATE_ONLY.get(dag_id, "its source serves only its current state")
    return (
        f"{dag_id} cannot be backfilled: {source}, so a run for {logical_date} would load today's "
        f"data and report it as that date's. Nothing was read or written. To load the current "
        f"state, trigger a run (UI: Trigger; REST: POST /api/v2/dags/{dag_id}/dagRuns with "
        f'{{"logical_date": null}}; CLI: airflow dags trigger {dag_id}); see the README, Backfilling.'
    )


def refuse_backfill(context: Any) -> None:
    """``pre_execute``: fail a backfill run's task at once, before its ``execute`` reads anything."""
    dag_run = context["dag_run"]
    message = backfill_refusal(dag_run.dag_id, dag_run.run_type, dag_run.logical_date)
    if message:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(message)
