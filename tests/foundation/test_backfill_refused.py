"""Backfilling a snapshot pipeline is refused: market_orders and covid_daily load what their
source serves now, so a run for a past date would report success for a date it never saw.

Airflow refuses to create their backfills (``allowed_run_types``), and a backfill run that
exists anyway fails at its first task before any read, saying how to load the data.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipelines.backfill import backfill_refusal
from tests.conftest import load_dag, task_instances

SNAPSHOT_DAGS = {"market_orders": "plan_download", "covid_daily": "extract"}


@pytest.mark.parametrize("dag_id", sorted(SNAPSHOT_DAGS))
def test_a_backfill_run_is_refused_with_the_reason_and_how_to_load(dag_id):
    message = backfill_refusal(dag_id, "backfill", "2024-03-01T00:00:00+00:00")
    assert message.startswith(f"{dag_id} cannot be backfilled: ")
    assert "serve" in message and "only" in message and "current" in message and "2024-03-01" in message
    assert "trigger a run" in message and f"POST /api/v2/dags/{dag_id}/dagRuns" in message


@pytest.mark.parametrize("run_type", ["scheduled", "manual", "operator_triggered", "asset_triggered"])
def test_every_other_run_type_passes(run_type):
    assert backfill_refusal("market_orders", run_type, None) is None


def test_the_snapshot_dags_do_not_allow_backfill_and_the_others_are_unchanged(airflow_db):
    for dag_id in SNAPSHOT_DAGS:
        allowed = {str(getattr(t, "value", t)) for t in load_dag(dag_id).allowed_run_types}
        assert "backfill" not in allowed and {"scheduled", "manual"} <= allowed, dag_id
    for dag_id in ("traffic_repartition", "department_directory"):
        assert load_dag(dag_id).allowed_run_types is None, dag_id


@pytest.fixture(scope="module")
def serialized_dags(airflow_db):
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    from tests.conftest import REPO

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(REPO / "dags"), bundle_path=REPO / "dags", bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    return bag


def _dry_run(dag_id: str) -> list:
    from airflow.models.backfill import ReprocessBehavior, _do_dry_run
    from airflow.utils.session import create_session

    with create_session() as session:
        return list(
            _do_dry_run(
                dag_id=dag_id,
                from_date=datetime(2024, 3, 1, tzinfo=UTC),
                to_date=datetime(2024, 3, 3, tzinfo=UTC),
                reverse=False,
                reprocess_behavior=ReprocessBehavior.NONE,
                session=session,
            )
        )


def test_airflow_refuses_to_create_their_backfills_and_still_backfills_traffic(serialized_dags):
    from airflow.exceptions import DagRunTypeNotAllowed

    for dag_id in SNAPSHOT_DAGS:
        with pytest.raises(DagRunTypeNotAllowed, match="does not allow backfill runs"):
            _dry_run(dag_id)
    assert len(_dry_run("traffic_repartition")) == 3  # one run per day, as before


@pytest.mark.parametrize("dag_id", sorted(SNAPSHOT_DAGS))
def test_a_backfill_run_that_exists_anyway_fails_its_first_task_before_any_read_without_retry(
    dag_id, aws, mailbox, monkeypatch
):
    import airflow.models.dagrun as dagrun_module

    from pipelines.config import data_lake_bucket

    create = dagrun_module.get_or_create_dagrun

    def as_backfill(**kwargs):
        # what the scheduler hands a task of a backfill: the same run, run_type "backfill"
        run = create(**kwargs)
        run.run_type = "backfill"
        kwargs["session"].merge(run)
        kwargs["session"].commit()
        return run

    monkeypatch.setattr(dagrun_module, "get_or_create_dagrun", as_backfill)
    monkeypatch.setenv("AIRFLOW_VAR_ALERT_EMAILS", "oncall@example.com")
    # Any read would fail differently: no source answers here.
    monkeypatch.setenv("AIRFLOW_CONN_ESI_DEFAULT", '{"conn_type": "http", "host": "http://127.0.0.1:1"}')

    run = load_dag(dag_id).test(logical_date=datetime(2024, 3, 1, tzinfo=UTC), run_conf={})
    assert run.state == "failed"
    first = SNAPSHOT_DAGS[dag_id]
    states = {ti.task_id: (ti.state, ti.try_number) for ti in task_instances(run)}
    assert states.pop(first) == ("failed", 1)  # failed at once: retries configured, none used
    assert {state for state, _try in states.values()} == {"upstream_failed"}

    mails = [m for m in mailbox.wait_for(1) if first in m.subject]
    assert mails and f"{dag_id} cannot be backfilled" in mails[0].text
    assert "trigger a run" in mails[0].text

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    # nothing read or staged: the run wrote nothing to the data lake
    assert not S3Hook().list_keys(bucket_name=data_lake_bucket())
