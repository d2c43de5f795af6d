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


def test_the_log_link_is_absolute_and_opens_the_task_log_on_a_running_api_server(
    airflow_db, mailbox, monkeypatch, running_api_server, api_token
):
    """The link is built from ``[api] base_url``: it must reach the task's page and log, not localhost."""
    import html
    import re
    from urllib.parse import parse_qs, unquote, urlsplit

    import requests

    monkeypatch.setenv("AIRFLOW_VAR_ALERT_EMAILS", "oncall@example.com")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", running_api_server)
    run = _failing_dag().test()
    assert run.state == "failed"
    [mail] = mailbox.wait_for(1)
    [link] = {html.unescape(href) for href in re.findall(r'href="([^"]+)"', mail.text)}

    parts = urlsplit(link)
    assert (parts.scheme, f"{parts.scheme}://{parts.netloc}") == ("http", running_api_server), link
    match = re.fullmatch(r"/dags/(?P<dag>[^/]+)/runs/(?P<run>[^/]+)/tasks/(?P<task>[^/]+)", parts.path)
    assert match, f"not a task instance page: {link}"
    assert (match["dag"], unquote(match["run"]), match["task"]) == ("alert_check", run.run_id, "explode")
    try_number = int(parse_qs(parts.query)["try_number"][0])

    auth = {"Authorization": f"Bearer {api_token}"}
    page = requests.get(link, headers=auth, timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    api = f"{running_api_server}/api/v2/dags/alert_check/dagRuns/{match['run']}/taskInstances"
    instance = requests.get(f"{api}/explode", headers=auth, timeout=30)
    assert instance.status_code == 200, instance.text  # the link names a real task instance
    assert (instance.json()["state"], instance.json()["try_number"]) == ("failed", try_number)
    log = requests.get(f"{api}/explode/logs/{try_number}", headers={**auth, "Accept": "application/json"}, timeout=30)
    assert log.status_code == 200, log.text
    assert "content" in log.json()
    # dag.test() runs in-process and writes no log file, so the log's text is not asserted here
    assert requests.get(f"{api}/no_such_task/logs/{try_number}", headers=auth, timeout=30).status_code == 404
    assert requests.get(log.url, timeout=30).status_code == 401  # the log needs the token
