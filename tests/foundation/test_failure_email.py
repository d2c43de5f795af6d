"""A failing task e-mails the alert recipients through a real SMTP server."""

from __future__ import annotations

import os

import pytest

from pipelines.alerts import FailureEmailNotifier
from tests.conftest import REPO, load_dag

TEST_DAGS = REPO / "tests" / "dags"


def _failing_dag():
    return load_dag("alert_check", TEST_DAGS)


def test_failing_task_emails_dag_task_run_exception_try_and_log_link(airflow_db, mailbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_ALERT_EMAILS", "oncall@example.com, lead@example.com")
    run = _failing_dag().test()
    assert run.state == "failed"

    [mail] = mailbox.wait_for(1)
    assert sorted(mail.recipients) == ["lead@example.com", "oncall@example.com"]
    assert "alert_check" in mail.subject and "explode" in mail.subject
    assert run.run_id in mail.subject
    body = mail.text
    assert "ValueError" in body and "row 7: bad date" in body
    assert "<th align='left'>Try</th><td>1</td>" in body
    assert "dag_id=alert_check" in body or "/dags/alert_check/" in body  # the log link


def test_no_email_when_alert_emails_is_empty(airflow_db, mailbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_ALERT_EMAILS", "")
    run = _failing_dag().test()
    assert run.state == "failed"
    with pytest.raises(TimeoutError):
        mailbox.wait_for(1, timeout=2)


def test_unreachable_smtp_is_logged_and_does_not_mask_the_failure(airflow_db, monkeypatch, caplog):
    from localaws.server import free_port

    monkeypatch.setenv("AIRFLOW_VAR_ALERT_EMAILS", "oncall@example.com")
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_BROKEN",
        f'{{"conn_type": "smtp", "host": "127.0.0.1", "port": {free_port()}, '
        '"extra": {"disable_ssl": true, "disable_tls": true, "timeout": 2, "retry_limit": 0}}',
    )

    class Ti:
        dag_id, task_id, run_id, try_number, log_url = "d", "t", "r", 1, "http://log"

    FailureEmailNotifier(smtp_conn_id="smtp_broken").notify({"ti": Ti(), "exception": ValueError("x")})
    assert "Could not send the failure e-mail" in caplog.text
    assert os.environ["AIRFLOW_VAR_ALERT_EMAILS"] == "oncall@example.com"
