"""Undeclared trigger ``conf`` keys are refused: the rule, and every DAG at run time.

The trigger-time half (REST 400) is proved against a running api-server in
``tests/devtools/test_trigger_guard.py``.
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
