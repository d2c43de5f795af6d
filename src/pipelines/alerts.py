"""Failure e-mails: every task of every DAG reports its failure to Variable ``alert_emails``.

Sent through connection ``smtp_default`` with the smtp provider's hook. Two rules:
no recipients means no e-mail (and no error), and a broken mail server is logged but
never replaces the task's own failure, which is what the on-call engineer needs to see.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from airflow.providers.common.compat.notifier import BaseNotifier

from pipelines.config import SMTP_CONN_ID, alert_recipients

log = logging.getLogger(__name__)

DEFAULT_FROM = "airflow-alerts@pipelines.local"


def failure_subject(dag_id: str, task_id: str, run_id: str) -> str:
    return f"[Airflow] FAILED {dag_id}.{task_id} (run {run_id})"


def failure_body(
    dag_id: str, task_id: str, run_id: str, try_number: int, exception: object, log_url: str
) -> str:
    rows = [
        ("DAG", dag_id),
        ("Task", task_id),
        ("Run", run_id),
        ("Try", str(try_number)),
        ("Exception", f"{type(exception).__name__}: {exception}" if exception else "unknown"),
    ]
    lead = f"Task <b>{html.escape(task_id)}</b> of DAG <b>{html.escape(dag_id)}</b> failed."
    return alert_html(lead, rows, "Log", log_url)


def alert_html(lead_html: str, rows: list[tuple[str, str]], link_label: str, link: str) -> str:
    """An alert e-mail's body: a lead sentence (already HTML), a table of facts, one link."""
    cells = "".join(
        f"<tr><th align='left'>{name}</th><td>{html.escape(value)}</td></tr>" for name, value in rows
    )
    escaped_link = html.escape(link, quote=True)
    return (
        f"<p>{lead_html}</p>"
        f"<table>{cells}</table>"
        f'<p>{link_label}: <a href="{escaped_link}">{escaped_link}</a></p>'
    )


class FailureEmailNotifier(BaseNotifier):
    """``on_failure_callback`` that e-mails the alert recipients about the failed task."""

    template_fields = ()

    def __init__(self, smtp_conn_id: str = SMTP_CONN_ID) -> None:
        super().__init__()
        self.smtp_conn_id = smtp_conn_id

    def notify(self, context: Any) -> None:
        try:
            self._send(context)
        except Exception:  # never let the alert path mask the task's own error
            log.exception("Could not send the failure e-mail through connection %s", self.smtp_conn_id)

    def _send(self, context: Any) -> None:
        recipients = alert_recipients()
        if not recipients:
            log.info("Variable alert_emails is empty: no failure e-mail sent")
            return
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        ti = context["ti"]
        dag_id, task_id, run_id = ti.dag_id, ti.task_id, ti.run_id
        subject = failure_subject(dag_id, task_id, run_id)
        body = failure_body(dag_id, task_id, run_id, ti.try_number, context.get("exception"), ti.log_url)
        with SmtpHook(smtp_conn_id=self.smtp_conn_id) as smtp:
            smtp.send_email_smtp(
                to=recipients,
                subject=subject,
                html_content=body,
                from_email=smtp.from_email or DEFAULT_FROM,
            )
        log.info("Failure e-mail sent to %s", ", ".join(recipients))
