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

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"


def test_template_passes_cfn_lint():
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(TEMPLATE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_template_passes_checkov_with_each_skip_explained():
    assert CHECKOV.exists(), "checkov lives in its own venv: run `make checkov-venv`"
    result = subprocess.run(
        [str(CHECKOV), "--skip-download", "--compact", "--framework", "cloudformation",
         "-f", str(TEMPLATE), "-o", "json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    report = json.loads(result.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == [] and result.returncode == 0, failed or result.stderr
    assert report["summary"]["passed"] > 50  # checkov really read the template
    for skipped in report["results"]["skipped_checks"]:
        assert len(skipped["check_result"].get("suppress_comment") or "") > 40, skipped["check_id"]


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
    iam = aws.client("iam")

    def attached(role: str) -> list[str]:
        return sorted(
            p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        )

    # one role per pipeline, each with its own policy only; the workers' role may only assume them
    assert attached("pipeline-traffic-repartition") == ["airflow-traffic-repartition"]
    assert attached("pipeline-market-orders") == ["airflow-market-orders"]
    assert attached("pipeline-covid-daily") == ["airflow-covid-daily"]
    assert attached("pipeline-department-directory") == ["airflow-department-directory"]
    assert attached("results-api-reader") == ["results-api-read-only"]
    assert attached("airflow-pipelines") == ["airflow-workers-assume-pipeline-roles"]
    assert attached("airflow-api-server") == ["airflow-api-server-assume-results-role"]
    # traffic_repartition's crawlers (issue 21) run as their own role, trusted by Glue only
    assert attached("glue-crawler-traffic") == ["glue-crawler-traffic"]
    trust = iam.get_role(RoleName="glue-crawler-traffic")["Role"]["AssumeRolePolicyDocument"]
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "glue.amazonaws.com"}]
    roles = {role["RoleName"] for role in iam.list_roles()["Roles"]}
    assert {role for role in roles if "crawler" in role} == {"glue-crawler-traffic"}


def test_the_traffic_crawlers_are_provisioned_incremental_with_the_declared_schema_kept(aws):
    """moto's CloudFormation has no AWS::Glue::Crawler: infra/provision.py creates them offline."""
    glue = aws.client("glue")
    raw = glue.get_crawler(Name="traffic_raw_crawler")["Crawler"]
    transformed = glue.get_crawler(Name="traffic_transformed_crawler")["Crawler"]
    for crawler in (raw, transformed):
        assert crawler["Role"].endswith(":role/glue-crawler-traffic")
        assert crawler["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
        configuration = json.loads(crawler["Configuration"])
        assert configuration["CrawlerOutput"]["Partitions"] == {"AddOrUpdateBehavior": "InheritFromTable"}
    assert raw["DatabaseName"] == "traffic"
    assert raw["Targets"]["S3Targets"] == [{"Path": "s3://pipelines-data-lake/traffic/raw/"}]
    assert raw["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"}
    # S3 event mode: a catalog target cannot crawl new folders only, it can consume S3 events
    assert transformed["Targets"]["CatalogTargets"] == [
        {
            "DatabaseName": "traffic",
            "Tables": ["events_by_event_time"],
            "EventQueueArn": "arn:aws:sqs:us-east-1:123456789012:traffic-transformed-events",
        }
    ]
    assert transformed["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_EVENT_MODE"}


def test_transformed_objects_written_and_retired_notify_the_crawlers_queue_and_nothing_else_does(aws):
    s3, sqs = aws.client("s3"), aws.client("sqs")
    url = sqs.get_queue_url(QueueName="traffic-transformed-events")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert attributes["KmsMasterKeyId"] and redrive["deadLetterTargetArn"].endswith(
        ":traffic-transformed-events-dlq"
    )
    [statement] = json.loads(attributes["Policy"])["Statement"]  # offline: without the TLS-only deny
    assert (statement["Principal"], statement["Action"]) == (
        {"Service": "s3.amazonaws.com"},
        "sqs:SendMessage",
    )
    assert statement["Condition"] == {
        "ArnLike": {"aws:SourceArn": "arn:aws:s3:::pipelines-data-lake"},
        "StringEquals": {"aws:SourceAccount": "123456789012"},
    }
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    key = "traffic/transformed/year=2024/month=06/day=01/hour=00/part.parquet"
    s3.put_object(Bucket="pipelines-data-lake", Key=key, Body=b"x")
    s3.delete_object(Bucket="pipelines-data-lake", Key=key)  # versioned bucket: a delete marker
    s3.put_object(Bucket="pipelines-data-lake", Key="traffic/raw/2024/06/01/00/feed.gz", Body=b"x")
    events = []
    for _ in range(3):
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for record in json.loads(message["Body"]).get("Records", []):
                events.append((record["eventName"], unquote_plus(record["s3"]["object"]["key"])))
    assert sorted(events) == [("ObjectCreated:Put", key), ("ObjectRemoved:DeleteMarkerCreated", key)]


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


def _template() -> dict:
    import yaml

    return yaml.safe_load(TEMPLATE.read_text())


def _of_type(kind: str) -> dict[str, dict]:
    return {name: r for name, r in _template()["Resources"].items() if r["Type"] == kind}


# traffic's write leases live for one chunk write and are deleted after it: a lost table is
# recreated empty, which frees every lease (its checkov skip of CKV_AWS_28 says the same)
DISPOSABLE = {"TrafficWriteLeasesTable"}
STATEFUL = (
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::KMS::Key",
    "AWS::SQS::Queue",
    "AWS::Glue::Database",
)


def test_stateful_resources_survive_stack_deletion_and_replacement():
    stateful = {
        name: r
        for name, r in _template()["Resources"].items()
        if r["Type"] in STATEFUL and name not in DISPOSABLE
    }
    assert len(stateful) == 10, sorted(stateful)
    for name, resource in stateful.items():
        assert resource.get("DeletionPolicy") == "Retain", name
        assert resource.get("UpdateReplacePolicy") == "Retain", name


def test_template_encrypts_every_store_with_the_customer_key():
    key = {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert _of_type("AWS::KMS::Key")["DataKey"]["Properties"]["EnableKeyRotation"] is True
    for name, table in _of_type("AWS::DynamoDB::Table").items():
        properties = table["Properties"]
        assert properties["SSESpecification"] == {
            "SSEEnabled": True,
            "SSEType": "KMS",
            "KMSMasterKeyId": key,
        }, name
        if name in DISPOSABLE:
            continue
        assert properties["DeletionProtectionEnabled"] is True, name
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name
    for name, queue in _of_type("AWS::SQS::Queue").items():
        assert queue["Properties"]["KmsMasterKeyId"] == {"Ref": "DataKey"}, name
    for name, topic in _of_type("AWS::SNS::Topic").items():
        assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "DataKey"}, name


def test_bucket_policy_refuses_every_request_without_tls():
    (policy,) = _of_type("AWS::S3::BucketPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert len(deny) == 1 and deny[0]["Principal"] == "*" and deny[0]["Action"] == "s3:*"
    assert deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    resources = [r["Fn::Sub"] for r in deny[0]["Resource"]]
    assert resources == [
        "arn:${AWS::Partition}:s3:::${BucketName}",
        "arn:${AWS::Partition}:s3:::${BucketName}/*",
    ]


def test_offline_bucket_is_encrypted_private_versioned_and_expires_what_grows(aws):
    s3 = aws.client("s3")
    bucket = "pipelines-data-lake"
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"].startswith("arn:aws:kms:")
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert rules["MarketRawPagesExpire"]["Filter"]["Prefix"] == "market/raw/"
    assert rules["MarketRawPagesExpire"]["Expiration"]["Days"] == 14
    assert rules["AthenaResultsExpire"]["Filter"]["Prefix"] == "athena-results/"
    assert rules["AthenaResultsExpire"]["Expiration"]["Days"] == 7
    assert rules["NoncurrentVersionsExpire"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert all(r["Status"] == "Enabled" for r in rules.values())


def test_offline_tables_have_pitr_and_deletion_protection(aws):
    dynamodb = aws.client("dynamodb")
    for table in ("market_orders", "covid_stats", "department_directory"):
        assert dynamodb.describe_table(TableName=table)["Table"]["DeletionProtectionEnabled"] is True
        backups = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED", table
        try:
            dynamodb.delete_table(TableName=table)
        except dynamodb.exceptions.ClientError as refused:
            assert "DeletionProtectionEnabled" in str(refused)
        else:
            raise AssertionError(f"{table} was deleted despite deletion protection")


def test_offline_queue_is_encrypted_with_a_dead_letter_queue_and_a_source_scoped_policy(aws):
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName="directory-events")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["KmsMasterKeyId"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":directory-events-dlq")
    assert int(redrive["maxReceiveCount"]) == 5
    (allow,) = [s for s in json.loads(attributes["Policy"])["Statement"] if s["Effect"] == "Allow"]
    assert allow["Condition"] == {
        "ArnLike": {"aws:SourceArn": "arn:aws:s3:::pipelines-data-lake"},
        "StringEquals": {"aws:SourceAccount": "123456789012"},
    }
    topic = next(
        t["TopicArn"]
        for t in aws.client("sns").list_topics()["Topics"]
        if t["TopicArn"].endswith(":covid-refresh")
    )
    assert aws.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"]


def test_offline_policy_drops_only_the_tls_statements():
    from infra.provision import _offline_policy

    allow = {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage"}
    tls = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    assert _offline_policy({"Version": "2012-10-17", "Statement": [allow, tls]}) == {
        "Version": "2012-10-17",
        "Statement": [allow],
    }
    assert _offline_policy({"Version": "2012-10-17", "Statement": [tls]}) is None
