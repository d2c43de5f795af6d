"""Least privilege, proven offline: every DAG runs with IAM enforced, under only its own policy.

The roles and policies come from infra/pipelines.yaml (provisioned as in AWS); the
workers' credentials can only assume them, through each pipeline's Airflow connection.
A permission the template lacks makes a DAG run fail (shown with a copy of the template
missing one statement), and no pipeline's role reaches another pipeline's table.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from devtools.airflow_env import PIPELINE_ROLES
from devtools.directory_sample import directory_csv
from devtools.traffic_generator import write_raw
from infra.provision import TEMPLATE
from tests.conftest import load_dag, run_dag, task_states
from tests.covid.test_covid_daily_dag import sources  # noqa: F401  (fixture)
from tests.covid.test_covid_daily_dag import table as covid_table
from tests.market.test_market_orders_dag import esi  # noqa: F401  (fixture)
from tests.market.test_market_orders_dag import items as market_items
from tests.traffic.test_traffic_repartition_dag import DATA_FROM, DATA_TO, START, conf, written

BUCKET = "pipelines-data-lake"
TABLE_KEYS = {
    "market_orders": ("region_id", {"region_id": {"S": "1"}, "type_id": {"S": "1"}}),
    "covid_stats": ("pk", {"pk": {"S": "CASES"}, "sk": {"S": "2020-01-01"}}),
    "department_directory": ("department", {"department": {"S": "dept-x"}}),
}
OWN_TABLE = {
    "aws_market": "market_orders",
    "aws_covid": "covid_stats",
    "aws_directory": "department_directory",
}


def refusals(stack) -> list[tuple[str, str]]:
    return [(r["action"], r["resource"]) for r in stack.iam.refusals]


def roles_used(stack) -> set[str]:
    """The roles whose sessions sent a request, allowed or refused."""
    callers = {caller for caller, _a, _r in stack.iam.granted} | {r["caller"] for r in stack.iam.refusals}
    return {caller.split(":assumed-role/", 1)[-1].split("/", 1)[0] for caller in callers}


# Actions a pipeline's policy grants that a normal offline run does not use, each with its reason.
# Anything else a policy grants and the run does not use is an excess permission: the test fails.
UNUSED_BUT_NEEDED = {
    "pipeline-traffic-repartition": {
        # KMS is checked offline (localaws/kms/keys.py): GenerateDataKey by Athena's result writes,
        # Decrypt by the encrypted leases table (and, on AWS, Athena's reads of the raw objects)
        **dict.fromkeys(
            [
                "glue:GetDatabase",
                "glue:GetTables",
                "glue:CreateTable",
                "glue:UpdateTable",
                "glue:GetPartition",
                "glue:GetPartitions",
                "s3:GetBucketLocation",
            ],
            "Athena DDL/DML use the caller's catalog and data permissions; offline Athena runs them as the stack",
        ),  # fmt: skip
        "athena:StopQueryExecution": "cancelling a running query (task killed or timed out)",
        "s3:DeleteObject": "a rerun retires the chunk's earlier files after its INSERT",
        "glue:BatchDeletePartition": "an event hour a rerun leaves without rows (every reading now defect) leaves the catalog",
    },
    "pipeline-market-orders": {},
    "pipeline-covid-daily": {
        # the first run's HeadObject on the absent snapshot: AWS answers 404 (not 403) only with it
        "s3:ListBucket": "S3 answers a missing key with 403 instead of 404 without it (not imitated offline)",
    },
    "pipeline-department-directory": {
        **dict.fromkeys(
            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
            "the queue watcher in the triggerer (the event path; a manual run does not read the queue)",
        ),
    },
}
POLICY_OF_ROLE = {
    "pipeline-traffic-repartition": "TrafficRepartitionPolicy",
    "pipeline-market-orders": "MarketOrdersPolicy",
    "pipeline-covid-daily": "CovidDailyPolicy",
    "pipeline-department-directory": "DepartmentDirectoryPolicy",
}


def assert_every_granted_action_is_used(stack, role: str) -> None:
    """An excess permission fails: each action of the role's policy was used by the run, or is listed above."""
    template = yaml.safe_load(TEMPLATE.read_text())
    statements = template["Resources"][POLICY_OF_ROLE[role]]["Properties"]["PolicyDocument"]["Statement"]
    granted = {
        action
        for s in statements
        for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    used = {a.lower() for caller, a, _r in stack.iam.granted if f":assumed-role/{role}/" in caller}
    unused = {a for a in granted if a.lower() not in used}
    assert unused == set(UNUSED_BUT_NEEDED[role]), f"{role}: granted but unused: {sorted(unused)}"


# -- every DAG under its own policy only ---------------------------------------------------


def test_covid_daily_runs_under_its_own_role_only(airflow_db, least_privilege, sources):  # noqa: F811
    stack = least_privilege()
    assert run_dag(load_dag("covid_daily"), conf=sources()).state == "success"
    assert refusals(stack) == []
    assert len(covid_table(stack)) == 420
    assert roles_used(stack) == {"airflow-pipelines", "pipeline-covid-daily"}
    assert_every_granted_action_is_used(stack, "pipeline-covid-daily")


def test_market_orders_runs_under_its_own_role_only(airflow_db, least_privilege, esi):  # noqa: F811
    stack = least_privilege()
    esi()
    run = run_dag(load_dag("market_orders"), conf={"region_id": 10000002, "concurrency": 8})
    assert run.state == "success", task_states(run)
    assert refusals(stack) == []
    assert market_items(stack) != {}
    assert roles_used(stack) == {"airflow-pipelines", "pipeline-market-orders"}
    assert_every_granted_action_is_used(stack, "pipeline-market-orders")


def test_department_directory_runs_under_its_own_role_only(airflow_db, least_privilege):
    stack = least_privilege()
    key = "directory/incoming/staff.csv"
    stack.client("s3").put_object(
        Bucket=BUCKET, Key=key, Body=directory_csv(departments=3, employees=20, seed=1)
    )
    run = run_dag(load_dag("department_directory"), conf={"s3_key": key})
    assert run.state == "success", task_states(run)
    assert refusals(stack) == []
    assert stack.client("dynamodb").scan(TableName="department_directory")["Count"] == 3
    # the staging it writes and reads, which the policy before this change did not allow
    assert any(a == "s3:PutObject" and "/directory/runs/" in r for _c, a, r in stack.iam.granted)
    assert roles_used(stack) == {"airflow-pipelines", "pipeline-department-directory"}
    assert_every_granted_action_is_used(stack, "pipeline-department-directory")


def test_traffic_repartition_runs_under_its_own_role_only(airflow_db, least_privilege):
    stack = least_privilege()
    write_raw(stack.client("s3"), BUCKET, DATA_FROM, DATA_TO, locations=2, lanes=2, seed=3)
    run = run_dag(load_dag("traffic_repartition"), conf=conf(START, START + timedelta(hours=2)))
    assert run.state == "success", task_states(run)
    assert refusals(stack) == []
    _data, files = written(stack)
    assert len(files) == 2
    assert roles_used(stack) == {"airflow-pipelines", "pipeline-traffic-repartition"}
    assert_every_granted_action_is_used(stack, "pipeline-traffic-repartition")


# -- a permission missing from the template fails the run ----------------------------------


def _template_without(tmp_path, policy: str, sid: str):
    template = yaml.safe_load(TEMPLATE.read_text())
    statements = template["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"]
    kept = [s for s in statements if s["Sid"] != sid]
    assert len(kept) == len(statements) - 1, f"{policy} has no statement {sid}"
    template["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"] = kept
    path = tmp_path / "pipelines-missing-one-statement.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path


def test_a_statement_missing_from_the_template_fails_the_dag_run_with_access_denied(
    airflow_db, least_privilege, tmp_path
):
    # department_directory's policy as it was before: no directory/runs/* staging
    stack = least_privilege(_template_without(tmp_path, "DepartmentDirectoryPolicy", "RunStaging"))
    key = "directory/incoming/staff.csv"
    stack.client("s3").put_object(
        Bucket=BUCKET, Key=key, Body=directory_csv(departments=3, employees=20, seed=1)
    )
    run = run_dag(load_dag("department_directory"), conf={"s3_key": key})
    assert run.state == "failed"
    assert task_states(run)["nest_and_validate"] == "failed"
    (refused,) = refusals(stack)
    assert refused[0] == "s3:PutObject" and refused[1].startswith(f"arn:aws:s3:::{BUCKET}/directory/runs/")
    assert stack.client("dynamodb").scan(TableName="department_directory")["Count"] == 0


def test_a_traffic_role_without_its_catalog_statement_fails_before_writing(
    airflow_db, least_privilege, tmp_path
):
    stack = least_privilege(_template_without(tmp_path, "TrafficRepartitionPolicy", "Catalog"))
    write_raw(stack.client("s3"), BUCKET, DATA_FROM, DATA_TO, locations=1, lanes=1, seed=3)
    run = run_dag(load_dag("traffic_repartition"), conf=conf(START, START + timedelta(hours=1)))
    assert run.state == "failed"
    states = task_states(run)
    assert states["check_raw_schema"] == "failed"  # reads the declared raw table, before any write
    assert "success" not in {state for task, state in states.items() if task.startswith("write_chunk")}
    assert "glue:GetTable" in {action for action, _resource in refusals(stack)}
    assert not written(stack)[1]


def _template_with_a_crawler(tmp_path, crawler_reads_s3: bool):
    """The template plus a Glue crawler role (lists the bucket; reads it or not) aws_traffic may pass and start."""
    template = yaml.safe_load(TEMPLATE.read_text())
    statements = [
        {"Sid": "Catalog", "Effect": "Allow", "Action": ["glue:*"], "Resource": "*"},
        {"Sid": "List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"},
    ]  # fmt: skip
    if crawler_reads_s3:
        statements.append(
            {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/traffic/*"}
        )
    template["Resources"]["ProbeCrawlerRole"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": "probe-crawler",
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}],
            },  # fmt: skip
        },
    }
    template["Resources"]["ProbeCrawlerPolicy"] = {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {
            "ManagedPolicyName": "probe-crawler",
            "Roles": [{"Ref": "ProbeCrawlerRole"}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
        },
    }
    traffic = template["Resources"]["TrafficRepartitionPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    traffic += [
        {"Sid": "Crawlers", "Effect": "Allow", "Action": ["glue:CreateCrawler", "glue:StartCrawler"], "Resource": "*"},
        {"Sid": "PassTheCrawlerRole", "Effect": "Allow", "Action": "iam:PassRole",
         "Resource": {"Fn::GetAtt": ["ProbeCrawlerRole", "Arn"]}},
    ]  # fmt: skip
    path = tmp_path / "pipelines-with-a-crawler.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path


@pytest.mark.parametrize("crawler_reads_s3", [True, False])
def test_a_crawler_runs_only_if_its_own_role_reads_what_it_crawls(least_privilege, tmp_path, crawler_reads_s3):
    """localaws checks a crawler's role as Glue would (nothing of ours crawls since issue 14, other users' DAGs may)."""
    from pipelines.traffic.lake import clients

    stack = least_privilege(_template_with_a_crawler(tmp_path, crawler_reads_s3))
    stack.client("s3").put_object(Bucket=BUCKET, Key="traffic/raw/object", Body=b"{}")
    glue, _s3 = clients("aws_traffic")
    glue.create_crawler(
        Name="probe", Role="arn:aws:iam::123456789012:role/probe-crawler", DatabaseName="traffic",
        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/traffic/raw/"}]},
    )  # fmt: skip
    if crawler_reads_s3:
        glue.start_crawler(Name="probe")
        assert refusals(stack) == []
    else:
        assert _refused(lambda: glue.start_crawler(Name="probe"))
        assert ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/traffic/raw/object") in refusals(stack)


# -- no pipeline reaches another pipeline's table -------------------------------------------


def _refused(call) -> bool:
    try:
        call()
    except Exception as error:  # botocore's ClientError, whatever the client class
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
        assert code == "AccessDeniedException", error
        return True
    return False


@pytest.mark.parametrize(
    "conn_id", ["aws_traffic", "aws_market", "aws_covid", "aws_directory", "aws_results"]
)
def test_each_connection_is_refused_every_table_but_its_own(least_privilege, conn_id):
    from pipelines.aws.dynamodb import dynamodb_client

    stack = least_privilege()
    client = dynamodb_client(conn_id)
    for table, (_hash_key, item) in TABLE_KEYS.items():
        own = OWN_TABLE.get(conn_id) == table

        def write(table=table, item=item):
            client.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": item}}]})

        def read(table=table, item=item):
            client.get_item(TableName=table, Key=item)

        assert _refused(write) is not own, (conn_id, table, "write")
        if conn_id == "aws_results":
            assert not _refused(read), (conn_id, table, "read")  # the API reads all three, writes none
        elif not own:
            assert _refused(read), (conn_id, table, "read")
    base_role = "airflow-api-server" if conn_id == "aws_results" else "airflow-pipelines"
    assert roles_used(stack) == {base_role, PIPELINE_ROLES[conn_id]}


def test_the_workers_role_can_only_assume_the_pipeline_roles(least_privilege):
    import boto3

    stack = least_privilege()
    session = boto3.session.Session()  # the environment's credentials: the worker's session
    worker = session.client("s3", endpoint_url=stack.endpoint_url, region_name="us-east-1")
    assert _refused_s3(lambda: worker.list_objects_v2(Bucket=BUCKET, Prefix="covid/"))
    sts = session.client("sts", endpoint_url=stack.endpoint_url, region_name="us-east-1")
    sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/pipeline-covid-daily", RoleSessionName="ok")
    for role in ("results-api-reader", "glue-crawler-traffic"):
        with pytest.raises(Exception, match="AccessDenied"):
            sts.assume_role(RoleArn=f"arn:aws:iam::123456789012:role/{role}", RoleSessionName="no")


def _refused_s3(call) -> bool:
    try:
        call()
    except Exception as error:
        return getattr(error, "response", {}).get("Error", {}).get("Code") == "AccessDenied"
    return False


def test_listing_outside_the_pipelines_prefix_is_refused(least_privilege):
    from pipelines.aws.s3 import s3_hook

    stack = least_privilege()
    stack.client("s3").put_object(Bucket=BUCKET, Key="market/raw/page.gz", Body=b"x")
    client = s3_hook("aws_market").get_conn()
    assert client.list_objects_v2(Bucket=BUCKET, Prefix="market/raw/")["KeyCount"] == 1
    for prefix in ("covid/", "directory/incoming/", ""):
        assert _refused_s3(lambda prefix=prefix: client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)), prefix
    assert _refused_s3(lambda: client.list_objects_v2(Bucket=BUCKET))


def test_enforcement_is_off_by_default_and_unknown_keys_are_refused_when_on(monkeypatch):
    import boto3

    from localaws import LocalAWS

    monkeypatch.delenv("LOCALAWS_ENFORCE_IAM", raising=False)
    with LocalAWS() as stack:
        assert stack.iam.enabled is False
        stranger = boto3.client(
            "s3", endpoint_url=stack.endpoint_url, region_name="us-east-1",
            aws_access_key_id="AKIAUNKNOWN000000000", aws_secret_access_key="x",
        )  # fmt: skip
        stranger.list_buckets()
        stack.iam.enabled = True
        with pytest.raises(Exception, match="InvalidClientTokenId|InvalidAccessKeyId"):
            stranger.list_buckets()
