"""The offline stack's SNS e-mail delivery and CloudFormation change sets (what `aws cloudformation deploy` does)."""

from __future__ import annotations

import json

import pytest

from localaws.sns import email as sns_email

TEMPLATE = """
Description: two resources and their outputs
Parameters:
  QueueName: {Type: String, Default: first-queue}
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties: {QueueName: {Ref: QueueName}}
  Topic:
    Type: AWS::SNS::Topic
    Properties: {TopicName: news, DisplayName: The News}
Outputs:
  QueueUrl: {Value: {Ref: Queue}}
  TopicArn: {Value: {Ref: Topic}}
"""


@pytest.fixture
def stack_with_mail():
    from devtools.smtp_catcher import SmtpCatcher
    from localaws import LocalAWS

    with SmtpCatcher() as catcher, LocalAWS(smtp=("127.0.0.1", catcher.port)) as aws:
        yield aws, catcher


def test_an_email_subscriber_receives_each_publish_as_aws_sends_it(stack_with_mail):
    aws, catcher = stack_with_mail
    sns = aws.client("sns")
    topic = sns.create_topic(Name="covid-refresh", Attributes={"DisplayName": "COVID data refresh"})[
        "TopicArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="reader@example.com")
    sns.subscribe(TopicArn=topic, Protocol="email-json", Endpoint="robot@example.com")
    sns.subscribe(
        TopicArn=topic, Protocol="email", Endpoint="only-failures@example.com",
        Attributes={"FilterPolicy": json.dumps({"status": ["FAILED"]})},
    )  # fmt: skip
    message_id = sns.publish(
        TopicArn=topic, Subject="covid_daily SUCCEEDED", Message="420 rows loaded",
        MessageAttributes={"status": {"DataType": "String", "StringValue": "SUCCEEDED"}},
    )["MessageId"]  # fmt: skip

    mails = {mail.recipients[0]: mail for mail in catcher.wait_for(2, timeout=10)}
    assert set(mails) == {"reader@example.com", "robot@example.com"}  # the filter kept the third out
    plain = mails["reader@example.com"]
    assert plain.subject == "covid_daily SUCCEEDED"
    assert plain.message["From"] == "COVID data refresh <no-reply@sns.amazonaws.com>"
    assert plain.text.splitlines()[0] == "420 rows loaded" and "unsubscribe" in plain.text
    document = json.loads(mails["robot@example.com"].text)
    assert (document["Type"], document["MessageId"], document["TopicArn"], document["Message"]) == (
        "Notification", message_id, topic, "420 rows loaded",
    )  # fmt: skip


def test_a_publish_without_subject_or_subscriber_relay_sends_nothing_else(stack_with_mail):
    aws, catcher = stack_with_mail
    sns = aws.client("sns")
    topic = sns.create_topic(Name="plain")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="a@example.com")
    sns.publish(TopicArn=topic, Message="no subject")
    [mail] = catcher.wait_for(1, timeout=10)
    assert mail.subject == "AWS Notification Message"
    sns_email.set_relay(None)
    sns.publish(TopicArn=topic, Message="after the relay is gone")
    assert aws.sent()["sns"][-1]["message"] == "after the relay is gone"  # recorded, not mailed
    assert len(catcher.messages) == 1


def test_an_unreachable_relay_never_fails_the_publish():
    from localaws import LocalAWS
    from localaws.server import free_port

    with LocalAWS(smtp=("127.0.0.1", free_port())) as aws:
        sns = aws.client("sns")
        topic = sns.create_topic(Name="t")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="a@example.com")
        assert sns.publish(TopicArn=topic, Message="m")["MessageId"]


def test_the_relay_is_set_through_the_control_api():
    import urllib.request

    from localaws import LocalAWS

    with LocalAWS() as aws:
        request = urllib.request.Request(
            f"{aws.endpoint_url}/_localaws/smtp", data=json.dumps({"host": "127.0.0.1", "port": 2525}).encode(),
            method="POST",
        )  # fmt: skip
        with urllib.request.urlopen(request) as response:
            assert json.load(response) == {"host": "127.0.0.1", "port": 2525}
        sns_email.set_relay(None)


def test_parse_relay_names_the_setting():
    assert sns_email.parse_relay("smtp-catcher:1025") == ("smtp-catcher", 1025)
    with pytest.raises(ValueError, match="LOCALAWS_SMTP must be host:port"):
        sns_email.parse_relay("smtp-catcher")


def test_a_stack_created_and_updated_through_change_sets_answers_its_outputs():
    from localaws import LocalAWS

    with LocalAWS() as aws:
        cfn = aws.client("cloudformation")
        cfn.create_change_set(
            StackName="s", ChangeSetName="create", ChangeSetType="CREATE", TemplateBody=TEMPLATE
        )
        cfn.get_waiter("change_set_create_complete").wait(StackName="s", ChangeSetName="create")
        assert cfn.describe_stacks(StackName="s")["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"
        cfn.execute_change_set(StackName="s", ChangeSetName="create")
        cfn.get_waiter("stack_create_complete").wait(StackName="s")
        stack = cfn.describe_stacks(StackName="s")["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        assert outputs["QueueUrl"].endswith("/123456789012/first-queue")
        assert outputs["TopicArn"] == "arn:aws:sns:us-east-1:123456789012:news"
        assert stack["Description"] == "two resources and their outputs"

        cfn.create_change_set(
            StackName="s", ChangeSetName="update", ChangeSetType="UPDATE", TemplateBody=TEMPLATE.replace(
                "TopicArn: {Value: {Ref: Topic}}", "TopicArn: {Value: {Ref: Topic}}\n  Extra: {Value: added}"
            ),
        )  # fmt: skip
        cfn.get_waiter("change_set_create_complete").wait(StackName="s", ChangeSetName="update")
        cfn.execute_change_set(StackName="s", ChangeSetName="update")
        cfn.get_waiter("stack_update_complete").wait(StackName="s")
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in cfn.describe_stacks(StackName="s")["Stacks"][0]["Outputs"]
        }
        assert outputs["Extra"] == "added"
