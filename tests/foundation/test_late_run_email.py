"""A run past its deadline e-mails the alert recipients: DAG, expected time, link to the run.

The context is the one the scheduler hands the callback (``Deadline.handle_miss``: the run as
the REST API's DAGRunResponse in JSON mode, and the deadline's time).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from pipelines.deadlines import RUN_DEADLINES, email_late_run, late_run_alert


def _context(deadline_time):
    return {
        "dag_run": {
            "dag_run_id": "scheduled__2026-03-04T05:00:00+00:00",
            "dag_id": "market_orders",
            "logical_date": "2026-03-04T05:00:00Z",
            "queued_at": "2026-03-04T05:00:02.500000Z",
            "state": "running",
            "run_type": "scheduled",
        },
        "deadline": {"id": "0198c0de-0000-7000-8000-000000000001", "deadline_time": deadline_time},
    }


@pytest.mark.parametrize(
    "deadline_time",
    [datetime(2026, 3, 4, 5, 45, 2, tzinfo=UTC), "2026-03-04T05:45:02+00:00"],
    ids=["datetime", "iso-string"],
)
def test_late_run_email_names_the_dag_the_expected_time_and_links_the_run(
    mailbox, monkeypatch, deadline_time
):
    monkeypatch.setenv("AIRFLOW_VAR_ALERT_EMAILS", "oncall@example.com, lead@example.com")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")

    assert asyncio.run(email_late_run(context=_context(deadline_time))) is True

    [mail] = mailbox.wait_for(1)
    assert sorted(mail.recipients) == ["lead@example.com", "oncall@example.com"]
    assert mail.subject == (
        "[Airflow] LATE market_orders (run scheduled__2026-03-04T05:00:00+00:00) "
        "not finished by 2026-03-04 05:45:02 UTC"
    )
    body = mail.text
    assert "<th align='left'>DAG</th><td>market_orders</td>" in body
    assert "<th align='left'>Expected by</th><td>2026-03-04 05:45:02 UTC</td>" in body
    assert "<th align='left'>Queued at</th><td>2026-03-04 05:00:02 UTC</td>" in body
    # the run's page, run id URL-quoted (':' and '+' escaped)
    link = "https://airflow.example.com/dags/market_orders/runs/scheduled__2026-03-04T05%3A00%3A00%2B00%3A00"
    assert f'<a href="{link}">{link}</a>' in body


def test_no_late_run_email_when_alert_emails_is_empty(mailbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_ALERT_EMAILS", "")
    assert asyncio.run(email_late_run(context=_context(datetime(2026, 3, 4, 5, 45, tzinfo=UTC)))) is False
    with pytest.raises(TimeoutError):
        mailbox.wait_for(1, timeout=2)


def test_the_deadline_is_measured_from_queueing_and_runs_the_email_in_the_triggerer():
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineReference

    alert = late_run_alert("market_orders")
    assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert alert.interval == timedelta(minutes=45)
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path == "pipelines.deadlines.email_late_run"
    assert set(RUN_DEADLINES) == {"traffic_repartition", "market_orders", "covid_daily"}
