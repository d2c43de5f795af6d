"""SQS batch calls are authorized as their single-message action, as in AWS (IAM has no *Batch SQS actions).

Found by the production rehearsal: the directory watcher (MessageQueueTrigger) deletes what it
received with DeleteMessageBatch, which a role granted ``sqs:DeleteMessage`` may do.
"""

from __future__ import annotations

import json

import pytest


def _role_session(aws, actions: list[str]):
    iam = aws.client("iam")
    iam.create_role(
        RoleName="watcher",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}
        ]}),
    )  # fmt: skip
    iam.put_role_policy(
        RoleName="watcher", PolicyName="events",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": actions, "Resource": "arn:aws:sqs:us-east-1:123456789012:events"}
        ]}),
    )  # fmt: skip
    credentials = aws.client("sts").assume_role(
        RoleArn="arn:aws:iam::123456789012:role/watcher", RoleSessionName="watcher"
    )["Credentials"]
    import boto3

    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"], region_name="us-east-1",
    ).client("sqs", endpoint_url=aws.endpoint_url)  # fmt: skip


@pytest.mark.parametrize("granted", [["sqs:ReceiveMessage", "sqs:DeleteMessage"], ["sqs:ReceiveMessage"]])
def test_delete_message_batch_needs_sqs_delete_message(granted):
    from localaws import LocalAWS

    with LocalAWS(enforce_iam=False) as aws:
        aws.reset()  # moto's backends are global to the process
        url = aws.client("sqs").create_queue(QueueName="events")["QueueUrl"]
        aws.client("sqs").send_message(QueueUrl=url, MessageBody="m")
        sqs = _role_session(aws, granted)
        aws.iam.enabled = True
        [message] = sqs.receive_message(QueueUrl=url)["Messages"]
        entries = [{"Id": "1", "ReceiptHandle": message["ReceiptHandle"]}]
        if "sqs:DeleteMessage" in granted:
            assert sqs.delete_message_batch(QueueUrl=url, Entries=entries)["Successful"]
            assert aws.iam.refusals == []
        else:
            with pytest.raises(Exception, match="sqs:DeleteMessage on resource"):
                sqs.delete_message_batch(QueueUrl=url, Entries=entries)
            assert [r["action"] for r in aws.iam.refusals] == ["sqs:DeleteMessage"]
