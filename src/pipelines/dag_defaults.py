"""What every DAG of the project shares: owner, retries with backoff, timeout, failure alert.

Use as ``@dag(..., default_args=DEFAULT_ARGS, doc_md=__doc__, tags=[...])``.
"""

from __future__ import annotations

from datetime import timedelta

from pipelines.alerts import FailureEmailNotifier

OWNER = "data-platform"

DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(hours=2),
    "on_failure_callback": [FailureEmailNotifier()],
}
