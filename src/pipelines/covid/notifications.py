"""The COVID failure message to SNS topic ``covid-refresh`` (besides the shared alert e-mail).

The Amazon provider's ``SnsNotifier`` takes one message fixed (or templated) when the DAG is
parsed; ours states facts known only when a task has failed (which task, what the table
holds after it: ``steps.what_was_written``), so this subclass builds the message from the
failure's context and publishes it through the notifier's own hook and call.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

from pipelines.config import COVID_AWS_CONN_ID

log = logging.getLogger(__name__)


class CovidFailureSnsNotifier(SnsNotifier):
    """Publishes a plain-text failure message naming the DAG, task, error, what was written and the log URL."""

    template_fields = ()  # built from the failure, never templated (an error text may hold "{{")

    def __init__(self, aws_conn_id: str = COVID_AWS_CONN_ID) -> None:
        # target_arn and message are per failure (notify); the topic's ARN needs an STS call,
        # which a DAG file must not make at parse time.
        super().__init__(aws_conn_id=aws_conn_id, target_arn="", message="")

    def notify(self, context: Any) -> None:
        from pipelines.covid.steps import failure_message, notice

        ti = context["ti"]
        try:
            published = notice(
                *failure_message(
                    ti.dag_id, ti.task_id, ti.run_id, context.get("exception"), ti.log_url, ti.try_number
                ),
                aws_conn_id=self.aws_conn_id,
            )
            self.hook.publish_to_target(
                target_arn=published["topic_arn"], message=published["message"], subject=published["subject"]
            )
        except Exception:  # the notification must never hide the task's own failure
            log.exception("Could not publish the failure message to SNS")
