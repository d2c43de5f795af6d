"""Day one on AWS, offline: the identities of a deployment can do what the deployment needs.

IAM is enforced as AWS does for every caller, KMS included (localaws/kms/keys.py): a read of
a table, queue or secret encrypted with the stack's key ``DataKey`` needs the key, through
the caller's identity policy (the key policy delegates to the account) or the key policy
itself. Each test runs against infra/pipelines.yaml and against a copy missing one
statement, which must fail at the call that needs it.
"""

from __future__ import annotations

import json

import pytest
import yaml

from devtools.airflow_env import ACCOUNT_ID
from infra.provision import TEMPLATE

DEPARTMENT_INDEX_ARN = (
    f"arn:aws:dynamodb:us-east-1:{ACCOUNT_ID}:table/department_directory/index/department_names"
)


def refusals(stack) -> list[tuple[str, str]]:
    return [(r["action"], r["resource"]) for r in stack.iam.refusals]


def data_key_arn(stack) -> str:
    """DataKey's ARN, built from the key id the directory queue names (the key of every encrypted store)."""
    url = stack.client("sqs").get_queue_url(QueueName="directory-events")["QueueUrl"]
    key_id = stack.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["KmsMasterKeyId"])
    return f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/{key_id['Attributes']['KmsMasterKeyId']}"


def template_changed(tmp_path, change) -> object:
    template = yaml.safe_load(TEMPLATE.read_text())
    change(template["Resources"])
    path = tmp_path / "pipelines-changed.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path


def without_statement(policy: str, sid: str):
    def change(resources):
        document = resources[policy]["Properties"]["PolicyDocument"]
        kept = [s for s in document["Statement"] if s.get("Sid") != sid]
        assert len(kept) == len(document["Statement"]) - 1, f"{policy} has no statement {sid}"
        document["Statement"] = kept

    return change


def access_denied(call) -> str:
    """The AccessDenied error message of ``call`` (fails the test when it succeeds or fails otherwise)."""
    with pytest.raises(Exception) as raised:
        call()
    error = raised.value.response["Error"]  # botocore's ClientError
    assert error["Code"] in ("AccessDenied", "AccessDeniedException"), error
    return error["Message"]


# -- the results API: index query and decrypt ------------------------------------------------


def _seed_departments(stack) -> None:
    client = stack.client("dynamodb")
    for name in ("Finance", "Facilities", "Research"):
        client.put_item(
            TableName="department_directory",
            Item={"department": {"S": name}, "listing": {"S": "DEPARTMENTS"}, "employees": {"L": []}},
        )


def _results_store():
    from pipelines.aws.dynamodb import dynamodb_client
    from results_api.store import ResultsStore

    return ResultsStore(dynamodb_client("aws_results"))


def test_the_results_role_queries_the_department_index_and_decrypts_the_table(least_privilege):
    stack = least_privilege()
    _seed_departments(stack)
    names, after = _results_store().departments(prefix="F", limit=10, after=None)
    assert (names, after) == (["Facilities", "Finance"], None)
    assert _results_store().department("Research")["department"] == "Research"
    assert refusals(stack) == []
    granted = {(a, r) for c, a, r in stack.iam.granted if ":assumed-role/results-api-reader/" in c}
    assert ("dynamodb:Query", DEPARTMENT_INDEX_ARN) in granted
    assert ("kms:Decrypt", data_key_arn(stack)) in granted  # KMS is checked for this role


def test_without_the_index_statement_the_department_list_is_refused_on_the_index_arn(
    least_privilege, tmp_path
):
    stack = least_privilege(
        template_changed(tmp_path, without_statement("ResultsApiPolicy", "QueryTheResultIndexes"))
    )
    _seed_departments(stack)
    message = access_denied(lambda: _results_store().departments(prefix="", limit=10, after=None))
    assert DEPARTMENT_INDEX_ARN in message
    assert refusals(stack) == [("dynamodb:Query", DEPARTMENT_INDEX_ARN)]
    assert _results_store().department("Finance") is not None  # the table itself is still readable


def test_without_the_key_grant_every_read_of_the_encrypted_tables_is_refused(least_privilege, tmp_path):
    stack = least_privilege(
        template_changed(tmp_path, without_statement("ResultsApiPolicy", "DecryptTheTablesThroughDynamoDB"))
    )
    _seed_departments(stack)
    key = data_key_arn(stack)
    message = access_denied(lambda: _results_store().department("Finance"))
    assert "kms:Decrypt" in message and key in message
    access_denied(lambda: _results_store().departments(prefix="", limit=10, after=None))
    assert set(refusals(stack)) == {("kms:Decrypt", key)}


def test_a_key_policy_grant_through_dynamodb_is_enough_and_only_through_dynamodb(least_privilege, tmp_path):
    """The other way AWS allows it: the key policy names the role, with kms:ViaService and kms:CallerAccount."""

    def grant_in_the_key_policy(via_service: str):
        def change(resources):
            without_statement("ResultsApiPolicy", "DecryptTheTablesThroughDynamoDB")(resources)
            resources["DataKey"]["Properties"]["KeyPolicy"]["Statement"].append(
                {
                    "Sid": "ResultsApiReadsThroughDynamoDB",
                    "Effect": "Allow",
                    "Principal": {"AWS": {"Fn::GetAtt": ["ResultsApiRole", "Arn"]}},
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"kms:ViaService": via_service, "kms:CallerAccount": ACCOUNT_ID}
                    },
                }
            )

        return change

    stack = least_privilege(
        template_changed(tmp_path, grant_in_the_key_policy("dynamodb.us-east-1.amazonaws.com"))
    )
    _seed_departments(stack)
    assert _results_store().department("Finance") is not None
    assert refusals(stack) == []

    stack = least_privilege(
        template_changed(tmp_path, grant_in_the_key_policy("sqs.us-east-1.amazonaws.com"))
    )
    _seed_departments(stack)
    access_denied(lambda: _results_store().department("Finance"))
    assert refusals(stack) == [("kms:Decrypt", data_key_arn(stack))]


def test_a_key_policy_that_does_not_delegate_to_the_account_makes_identity_grants_useless(
    least_privilege, tmp_path
):
    """Without the key policy's account statement, IAM policies alone cannot use the key (as in AWS)."""

    def no_delegation(resources):
        statements = resources["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
        resources["DataKey"]["Properties"]["KeyPolicy"]["Statement"] = [
            s for s in statements if s["Sid"] != "AccountAdministersTheKeyThroughIam"
        ]

    stack = least_privilege(template_changed(tmp_path, no_delegation))
    _seed_departments(stack)
    message = access_denied(lambda: _results_store().department("Finance"))
    assert "key policy" in message


# -- the workers' base identity: its secrets, nothing else ------------------------------------


def _store_secret(stack, name: str, value: str) -> None:
    stack.client("secretsmanager").create_secret(Name=name, SecretString=value, KmsKeyId=data_key_arn(stack))


def _workers_secrets_client(stack):
    import boto3

    # the environment's credentials: the workers' own session (least_privilege sets them)
    return boto3.session.Session().client(
        "secretsmanager", endpoint_url=stack.endpoint_url, region_name="us-east-1"
    )


def test_the_workers_read_their_secrets_and_no_other(least_privilege):
    stack = least_privilege()
    # alert_emails is the stack's own secret (parameter AlertEmails; offline provision gives it)
    _store_secret(stack, "airflow/connections/smtp_default", json.dumps({"conn_type": "smtp"}))
    _store_secret(stack, "payroll/database", "hunter2")
    secrets = _workers_secrets_client(stack)
    assert (
        secrets.get_secret_value(SecretId="airflow/variables/alert_emails")["SecretString"]
        == "data-team@example.com"
    )
    assert secrets.get_secret_value(SecretId="airflow/connections/smtp_default")["SecretString"]
    assert refusals(stack) == []
    assert ("kms:Decrypt", data_key_arn(stack)) in {(a, r) for _c, a, r in stack.iam.granted}
    access_denied(lambda: secrets.get_secret_value(SecretId="payroll/database"))
    access_denied(
        lambda: secrets.put_secret_value(SecretId="airflow/variables/alert_emails", SecretString="x")
    )


@pytest.mark.parametrize(
    ("sid", "refused_action"),
    [
        ("ReadTheAirflowSecrets", "secretsmanager:GetSecretValue"),
        ("DecryptTheSecretsThroughSecretsManager", "kms:Decrypt"),
    ],
)
def test_without_the_secret_read_or_its_key_the_workers_cannot_read_their_variables(
    least_privilege, tmp_path, sid, refused_action
):
    stack = least_privilege(
        template_changed(tmp_path, without_statement("WorkersAssumePipelineRolesPolicy", sid))
    )
    secrets = _workers_secrets_client(stack)  # alert_emails: the stack's own secret
    access_denied(lambda: secrets.get_secret_value(SecretId="airflow/variables/alert_emails"))
    assert [action for action, _resource in refusals(stack)] == [refused_action]


# -- the directory queue watcher: receive, delete, and the key ----------------------------------


def _directory_sqs():
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    return SqsHook(aws_conn_id="aws_directory").get_conn()  # the watcher's connection (MessageQueueTrigger)


def test_the_queue_watcher_receives_and_deletes_encrypted_events(least_privilege):
    stack = least_privilege()
    url = stack.client("sqs").get_queue_url(QueueName="directory-events")["QueueUrl"]
    stack.client("sqs").send_message(QueueUrl=url, MessageBody='{"Records": []}')
    sqs = _directory_sqs()
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    # S3's s3:TestEvent (sent when the bucket's notifications were set) and ours
    assert '{"Records": []}' in [m["Body"] for m in messages]
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert refusals(stack) == []
    granted = {(a, r) for c, a, r in stack.iam.granted if "pipeline-department-directory" in c}
    assert ("kms:Decrypt", data_key_arn(stack)) in granted


@pytest.mark.parametrize(
    ("sid", "refused_action"),
    [("Events", "sqs:ReceiveMessage"), ("EncryptedObjectsAndEvents", "kms:Decrypt")],
)
def test_without_the_receive_or_its_key_the_watcher_gets_nothing(
    least_privilege, tmp_path, sid, refused_action
):
    stack = least_privilege(template_changed(tmp_path, without_statement("DepartmentDirectoryPolicy", sid)))
    url = stack.client("sqs").get_queue_url(QueueName="directory-events")["QueueUrl"]
    stack.client("sqs").send_message(QueueUrl=url, MessageBody='{"Records": []}')
    access_denied(lambda: _directory_sqs().receive_message(QueueUrl=url, MaxNumberOfMessages=10))
    assert [action for action, _resource in refusals(stack)] == [refused_action]
