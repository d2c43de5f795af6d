"""A run held back past its deadline e-mails the alert recipients (issue 22.5), on the production topology.

The run is triggered on a paused market_orders, so it stays queued (held back). The scheduler
gives it the deadline the DAG declares (queued_at + 45 min, ``pipelines.deadlines``); the test
cannot wait 45 minutes, so it moves that deadline row to a moment just past, and from there
the real path runs: the scheduler's loop finds the missed deadline, the triggerer runs the
``AsyncCallback``, and the e-mail reaches the SMTP catcher through ``smtp_default``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from tests.e2e.conftest import Runs

pytestmark = pytest.mark.e2e

DAG_ID = "market_orders"


def _deadline_rows(topology, run_id: str) -> list[tuple]:
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=topology.database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT d.id, d.deadline_time, r.queued_at, d.missed FROM deadline d "
                "JOIN dag_run r ON r.id = d.dagrun_id WHERE r.dag_id = %s AND r.run_id = %s",
                (DAG_ID, run_id),
            )
            return cursor.fetchall()
    finally:
        connection.close()


def _move_deadline(topology, deadline_id, moment: datetime) -> None:
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=topology.database)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE deadline SET deadline_time = %s WHERE id = %s", (moment, deadline_id))
    finally:
        connection.close()


def test_a_run_held_back_past_its_deadline_emails_the_dag_the_expected_time_and_the_run_link(topology):
    runs = Runs(topology)
    code, dag = runs.api("GET", f"/api/v2/dags/{DAG_ID}")
    assert code == 200, dag
    was_paused = dag["is_paused"]
    code, body = runs.api("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": True})
    assert code == 200, body
    try:
        run_id = runs.trigger(DAG_ID, {})
        [(deadline_id, deadline_time, queued_at, missed)] = _deadline_rows(topology, run_id)
        # the DAG's declared deadline: 45 minutes after the run was queued
        assert deadline_time - queued_at == timedelta(minutes=45)
        assert not missed

        time.sleep(3)
        assert runs.state(DAG_ID, run_id) == "queued"  # held back: the DAG is paused
        expected = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
        _move_deadline(topology, deadline_id, expected)

        def late_mails():
            return [m for m in topology.smtp.messages if m.subject.startswith(f"[Airflow] LATE {DAG_ID}")]

        waited_until = time.monotonic() + 90
        while not late_mails() and time.monotonic() < waited_until:
            time.sleep(1)
        mails = late_mails()
        assert len(mails) == 1, (
            f"late-run e-mails: {[m.subject for m in mails]}\n{topology.logs('triggerer')}"
        )
        [mail] = mails
        assert mail.recipients == [topology.alert_emails]
        expected_text = expected.strftime("%Y-%m-%d %H:%M:%S UTC")
        assert mail.subject == f"[Airflow] LATE {DAG_ID} (run {run_id}) not finished by {expected_text}"
        assert f"<th align='left'>Expected by</th><td>{expected_text}</td>" in mail.text
        link = f"{topology.api_url}/dags/{DAG_ID}/runs/{quote(run_id)}"
        assert f'<a href="{link}">' in mail.text
        [(_, _, _, missed)] = _deadline_rows(topology, run_id)
        assert missed
    finally:
        code, body = runs.api("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": was_paused})
        assert code == 200, body
