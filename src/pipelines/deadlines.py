"""Late-run alerts: when each scheduled DAG's run must have finished, and the e-mail if it has not.

Airflow 3's deadline alerts: the scheduler creates a deadline for every run of a DAG declaring
``deadline=``, checks the unfinished ones in its loop, and when one passes it queues the
callback; an ``AsyncCallback`` runs in the triggerer. A run that finishes in time (success or
failure) has its deadline pruned, so no e-mail; a failed run is reported by
``pipelines.alerts.FailureEmailNotifier`` instead.

The reference is the time the run was queued (``DAGRUN_QUEUED_AT``), not its logical date:
traffic_repartition's logical date is the start of the day it processes (a day before the
run), and a backfill run's logical date is long past, which would make every backfill run
"late" the moment it is created. Manual runs get the same deadline as scheduled ones.

department_directory has no deadline: it runs on an asset event (the upload of a
directory file), so there is no time at which a run is due; a deadline measured from its
queue time would only repeat ``execution_timeout``.
"""

from __future__ import annotations

import html
import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

from pipelines.alerts import alert_html
from pipelines.config import SMTP_CONN_ID, alert_recipients

log = logging.getLogger(__name__)

# How long after being queued each scheduled DAG's run must have finished. The one place
# to change a deadline (README "Failure e-mails" and docs/pipelines/*.md quote them).
RUN_DEADLINES: dict[str, timedelta] = {
    # daily; a normal run takes minutes, execution_timeout is 2 h per task
    "traffic_repartition": timedelta(hours=3),
    # hourly: a run still going after 45 min is about to collide with the next one
    "market_orders": timedelta(minutes=45),
    # daily; two downloads and a DynamoDB/SNS load
    "covid_daily": timedelta(hours=2),
}

# Event-driven DAGs: no deadline, see the module docstring.
NO_DEADLINE = {"department_directory": "runs on an asset event (a directory upload), not on a schedule"}

DEFAULT_FROM = "airflow-alerts@pipelines.local"


def late_run_alert(dag_id: str, interval: timedelta | None = None) -> DeadlineAlert:
    """The ``deadline=`` of DAG ``dag_id``: its run must finish ``RUN_DEADLINES[dag_id]`` after queueing."""
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=interval if interval is not None else RUN_DEADLINES[dag_id],
        callback=AsyncCallback(email_late_run, kwargs={"smtp_conn_id": SMTP_CONN_ID}),
        name=f"{dag_id} late run",
    )


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _format_time(value: Any) -> str:
    moment = _as_datetime(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if moment else "unknown"


def run_url(base_url: str, dag_id: str, run_id: str) -> str:
    """The run's page in the Airflow UI (same form as a task instance's ``log_url``)."""
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id)}"


def late_run_subject(dag_id: str, run_id: str, deadline_time: Any) -> str:
    return f"[Airflow] LATE {dag_id} (run {run_id}) not finished by {_format_time(deadline_time)}"


def late_run_body(dag_run: dict[str, Any], deadline_time: Any, link: str) -> str:
    dag_id, run_id = dag_run["dag_id"], dag_run["dag_run_id"]
    rows = [
        ("DAG", dag_id),
        ("Run", run_id),
        ("State", str(dag_run.get("state"))),
        ("Queued at", _format_time(dag_run.get("queued_at"))),
        ("Expected by", _format_time(deadline_time)),
    ]
    lead = f"The run of DAG <b>{html.escape(dag_id)}</b> has not finished by its deadline."
    return alert_html(lead, rows, "Run", link)


def send_late_run_email(context: dict[str, Any], smtp_conn_id: str = SMTP_CONN_ID) -> bool:
    """E-mail the alert recipients about a run past its deadline; False if nobody is to be told."""
    from airflow.configuration import conf

    recipients = alert_recipients()
    if not recipients:
        log.info("Variable alert_emails is empty: no late-run e-mail sent")
        return False
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    dag_run, deadline_time = context["dag_run"], context["deadline"]["deadline_time"]
    link = run_url(
        # unset [api] base_url: a path on the api-server, never an offline host name
        conf.get("api", "base_url", fallback=""),
        dag_run["dag_id"],
        dag_run["dag_run_id"],
    )
    with SmtpHook(smtp_conn_id=smtp_conn_id) as smtp:
        smtp.send_email_smtp(
            to=recipients,
            subject=late_run_subject(dag_run["dag_id"], dag_run["dag_run_id"], deadline_time),
            html_content=late_run_body(dag_run, deadline_time, link),
            from_email=smtp.from_email or DEFAULT_FROM,
        )
    log.info("Late-run e-mail for %s sent to %s", dag_run["dag_id"], ", ".join(recipients))
    return True


async def email_late_run(context: dict[str, Any], smtp_conn_id: str = SMTP_CONN_ID) -> bool:
    """The deadline callback, run by the triggerer: sends the e-mail off the event loop.

    The Variable and connection look-ups and SMTP are blocking calls, hence ``sync_to_async``
    (as the provider's triggers do for their hooks).
    """
    from asgiref.sync import sync_to_async

    return await sync_to_async(send_late_run_email)(context, smtp_conn_id)
