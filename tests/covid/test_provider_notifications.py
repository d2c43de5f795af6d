"""covid_daily notifies through the Amazon provider: SnsPublishOperator for the success
notice, an SnsNotifier subclass for the failure message; e-mail subscribers still read plain text."""

from __future__ import annotations

import json

from airflow.providers.amazon.aws.notifications.sns import SnsNotifier
from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator

from pipelines.covid.notifications import CovidFailureSnsNotifier
from tests.conftest import load_dag, run_dag
from tests.covid.test_domain import JHU, NYT


def _subscribe_mailbox(aws, mailbox) -> str:
    from localaws.sns import email as sns_email

    sns = aws.client("sns")
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":covid-refresh"))
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="covid@example.com")
    sns_email.set_relay("127.0.0.1", mailbox.port)
    return topic


def _mails_to_subscriber(mailbox, address: str = "covid@example.com") -> list:
    """The SNS e-mails to the test's subscriber (the alert e-mails go to other addresses)."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        mails = [m for m in list(mailbox.messages) if address in m.recipients]
        if mails:
            time.sleep(0.5)  # a second one would be a duplicate: give it the time to arrive
            return [m for m in list(mailbox.messages) if address in m.recipients]
        time.sleep(0.2)
    raise TimeoutError(f"no e-mail to {address}: {[m.subject for m in mailbox.messages]}")


def test_the_dag_uses_the_providers_operator_and_notifier(airflow_db):
    dag = load_dag("covid_daily")
    assert isinstance(dag.task_dict["notify_success"], SnsPublishOperator)
    callbacks = dag.task_dict["extract"].on_failure_callback
    assert any(isinstance(cb, SnsNotifier) and isinstance(cb, CovidFailureSnsNotifier) for cb in callbacks)


def test_success_notice_is_published_by_the_operator_and_mailed_as_plain_text(
    airflow_db, aws, mailbox, tmp_path
):
    from localaws.sns import email as sns_email

    topic = _subscribe_mailbox(aws, mailbox)
    (tmp_path / "cases.csv").write_bytes(NYT)
    (tmp_path / "recoveries.csv").write_bytes(JHU)
    conf = {"cases_url": str(tmp_path / "cases.csv"), "recoveries_url": str(tmp_path / "recoveries.csv")}
    try:
        assert run_dag(load_dag("covid_daily"), conf=conf).state == "success"
        [mail] = _mails_to_subscriber(mailbox)
    finally:
        sns_email.set_relay(None)
    [published] = [m for m in aws.sent()["sns"] if m["topic_arn"] == topic]
    # the provider's publish: MessageStructure json, the text as "default"
    assert json.loads(published["document"]) == {"default": published["message"]}
    assert "Inserted: 420\nUpdated: 0\nDeleted: 0\nUnchanged: 0" in published["message"]
    assert mail.text.startswith("The covid_stats table was refreshed successfully.")  # plain, not JSON
    assert "Inserted: 420" in mail.text


def test_failure_message_goes_through_the_notifier_with_the_failures_facts(aws, mailbox):
    from localaws.sns import email as sns_email

    topic = _subscribe_mailbox(aws, mailbox)

    class Ti:
        dag_id, task_id, run_id, try_number, log_url = "covid_daily", "load", "manual__1", 2, "http://log/1"

    try:
        CovidFailureSnsNotifier().notify({"ti": Ti(), "exception": TimeoutError("dynamodb timed out")})
        [mail] = _mails_to_subscriber(mailbox)
    finally:
        sns_email.set_relay(None)
    [published] = [m for m in aws.sent()["sns"] if m["topic_arn"] == topic]
    assert published["subject"] == mail.subject == "COVID data refresh FAILED (load)"
    assert json.loads(published["document"]) == {"default": published["message"]}
    for text in (published["message"], mail.text.replace("\r\n", "\n")):
        assert "The load ended without reporting what it wrote (TimeoutError)" in text
        assert "Earlier attempts (tries 1-1) may have applied writes too." in text
        assert "Task: load\nRun: manual__1\nError: TimeoutError: dynamodb timed out\nLog: http://log/1" in text
