"""The paths users take, through the real scheduler, api-server, triggerer and Celery worker.

The session's topology is the production rehearsal (devtools/rehearsal.py): deployed as the
README deploys AWS, IAM enforced for every component. So every scenario here is also a
probe of day one on AWS: the first checks the deployment itself, the last that no call of
any of them was refused.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from devtools.directory_sample import directory_csv
from devtools.traffic_generator import write_raw
from tests.conftest import REPO
from tests.e2e.conftest import BUCKET, partitions, query_count

pytestmark = [pytest.mark.e2e, pytest.mark.rehearsal]
COVID = REPO / "sample_data" / "covid"
SNS_SENDER = "no-reply@sns.amazonaws.com"


def test_the_deployment_is_the_readmes_and_each_component_runs_as_its_role(topology):
    from devtools.rehearsal import CONNECTION_ROLE_OUTPUTS, preflight
    from localaws.iam.enforcement import resolve_caller

    cfn = topology.aws.client("cloudformation")
    [change_set] = cfn.list_change_sets(StackName="aws-pipelines")["Summaries"]
    assert (change_set["ExecutionStatus"], change_set["Status"]) == ("EXECUTE_COMPLETE", "CREATE_COMPLETE")
    assert {output: topology.outputs[output] for output in CONNECTION_ROLE_OUTPUTS.values()}
    stored = {
        s["Name"] for page in topology.aws.client("secretsmanager").get_paginator("list_secrets").paginate()
        for s in page["SecretList"]
    }  # fmt: skip
    assert {f"airflow/connections/{c}" for c in CONNECTION_ROLE_OUTPUTS} | {
        "airflow/connections/smtp_default", "airflow/connections/esi_default",
        "airflow/variables/alert_emails", "airflow/variables/data_lake_bucket",
    } <= stored  # fmt: skip
    assert topology.aws.iam.enabled
    roles = {"api-server": "airflow-api-server"}
    for name in topology.processes:
        environ = topology.component_env(name)  # what the component was started with
        assert not [k for k in environ if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))], name
        assert environ["AIRFLOW__SECRETS__BACKEND"].endswith("SecretsManagerBackend")
        assert environ["AIRFLOW__CORE__AUTH_MANAGER"].endswith("FabAuthManager")
        assert environ["DIRECTORY_EVENTS_QUEUE_URL"] == topology.outputs["DirectoryEventsQueueUrl"]
        caller = resolve_caller(environ["AWS_ACCESS_KEY_ID"], environ["AWS_SESSION_TOKEN"]).arn
        assert f":assumed-role/{roles.get(name, 'airflow-pipelines')}/" in caller, (name, caller)
    env_of = {identity: topology.component_env(component) for component, identity in
              (("worker", "workers"), ("api-server", "api-server"))}  # fmt: skip
    assert preflight(env_of, topology.outputs) == {
        "secrets": "ok",
        "roles": "ok",
        "queue": "ok",
        "results": "ok",
    }


def test_rest_trigger_with_a_parameter(topology, runs):
    code, _ = topology.api("POST", "/api/v2/dags/market_orders/dagRuns", {"conf": {}}, token=None)
    assert code == 401
    runs.unpause("market_orders")
    code, body = topology.api(
        "POST", "/api/v2/dags/market_orders/dagRuns", {"logical_date": None, "conf": {"region_id": 5}}
    )
    assert code == 400 and "region_id" in str(body)
    run_id = runs.trigger("market_orders", {"region_id": 10000002, "concurrency": 8})
    assert runs.wait("market_orders", run_id) == "success", runs.task_states("market_orders", run_id)
    assert query_count(topology.aws, "market_orders", "region_id", "10000002") > 500


def test_scheduled_run_without_a_manual_trigger(topology, runs):
    for key, name in (("covid_cases_url", "nyt_us_snapshot_000bd91_through_2022-04-19.csv"),
                      ("covid_recoveries_url", "jhu_time-series-19-covid-combined_US_only.csv")):  # fmt: skip
        code, body = topology.api("POST", "/api/v2/variables", {"key": key, "value": str(COVID / name)})
        assert code in (200, 201), body
    runs.unpause("covid_daily")
    deadline = time.monotonic() + 240
    scheduled = []
    while time.monotonic() < deadline and not scheduled:
        scheduled = [r for r in runs.runs("covid_daily") if r["run_type"] == "scheduled"]
        time.sleep(2)
    assert scheduled, "the scheduler created no run"
    assert runs.wait("covid_daily", scheduled[0]["dag_run_id"]) == "success"
    assert query_count(topology.aws, "covid_stats", "pk", "CASES") == 420
    _the_subscriber_received_the_success_message(topology)


def _the_subscriber_received_the_success_message(topology) -> None:
    """The run published its success to the COVID topic; SNS delivered it to the stack's e-mail subscriber."""
    topic = topology.outputs["CovidRefreshTopicArn"]
    subscriptions = topology.aws.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", topology.covid_subscriber)]
    [published] = [m for m in topology.aws.sent()["sns"] if m["topic_arn"] == topic]
    deadline, mails = time.monotonic() + 60, []
    while time.monotonic() < deadline and not mails:
        mails = [m for m in topology.smtp.messages if m.sender == SNS_SENDER]
        time.sleep(1)
    [mail] = mails
    assert mail.recipients == [topology.covid_subscriber] and mail.subject == published["subject"]
    assert mail.text.replace("\r\n", "\n").startswith(published["message"].replace("\r\n", "\n"))


def test_failure_alert_email_and_sns_message(topology, runs, tmp_path):
    bad = tmp_path / "cases.csv"
    bad.write_text("date,cases,deaths\n2020-01-22,1,0\n2020-01-23,-4,0\n")
    topology.smtp.clear()
    run_id = runs.trigger("covid_daily", {"cases_url": str(bad)})
    assert runs.wait("covid_daily", run_id) == "failed"
    # the alert, and the topic's failure message to its e-mail subscriber (SNS delivers it too)
    mails = topology.smtp.wait_for(2, timeout=60)
    [mail] = [m for m in mails if m.sender != SNS_SENDER and run_id in m.subject]
    # the recipients are the Variable alert_emails as stored in Secrets Manager (no fallback here)
    assert mail.recipients == topology.alert_emails.split(",")
    notifications = [m for m in mails if m.sender == SNS_SENDER and "Task: extract" in m.text]
    assert notifications and {tuple(m.recipients) for m in notifications} == {(topology.covid_subscriber,)}
    assert "covid_daily" in mail.subject and "extract" in mail.subject and run_id in mail.subject
    assert "row 3, column &#x27;cases&#x27;, value &#x27;-4&#x27;" in mail.text or "row 3" in mail.text
    assert f"{topology.api_url}/dags/covid_daily/runs/" in mail.text
    failures = [m for m in topology.aws.sent()["sns"] if "FAILED" in (m["subject"] or "")]
    assert failures and "Task: extract" in failures[-1]["message"]


def test_event_driven_run_from_an_s3_put(topology, runs):
    runs.unpause("department_directory")
    time.sleep(10)  # the triggerer picks up the watcher of the newly unpaused DAG
    topology.aws.client("s3").put_object(
        Bucket=BUCKET, Key="directory/incoming/staff.csv", Body=directory_csv(departments=5, employees=40)
    )
    # Wait for the table, not for the first finished run: the queue may also hold S3's
    # s3:TestEvent from setting up the notification, whose run has nothing to load.
    deadline, items = time.monotonic() + 240, []
    while time.monotonic() < deadline and len(items) < 5:
        items = topology.aws.client("dynamodb").scan(TableName="department_directory")["Items"]
        time.sleep(2)
    assert len(items) == 5 and {i["source_key"]["S"] for i in items} == {"directory/incoming/staff.csv"}
    finished = [r for r in runs.runs("department_directory") if r["state"] in ("success", "failed")]
    assert finished and all(r["state"] == "success" and r["run_type"] == "asset_triggered" for r in finished)


def _get(topology, runs, path: str) -> tuple[int, bytes, str]:
    request = urllib.request.Request(
        f"{topology.api_url}{path}", headers={"Authorization": f"Bearer {runs.token()}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), ""


def test_every_results_endpoint_answers_as_the_results_role(topology, runs):
    """After the runs above: the api-server reads each table as results-api-reader (index and key included)."""
    admin = topology.aws.client("dynamodb")  # the oracle: the tables read with the administrator key
    departments = sorted(
        item["department"]["S"] for item in admin.scan(TableName="department_directory")["Items"]
    )
    code, body, _ = _get(topology, runs, "/results/api/departments?limit=50")
    assert code == 200, body
    assert json.loads(body)["departments"] == departments
    code, body, _ = _get(topology, runs, f"/results/api/departments/{departments[0]}")
    assert code == 200 and json.loads(body)["department"] == departments[0], body
    code, body, _ = _get(topology, runs, "/results/api/market/10000002?top=5")
    assert code == 200, body
    market = json.loads(body)
    assert market["types_total"] == query_count(topology.aws, "market_orders", "region_id", "10000002")
    type_id = market["types"][0]["type_id"]
    code, body, _ = _get(topology, runs, f"/results/api/market/10000002/{type_id}")
    assert code == 200 and json.loads(body)["type_id"] == type_id, body
    code, body, _ = _get(topology, runs, "/results/api/covid?granularity=monthly")
    assert code == 200 and json.loads(body)["periods"], body
    code, body, _ = _get(topology, runs, "/results/api/covid/cumulative")
    assert code == 200, body
    stored_days = {
        item["sk"]["S"] for page in admin.get_paginator("query").paginate(
            TableName="covid_stats", KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "CASES"}},
        ) for item in page["Items"]
    }  # fmt: skip
    assert len(json.loads(body)["days"]) == len(stored_days) == 420
    code, body, content_type = _get(topology, runs, "/results/api/covid?granularity=weekly&format=csv")
    assert code == 200 and content_type.startswith("text/csv") and body.count(b"\n") > 50
    code, body, _ = _get(topology, runs, "/results/dashboard")
    assert code == 200 and b"<html" in body.lower()


def _backfill(topology, runs, start: str, end: str, reprocess: str) -> float:
    began = datetime.now(UTC)
    result = topology.airflow(
        "backfill", "create", "--dag-id", "traffic_repartition", "--from-date", start, "--to-date", end,
        "--reprocess-behavior", reprocess, "--max-active-runs", "2", check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return began.timestamp()


def _wait_backfill(runs, expected_days: list[str], since: float, deferred: set, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mine = [r for r in runs.runs("traffic_repartition") if r["run_type"] == "backfill"
                and datetime.fromisoformat(r["queued_at"] or r["run_after"]).timestamp() >= since - 5]  # fmt: skip
        for run in mine:
            if run["state"] == "running":
                for task, state in runs.task_states("traffic_repartition", run["dag_run_id"]).items():
                    if state == "deferred":
                        deferred.add(task.split("[")[0])
        days = sorted(r["logical_date"][:10] for r in mine)
        # done when its runs are, and the scheduler has marked the backfill complete (only
        # then may the next backfill of the DAG be created)
        if days == expected_days and all(r["state"] in ("success", "failed") for r in mine):
            code, body = runs.t.api("GET", "/api/v2/backfills?dag_id=traffic_repartition")
            if code == 200 and all(b["completed_at"] for b in body["backfills"]):
                return mine
        time.sleep(1)
    raise TimeoutError(f"backfill runs not done: {[(r['logical_date'], r['state']) for r in mine]}")


@pytest.mark.timeout(900)  # two backfills: 5 daily runs through Athena
def test_backfill_writes_each_day_once_and_deferrable_tasks_wait_in_the_triggerer(topology, runs):
    first_day = datetime(2024, 1, 2, tzinfo=UTC)
    write_raw(topology.aws.client("s3"), BUCKET, first_day - timedelta(hours=3),
              first_day + timedelta(days=3, hours=3), locations=2, lanes=1)  # fmt: skip
    # 3 days, then 2 of them again: enough for "each day once" and "a re-run changes nothing";
    # longer backfills are the chaos scenario's and the DAG tests' (make e2e stays < 20 min)
    days = [(first_day + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(3)]
    runs.unpause("traffic_repartition")  # backfill runs start only on an unpaused DAG
    deferred: set[str] = set()
    since = _backfill(topology, runs, days[0], days[-1], "none")
    finished = _wait_backfill(runs, days, since, deferred)
    assert all(r["state"] == "success" for r in finished), [(r["logical_date"], r["state"]) for r in finished]
    first = partitions(topology.aws)
    assert len(first) == 3 * 24 and {files for files, _rows in first.values()} == {1}
    # deferrable operators were DEFERRED: held by the triggerer, not a worker slot
    assert deferred & {"write_chunk", "count_rows",
                       "wait_for_late_events", "create_raw_table", "create_target_table"}, deferred  # fmt: skip

    since = _backfill(topology, runs, days[1], days[2], "completed")
    again = _wait_backfill(runs, days[1:3], since, deferred)
    assert all(r["state"] == "success" for r in again)
    assert partitions(topology.aws) == first  # same partitions, one file each, same row counts


def test_no_call_of_any_scenario_was_refused(topology):
    """Zero AccessDenied: none refused by the stack, none in any component's or task's log."""
    assert topology.aws.iam.refusals == []
    logs = [topology.home / f"{name}.log" for name in topology.processes]
    logs += sorted((topology.home / "logs").rglob("*.log"))
    denied = [
        f"{path.name}: {line.strip()[:300]}" for path in logs if path.exists()
        for line in path.read_text(errors="replace").splitlines()
        if re.search(r"AccessDenied|not authorized to perform", line)
    ]  # fmt: skip
    assert denied == []
