"""infra/pipelines.yaml is valid CloudFormation and provisions every resource the DAGs use."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote_plus

from infra.provision import TEMPLATE, provision
from tests.conftest import REPO


def test_template_passes_cfn_lint():
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(TEMPLATE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_tables_have_the_key_schemas_of_pipelines_md(aws):
    dynamodb = aws.client("dynamodb")
    expected = {
        "market_orders": [("region_id", "HASH", "S"), ("type_id", "RANGE", "S")],
        "covid_stats": [("pk", "HASH", "S"), ("sk", "RANGE", "S")],
        "department_directory": [("department", "HASH", "S")],
    }
    for table, keys in expected.items():
        description = dynamodb.describe_table(TableName=table)["Table"]
        types = {a["AttributeName"]: a["AttributeType"] for a in description["AttributeDefinitions"]}
        got = [
            (k["AttributeName"], k["KeyType"], types[k["AttributeName"]]) for k in description["KeySchema"]
        ]
        assert got == keys, table


def test_bucket_topic_database_and_policies_exist(aws):
    aws.client("s3").head_bucket(Bucket="pipelines-data-lake")
    assert aws.client("glue").get_database(Name="traffic")["Database"]["Name"] == "traffic"
    topics = [t["TopicArn"] for t in aws.client("sns").list_topics()["Topics"]]
    assert any(arn.endswith(":covid-refresh") for arn in topics)
    attached = aws.client("iam").list_attached_role_policies(RoleName="airflow-pipelines")
    names = sorted(p["PolicyName"] for p in attached["AttachedPolicies"])
    assert names == [
        "airflow-covid-daily",
        "airflow-department-directory",
        "airflow-market-orders",
        "airflow-traffic-repartition",
    ]


def test_policies_are_least_privilege_no_wildcard_actions_or_resources():
    import yaml

    template = yaml.safe_load(TEMPLATE.read_text())
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::ManagedPolicy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in a for a in actions), (name, actions)
            assert statement["Resource"] != "*", name


def test_csv_in_directory_incoming_notifies_the_queue_and_nothing_else_does(aws):
    s3, sqs = aws.client("s3"), aws.client("sqs")
    url = sqs.get_queue_url(QueueName="directory-events")["QueueUrl"]
    sqs.purge_queue(QueueUrl=url)
    s3.put_object(Bucket="pipelines-data-lake", Key="directory/incoming/staff 2024.csv", Body=b"a,b\n")
    s3.put_object(Bucket="pipelines-data-lake", Key="directory/incoming/readme.txt", Body=b"x")
    s3.put_object(Bucket="pipelines-data-lake", Key="covid/other.csv", Body=b"x")
    keys = []
    for _ in range(3):
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            body = json.loads(message["Body"])
            keys += [r["s3"]["object"]["key"] for r in body.get("Records", [])]
    # keys arrive URL-encoded, as AWS sends them (moto also encodes the slashes)
    assert [unquote_plus(key) for key in keys] == ["directory/incoming/staff 2024.csv"]


def test_provisioning_twice_is_harmless(aws):
    physical = provision(aws.endpoint_url)
    assert physical["MarketOrdersTable"] == "market_orders"


def test_requirements_are_pinned_exactly_and_locked():
    direct = [
        line.split("#")[0].strip()
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert direct and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", line) for line in direct), direct
    locked = {
        line.split("==")[0].lower()
        for line in (REPO / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    for line in direct:
        name = re.sub(r"\[.*\]", "", line.split("==")[0]).lower()
        assert name in locked, f"{name} is in requirements.txt but not in requirements.lock"
    assert "apache-airflow==3.3.2" in direct
