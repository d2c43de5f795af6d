"""Template parameters for who hears from the pipelines (issue 19.3), as the stack applies them.

``CovidSubscriberEmail`` becomes an e-mail subscription of the ``covid-refresh`` topic
(none when empty); ``AlertEmails`` (required) becomes the Variable ``alert_emails``, the
secret ``airflow/variables/alert_emails`` encrypted with the stack's key.
"""

from __future__ import annotations

import pytest
import yaml

from infra.provision import TEMPLATE, provision


def _subscriptions(stack) -> list[tuple[str, str]]:
    sns = stack.client("sns")
    (topic,) = [
        t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":covid-refresh")
    ]
    return [
        (s["Protocol"], s["Endpoint"])
        for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    ]


def _alert_emails(stack) -> str:
    return stack.client("secretsmanager").get_secret_value(SecretId="airflow/variables/alert_emails")[
        "SecretString"
    ]


def test_the_parameters_subscribe_the_covid_address_and_store_the_alert_recipients(local_aws):
    local_aws.reset()
    provision(
        local_aws.endpoint_url,
        {
            "CovidSubscriberEmail": "covid-list@example.org",
            "AlertEmails": "oncall@example.org,lead@example.org",
        },
    )
    assert _subscriptions(local_aws) == [("email", "covid-list@example.org")]
    assert _alert_emails(local_aws) == "oncall@example.org,lead@example.org"
    secret = local_aws.client("secretsmanager").describe_secret(SecretId="airflow/variables/alert_emails")
    queue = local_aws.client("sqs").get_queue_url(QueueName="directory-events")["QueueUrl"]
    data_key = local_aws.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["KmsMasterKeyId"])
    assert secret["KmsKeyId"] == data_key["Attributes"]["KmsMasterKeyId"]  # the stack's key
    # deploying again (an update) neither duplicates the subscription nor loses a changed recipient
    provision(
        local_aws.endpoint_url,
        {"CovidSubscriberEmail": "covid-list@example.org", "AlertEmails": "oncall@example.org"},
    )
    assert _subscriptions(local_aws) == [("email", "covid-list@example.org")]
    assert _alert_emails(local_aws) == "oncall@example.org"


def test_no_covid_subscriber_when_the_parameter_is_empty(local_aws):
    local_aws.reset()
    provision(local_aws.endpoint_url, {"CovidSubscriberEmail": ""})
    assert _subscriptions(local_aws) == []


def test_the_alert_recipients_are_required_and_checked_on_aws():
    parameters = yaml.safe_load(TEMPLATE.read_text())["Parameters"]
    assert "Default" not in parameters["AlertEmails"]  # CloudFormation refuses a deploy without it
    import re

    pattern = parameters["AlertEmails"]["AllowedPattern"]
    assert re.fullmatch(pattern, "a@example.org,b@example.org")
    for bad in ("", "a@example.org, b@example.org", "not-an-address", "a@example.org,"):
        assert not re.fullmatch(pattern, bad), bad
    assert parameters["CovidSubscriberEmail"]["Default"] == ""


@pytest.mark.parametrize("resource", ["CovidRefreshEmailSubscription", "AlertEmailsVariable"])
def test_the_template_declares_them_as_aws_resources(resource):
    resources = yaml.safe_load(TEMPLATE.read_text())["Resources"]
    declared = resources[resource]
    if resource == "CovidRefreshEmailSubscription":
        assert declared["Type"] == "AWS::SNS::Subscription" and declared["Condition"] == "HasCovidSubscriber"
        assert declared["Properties"]["Protocol"] == "email"
    else:
        assert declared["Type"] == "AWS::SecretsManager::Secret"
        assert declared["Properties"]["Name"] == "airflow/variables/alert_emails"
        assert declared["Properties"]["KmsKeyId"] == {"Ref": "DataKey"}
