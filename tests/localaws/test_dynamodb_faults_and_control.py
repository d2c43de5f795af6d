"""DynamoDB limits, fault injection, what SES/SNS sent, and the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localaws.faults import FaultSettings
from localaws.server import free_port
from pipelines.aws.dynamodb import put_items, query_keys


def _items(n):
    return [{"PutRequest": {"Item": {"region_id": {"S": "1"}, "type_id": {"S": str(i)}}}} for i in range(n)]


def test_batch_write_over_25_requests_is_refused_like_aws(aws):
    dynamodb = aws.client("dynamodb")
    with pytest.raises(ClientError) as error:
        dynamodb.batch_write_item(RequestItems={"market_orders": _items(26)})
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert "less than or equal to 25" in error.value.response["Error"]["Message"]


def test_unprocessed_items_come_back_and_the_shared_writer_still_writes_everything(aws):
    dynamodb = aws.client("dynamodb")
    aws.set_faults(dynamodb_unprocessed_rate=1.0, seed=7)
    response = dynamodb.batch_write_item(RequestItems={"market_orders": _items(25)})
    assert response["UnprocessedItems"]["market_orders"]
    aws.set_faults(dynamodb_unprocessed_rate=0.6, dynamodb_throttle_rate=0.3)
    written = put_items(
        aws.client("dynamodb"),
        "market_orders",
        ({"region_id": "2", "type_id": str(i), "v": 1.5} for i in range(300)),
    )
    aws.set_faults(dynamodb_unprocessed_rate=0, dynamodb_throttle_rate=0)
    assert written == 300
    assert len(list(query_keys(dynamodb, "market_orders", "region_id", "2", "type_id"))) == 300


def test_throttling_is_an_error_botocore_retries(aws):
    aws.set_faults(dynamodb_throttle_rate=1.0)
    import boto3

    raw = boto3.client(
        "dynamodb", endpoint_url=aws.endpoint_url, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )  # fmt: skip
    with pytest.raises(ClientError) as error:
        raw.batch_write_item(RequestItems={"market_orders": _items(1)})
    assert error.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"


def test_s3_slowdown_503s_are_injected(aws):
    import boto3

    raw = boto3.client(
        "s3", endpoint_url=aws.endpoint_url, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )  # fmt: skip
    aws.set_faults(s3_slowdown_rate=1.0)
    with pytest.raises(ClientError) as error:
        raw.put_object(Bucket="pipelines-data-lake", Key="x", Body=b"x")
    assert error.value.response["Error"]["Code"] == "SlowDown"
    aws.set_faults(s3_slowdown_rate=0.0)
    raw.put_object(Bucket="pipelines-data-lake", Key="x", Body=b"x")


def test_faults_from_environment_and_control_endpoint(aws):
    settings = FaultSettings.from_env({"LOCALAWS_DYNAMODB_THROTTLE_RATE": "0.25", "LOCALAWS_FAULT_SEED": "3"})
    assert (settings.dynamodb_throttle_rate, settings.seed) == (0.25, 3)
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultSettings.from_env({"LOCALAWS_S3_SLOWDOWN_RATE": "2"})
    request = urllib.request.Request(
        f"{aws.endpoint_url}/_localaws/faults",
        data=json.dumps({"s3_slowdown_rate": 0.5}).encode(),
        method="POST",
    )
    assert json.load(urllib.request.urlopen(request))["s3_slowdown_rate"] == 0.5
    aws.set_faults(s3_slowdown_rate=0)


def test_sent_shows_sns_publishes_and_ses_emails(aws):
    sns, ses = aws.client("sns"), aws.client("ses")
    arn = sns.create_topic(Name="covid-refresh")["TopicArn"]
    sns.publish(TopicArn=arn, Subject="COVID refresh succeeded", Message="inserted 3")
    ses.verify_email_identity(EmailAddress="from@example.com")
    ses.send_email(
        Source="from@example.com",
        Destination={"ToAddresses": ["to@example.com"]},
        Message={"Subject": {"Data": "hello"}, "Body": {"Text": {"Data": "body"}}},
    )
    sent = json.load(urllib.request.urlopen(f"{aws.endpoint_url}/_localaws/sent"))
    assert [(m["topic_arn"], m["subject"], m["message"]) for m in sent["sns"]] == [
        (arn, "COVID refresh succeeded", "inserted 3")
    ]
    assert sent["ses"][0]["subject"] == "hello" and sent["ses"][0]["destinations"]["ToAddresses"] == [
        "to@example.com"
    ]


def test_command_line_serves_and_stops_on_sigterm():
    port = free_port()
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, "-m", "localaws", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120  # a loaded 2-core machine takes over 30 s to import moto + duckdb
        while True:
            try:
                health = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/_localaws/health"))
                break
            except OSError:
                assert time.monotonic() < deadline, "localaws did not start"
                time.sleep(0.2)
        assert health == {"status": "ok"}
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert "localaws stopped" in output
    finally:
        if proc.poll() is None:
            proc.kill()
