"""Manual runs created as Airflow 3's REST API and CLI create them: ``"logical_date": null``.

Such a run has no data interval, only ``run_after``; each DAG must accept it with its
default params, and traffic_repartition processes the last complete UTC day before
``run_after`` (what its docs promise for a manual run).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.conftest import load_dag, task_instances

DAG_IDS = ["covid_daily", "department_directory", "market_orders", "traffic_repartition"]


@pytest.fixture(scope="module")
def serialized_dags(airflow_db):
    """The project's DAGs in the metadata DB, as the dag-processor leaves them."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    from tests.conftest import REPO

    DagBundlesManager().sync_bundles_to_db()  # a fresh metadata DB knows no bundle yet
    bag = DagBag(dag_folder=str(REPO / "dags"), bundle_path=REPO / "dags", bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    return bag


def _trigger(url: str, token: str, dag_id: str) -> dict:
    import requests

    response = requests.post(
        f"{url}/api/v2/dags/{dag_id}/dagRuns",
        json={"logical_date": None},  # what the README's curl example and `airflow dags trigger` send
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _delete_run(dag_id: str, run_id: str) -> None:
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).delete()


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_the_rest_api_creates_a_run_without_logical_date_with_default_params(
    dag_id, serialized_dags, running_api_server, api_token
):
    run = _trigger(running_api_server, api_token, dag_id)
    assert run["logical_date"] is None
    assert run["data_interval_start"] is None and run["data_interval_end"] is None
    assert run["run_after"]
    assert run["run_type"] == "manual"
    _delete_run(dag_id, run["dag_run_id"])


def test_a_traffic_run_without_logical_date_plans_the_last_complete_day_before_run_after(
    serialized_dags, running_api_server, api_token
):
    run = _trigger(running_api_server, api_token, "traffic_repartition")
    run_after = datetime.fromisoformat(run["run_after"].replace("Z", "+00:00")).astimezone(UTC)
    # The REST run and dag.test() would share the run id manual__<run_after>: run it again here.
    _delete_run("traffic_repartition", run["dag_run_id"])

    # Only the plan is under test: the run holds plan_chunks alone (the rest reads AWS).
    dag = load_dag("traffic_repartition").partial_subset("plan_chunks", include_downstream=False)
    for task in dag.tasks:
        task.retries = 0
    finished = dag.test(logical_date=None, run_after=run_after)
    assert finished.logical_date is None and finished.data_interval_start is None
    assert {ti.task_id: ti.state for ti in task_instances(finished)} == {"plan_chunks": "success"}

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        stored = (
            session.query(XComModel.value)
            .filter_by(
                dag_id="traffic_repartition",
                run_id=finished.run_id,
                task_id="plan_chunks",
                key="return_value",
            )
            .scalar()
        )
    planned = json.loads(stored) if isinstance(stored, str | bytes) else stored
    day_before = date(run_after.year, run_after.month, run_after.day) - timedelta(days=1)
    assert planned["start"] == f"{day_before.isoformat()}T00:00:00+00:00"
    assert planned["end"] == f"{(day_before + timedelta(days=1)).isoformat()}T00:00:00+00:00"
    assert planned["event_days"] and len(planned["chunks"]) == 1


@pytest.mark.parametrize(
    ("run_after", "day"),
    [
        ("2024-03-01T00:00:00+00:00", "2024-02-29"),  # at midnight: the day just completed
        ("2024-03-01T23:59:59+00:00", "2024-02-29"),
        ("2024-03-01T01:30:00+02:00", "2024-02-28"),  # 23:30 UTC on Feb 29: Feb 29 is not complete
        ("2025-01-01T06:00:00+00:00", "2024-12-31"),
    ],
)
def test_without_params_or_data_interval_the_range_is_the_last_complete_utc_day(run_after, day):
    from pipelines.traffic.chunks import resolve_range

    start, end = resolve_range(None, None, None, None, datetime.fromisoformat(run_after))
    assert (start.isoformat(), end.isoformat()) == (f"{day}T00:00:00+00:00", _next_day(day))


def _next_day(day: str) -> str:
    return f"{date.fromisoformat(day) + timedelta(days=1)}T00:00:00+00:00"
