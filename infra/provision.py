"""Apply ``infra/pipelines.yaml`` to an AWS endpoint (the offline stack, or real AWS).

The template goes through CloudFormation as ``aws cloudformation deploy`` sends it (a
change set, executed; the stack's outputs from DescribeStacks). moto's CloudFormation
skips some of it, which this module then applies from the same template with
plain API calls, so local and production resources still come from one file:

* ``AWS::Glue::Database``        -> glue.create_database
* ``AWS::Glue::Crawler``         -> glue.create_crawler / update_crawler (the offline stack's
  crawlers, which crawl; moto's CloudFormation has no crawler type)
* ``AWS::SQS::QueuePolicy``      -> sqs.set_queue_attributes(Policy=...)
* ``AWS::S3::BucketPolicy``      -> s3.put_bucket_policy
* the bucket's encryption, public access block, versioning, lifecycle rules and
  notifications -> the matching s3.put_bucket_* calls
* a table's point-in-time recovery -> dynamodb.update_continuous_backups
* ``AWS::SNS::Subscription``     -> sns.subscribe (when its Condition holds)
* ``AWS::SecretsManager::Secret`` -> secretsmanager.create_secret / put_secret_value

(a table's KMS key comes through: moto keeps the SSESpecification, which localaws'
KMS check reads; moto's DescribeTable does not show it, so the template test checks it.)

Usage: ``python -m infra.provision --endpoint-url http://127.0.0.1:4566``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import yaml

TEMPLATE = Path(__file__).with_name("pipelines.yaml")
STACK_NAME = "aws-pipelines"
ACCOUNT_ID = "123456789012"  # moto's account
REGION = "us-east-1"
# The template's required parameters, offline: the addresses the SMTP catcher receives for.
OFFLINE_PARAMETERS = {
    "AlertEmails": "data-team@example.com",
    "CovidSubscriberEmail": "covid-subscribers@example.com",
}


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


class Resolver:
    """Enough of CloudFormation's intrinsic functions for the fallback resources."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str], physical: dict[str, str]):
        self.values = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
        self.values.update(parameters)
        self.values.update({"AWS::AccountId": ACCOUNT_ID, "AWS::Region": REGION, "AWS::Partition": "aws"})
        self.physical = physical
        self.template = template

    def arn(self, logical_id: str) -> str:
        resource = self.template["Resources"][logical_id]
        name = self.physical[logical_id]
        kind = resource["Type"]
        if kind == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name.rsplit('/', 1)[-1]}"
        if kind == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
        if kind == "AWS::KMS::Key":
            return f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{name}"
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"
        raise ValueError(f"Fn::GetAtt Arn of {kind} is not resolved offline")

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            name = value["Ref"]
            return self.values[name] if name in self.values else self.physical[name]
        if set(value) == {"Fn::Sub"}:
            text = value["Fn::Sub"]
            for name, replacement in self.values.items():
                text = text.replace("${" + name + "}", str(replacement))
            return text
        if set(value) == {"Fn::GetAtt"}:
            logical_id, attribute = value["Fn::GetAtt"]
            assert attribute == "Arn", attribute
            return self.arn(logical_id)
        return {k: self(v) for k, v in value.items()}

    def condition(self, name: str | None) -> bool:
        """Whether a resource's ``Condition`` holds (Fn::Equals, Fn::Not, Fn::And, Fn::Or)."""
        return True if name is None else self._holds(self.template["Conditions"][name])

    def _holds(self, expression: Any) -> bool:
        ((function, arguments),) = expression.items()
        if function == "Condition":
            return self.condition(arguments)
        if function == "Fn::Equals":
            left, right = (self(a) for a in arguments)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self._holds(arguments[0])
        if function == "Fn::And":
            return all(self._holds(a) for a in arguments)
        if function == "Fn::Or":
            return any(self._holds(a) for a in arguments)
        raise ValueError(f"condition function {function} is not resolved offline")


def _session_client(service: str, endpoint_url: str | None) -> Any:
    return boto3.client(service, endpoint_url=endpoint_url, region_name=REGION)


def _deploy_stack(cfn: Any, body: str, parameters: dict[str, str]) -> None:
    """What ``aws cloudformation deploy`` does: a change set (CREATE for a new stack, UPDATE
    otherwise), wait until it is ready, execute it, wait for the stack. A change set with no
    changes is deleted and the deploy succeeds (the CLI's ``--no-fail-on-empty-changeset``)."""
    params = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    existing = {
        s["StackName"]: s["StackStatus"]
        for s in cfn.list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    }
    kind = "UPDATE" if existing.get(STACK_NAME, "REVIEW_IN_PROGRESS") != "REVIEW_IN_PROGRESS" else "CREATE"
    name = f"deploy-{time.time_ns()}"
    cfn.create_change_set(
        StackName=STACK_NAME, ChangeSetName=name, ChangeSetType=kind, TemplateBody=body,
        Parameters=params, Capabilities=["CAPABILITY_NAMED_IAM"],
    )  # fmt: skip
    for _ in range(120):
        change_set = cfn.describe_change_set(StackName=STACK_NAME, ChangeSetName=name)
        if change_set["Status"] == "CREATE_COMPLETE":
            break
        if change_set["Status"] == "FAILED":
            reason = change_set.get("StatusReason", "")
            if "didn't contain changes" in reason or "No updates are to be performed" in reason:
                cfn.delete_change_set(StackName=STACK_NAME, ChangeSetName=name)
                return
            raise RuntimeError(f"change set {name} of {STACK_NAME} failed: {reason}")
        time.sleep(1)
    else:
        raise TimeoutError(f"change set {name} of {STACK_NAME} still not ready")
    cfn.execute_change_set(StackName=STACK_NAME, ChangeSetName=name)
    for _ in range(120):
        status = cfn.describe_stacks(StackName=STACK_NAME)["Stacks"][0]["StackStatus"]
        if status.endswith("_COMPLETE") and "ROLLBACK" not in status:
            return
        if status.endswith("FAILED") or "ROLLBACK" in status:
            raise RuntimeError(f"stack {STACK_NAME} ended in {status}")
        time.sleep(1)
    raise TimeoutError(f"stack {STACK_NAME} still not complete")


def stack_outputs(endpoint_url: str | None = None) -> dict[str, str]:
    """The deployed stack's outputs (DescribeStacks), {OutputKey: OutputValue}: what an
    operator reads after ``aws cloudformation deploy`` to configure Airflow."""
    cfn = _session_client("cloudformation", endpoint_url)
    stack = cfn.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def provision(
    endpoint_url: str | None = None, parameters: dict[str, str] | None = None, template_path: Path = TEMPLATE
) -> dict[str, str]:
    """Create or update every resource; answer {logical id: physical id}."""
    parameters = parameters or {}
    template = load_template(template_path)
    if endpoint_url:
        known = template["Parameters"]
        parameters = {**{k: v for k, v in OFFLINE_PARAMETERS.items() if k in known}, **parameters}
    iam = _session_client("iam", endpoint_url)
    if endpoint_url:  # offline: the roles the Airflow processes run as, which a real account already has
        for parameter in ("AirflowRoleName", "ApiServerRoleName"):
            _ensure_base_role(iam, parameters.get(parameter, template["Parameters"][parameter]["Default"]))

    cfn = _session_client("cloudformation", endpoint_url)
    _deploy_stack(cfn, template_path.read_text(), parameters)
    physical = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in cfn.list_stack_resources(StackName=STACK_NAME)["StackResourceSummaries"]
        if r["LogicalResourceId"]
    }
    if endpoint_url:
        _apply_what_moto_skips(template, Resolver(template, parameters, physical), endpoint_url)
    return physical


def _ensure_base_role(iam: Any, role_name: str) -> None:
    try:
        iam.get_role(RoleName=role_name)
    except iam.exceptions.NoSuchEntityException:
        iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "ec2.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )


def _apply_what_moto_skips(template: dict[str, Any], resolve: Resolver, endpoint_url: str) -> None:
    for resource in template["Resources"].values():
        apply = _MOTO_SKIPS.get(resource["Type"])
        if apply is not None and resolve.condition(resource.get("Condition")):
            apply(resolve(resource.get("Properties", {})), endpoint_url)


def _glue_database(properties: dict[str, Any], endpoint_url: str) -> None:
    glue = _session_client("glue", endpoint_url)
    try:
        glue.create_database(DatabaseInput=properties["DatabaseInput"])
    except glue.exceptions.AlreadyExistsException:
        glue.update_database(
            Name=properties["DatabaseInput"]["Name"], DatabaseInput=properties["DatabaseInput"]
        )


def _glue_crawler(properties: dict[str, Any], endpoint_url: str) -> None:
    """The crawler as CloudFormation declares it (same property names as the Glue API); an
    existing crawler is updated to the template, so a changed policy reaches it."""
    glue = _session_client("glue", endpoint_url)
    try:
        glue.create_crawler(**properties)
    except glue.exceptions.AlreadyExistsException:
        glue.update_crawler(**properties)


def _offline_policy(document: dict[str, Any]) -> dict[str, Any] | None:
    """A resource policy without its TLS-only statements: the offline endpoint is plain http,
    and moto evaluates bucket policies, so such a statement would refuse every request."""
    kept = [
        statement
        for statement in document["Statement"]
        if "aws:SecureTransport" not in json.dumps(statement.get("Condition", {}))
    ]
    return {**document, "Statement": kept} if kept else None


def _queue_policy(properties: dict[str, Any], endpoint_url: str) -> None:
    sqs = _session_client("sqs", endpoint_url)
    for queue in properties["Queues"]:
        url = sqs.get_queue_url(QueueName=queue.rsplit("/", 1)[-1])["QueueUrl"]
        policy = _offline_policy(properties["PolicyDocument"])
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy) if policy else ""})


def _bucket_policy(properties: dict[str, Any], endpoint_url: str) -> None:
    s3 = _session_client("s3", endpoint_url)
    policy = _offline_policy(properties["PolicyDocument"])
    if policy:
        s3.put_bucket_policy(Bucket=properties["Bucket"], Policy=json.dumps(policy))
    else:
        s3.delete_bucket_policy(Bucket=properties["Bucket"])


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape; a property we do not map is an error."""
    converted: dict[str, Any] = {
        "ID": rule["Id"],
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    for name, value in rule.items():
        if name in ("Id", "Status", "Prefix"):
            continue
        if name == "ExpirationInDays":
            converted["Expiration"] = {"Days": value}
        elif name in ("NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload"):
            converted[name] = value
        else:
            raise ValueError(f"lifecycle rule {rule['Id']}: {name} is not applied offline")
    return converted


def _bucket(properties: dict[str, Any], endpoint_url: str) -> None:
    """The bucket settings moto's CloudFormation leaves out, so the offline bucket is the real one."""
    s3 = _session_client("s3", endpoint_url)
    bucket = properties["BucketName"]
    if "BucketEncryption" in properties:
        rules = [
            {
                "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                "BucketKeyEnabled": rule.get("BucketKeyEnabled", False),
            }
            for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in properties:
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"]
        )
    if "VersioningConfiguration" in properties:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=properties["VersioningConfiguration"])
    if "LifecycleConfiguration" in properties:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": [_lifecycle_rule(rule) for rule in properties["LifecycleConfiguration"]["Rules"]]
            },
        )
    if "NotificationConfiguration" in properties:
        queues = [
            {
                "QueueArn": q["Queue"],
                "Events": [q["Event"]],
                "Filter": {"Key": {"FilterRules": q["Filter"]["S3Key"]["Rules"]}},
            }
            for q in properties["NotificationConfiguration"].get("QueueConfigurations", [])
        ]
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": queues}
        )


def _table(properties: dict[str, Any], endpoint_url: str) -> None:
    pitr = properties.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
    if pitr:
        dynamodb = _session_client("dynamodb", endpoint_url)
        dynamodb.update_continuous_backups(
            TableName=properties["TableName"],
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )


def _subscription(properties: dict[str, Any], endpoint_url: str) -> None:
    sns = _session_client("sns", endpoint_url)
    existing = sns.list_subscriptions_by_topic(TopicArn=properties["TopicArn"])["Subscriptions"]
    if not any(
        (s["Protocol"], s["Endpoint"]) == (properties["Protocol"], properties["Endpoint"]) for s in existing
    ):
        sns.subscribe(
            TopicArn=properties["TopicArn"], Protocol=properties["Protocol"], Endpoint=properties["Endpoint"]
        )


def _secret(properties: dict[str, Any], endpoint_url: str) -> None:
    secrets = _session_client("secretsmanager", endpoint_url)
    try:
        secrets.create_secret(
            Name=properties["Name"],
            Description=properties.get("Description", ""),
            KmsKeyId=properties.get("KmsKeyId", ""),
            SecretString=properties["SecretString"],
        )
    except secrets.exceptions.ResourceExistsException:
        secrets.put_secret_value(SecretId=properties["Name"], SecretString=properties["SecretString"])


_MOTO_SKIPS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "AWS::Glue::Database": _glue_database,
    "AWS::Glue::Crawler": _glue_crawler,
    "AWS::SQS::QueuePolicy": _queue_policy,
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::S3::Bucket": _bucket,
    "AWS::DynamoDB::Table": _table,
    "AWS::SNS::Subscription": _subscription,
    "AWS::SecretsManager::Secret": _secret,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint-url", help="the offline stack; omit for real AWS")
    parser.add_argument("--bucket", help="override the data lake bucket name")
    args = parser.parse_args()
    parameters = {"BucketName": args.bucket} if args.bucket else {}
    for logical_id, physical_id in provision(args.endpoint_url, parameters).items():
        print(f"{logical_id:32} {physical_id}")


if __name__ == "__main__":
    main()
