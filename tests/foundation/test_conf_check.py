"""Undeclared trigger ``conf`` keys are refused: the rule, and every DAG at run time.

The trigger-time half: a running api-server (plugins loaded) answers 400 naming the key.
"""

from __future__ import annotations

import html

import pytest

from pipelines.conf_check import undeclared_conf_keys, undeclared_conf_message
from tests.conftest import load_dag, run_dag, task_states

DAG_IDS = ["covid_daily", "department_directory", "market_orders", "traffic_repartition"]


def test_declared_keys_and_an_empty_conf_pass():
    assert undeclared_conf_message("d", ["region_id", "concurrency"], {"region_id": 1}) is None
    assert undeclared_conf_message("d", ["region_id"], {}) is None
    assert undeclared_conf_message("d", ["region_id"], None) is None


def test_an_undeclared_key_is_named_with_the_closest_param():
    message = undeclared_conf_message("market_orders", ["concurrency", "region_id"], {"regionid": 10000030})
    assert message == (
        "DAG market_orders does not declare conf key(s) 'regionid' (did you mean 'region_id'?); "
        "its params are: concurrency, region_id"
    )


def test_every_unknown_key_is_named_and_keys_are_case_sensitive():
    assert undeclared_conf_keys(["start", "end"], {"Start": 1, "end": 2, "zzz": 3}) == ["Start", "zzz"]
    message = undeclared_conf_message("d", [], {"x": 1})
    assert "'x'" in message and "its params are: none" in message


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_each_dag_fails_at_its_first_task_naming_the_key_before_any_io(
    dag_id, airflow_db, aws, mailbox, monkeypatch
):
    monkeypatch.setenv("AIRFLOW_VAR_ALERT_EMAILS", "oncall@example.com")
    dag = load_dag(dag_id)
    s3, dynamodb = aws.client("s3"), aws.client("dynamodb")
    tables = dynamodb.list_tables()["TableNames"]
    before = {t: dynamodb.scan(TableName=t, Select="COUNT")["Count"] for t in tables}

    run = run_dag(dag, conf={"typo_key": 1}, retries=2)

    assert run.state == "failed"
    states = task_states(run)
    roots = {task.task_id for task in dag.roots}
    assert {states[r] for r in roots if r in states} == {"failed"}, states
    assert not {s for t, s in states.items() if t not in roots} - {"upstream_failed", None}, states
    mails = mailbox.wait_for(1)
    assert "does not declare conf key(s) 'typo_key'" in html.unescape(mails[0].text)
    assert "<th align='left'>Try</th><td>1</td>" in mails[0].text  # failed for good: no retry
    assert s3.list_objects_v2(Bucket="pipelines-data-lake").get("KeyCount", 0) == 0
    assert {t: dynamodb.scan(TableName=t, Select="COUNT")["Count"] for t in tables} == before


@pytest.fixture(scope="module")
def serialized_dags(airflow_db):
    """The project's DAGs in the metadata DB, as the dag-processor leaves them."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    from tests.conftest import REPO

    bag = DagBag(dag_folder=str(REPO / "dags"), bundle_path=REPO / "dags", bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    return bag


def _runs(dag_id: str) -> int:
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(DagRun).filter(DagRun.dag_id == dag_id).count()


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_the_rest_api_refuses_an_undeclared_key_with_400_naming_it(
    dag_id, serialized_dags, running_api_server, api_token
):
    import requests

    before = _runs(dag_id)
    response = requests.post(
        f"{running_api_server}/api/v2/dags/{dag_id}/dagRuns",
        json={"logical_date": None, "conf": {"typo_key": 1}},
        headers={"Authorization": f"Bearer {api_token}"},
        timeout=60,
    )
    assert response.status_code == 400, response.text
    assert "does not declare conf key(s) 'typo_key'" in response.json()["detail"]
    assert _runs(dag_id) == before  # no run created


def test_the_rest_api_still_creates_a_run_with_declared_keys_and_still_asks_for_a_token(
    serialized_dags, running_api_server, api_token
):
    import requests

    url = f"{running_api_server}/api/v2/dags/market_orders/dagRuns"
    body = {"logical_date": None, "conf": {"regionid": 10000030}}
    assert requests.post(url, json=body, timeout=60).status_code == 401  # no token: Airflow's own answer
    auth = {"Authorization": f"Bearer {api_token}"}
    refused = requests.post(url, json=body, headers=auth, timeout=60)
    assert refused.status_code == 400
    assert "'regionid' (did you mean 'region_id'?)" in refused.json()["detail"]
    accepted = requests.post(
        url, json={"logical_date": None, "conf": {"region_id": 10000030}}, headers=auth, timeout=60
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["conf"] == {"region_id": 10000030}
    invalid = requests.post(url, json={"logical_date": None, "conf": {"region_id": 5}}, headers=auth, timeout=60)
    assert invalid.status_code == 400 and "region_id" in invalid.text  # Airflow's own param validation
