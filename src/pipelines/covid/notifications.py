"""The COVID failure message to SNS topic ``covid-refresh`` (besides the shared alert e-mail)."""

from __future__ import annotations

import logging
from typing import Any

from airflow.providers.common.compat.notifier import BaseNotifier

log = logging.getLogger(__name__)


class CovidFailureSnsNotifier(BaseNotifier):
    """Publishes a plain-text failure message naming the DAG, task, error and log URL."""

    template_fields = ()

    def notify(self, context: Any) -> None:
        from pipelines.covid.steps import failure_message, publish

        ti = context["ti"]
        subject, body = failure_message(
            ti.dag_id, ti.task_id, ti.run_id, context.get("exception"), ti.log_url, ti.try_number
        )
        try:
            publish(subject, body)
        except Exception:  # the notification must never hide the task's own failure
            log.exception("Could not publish the failure message to SNS")
