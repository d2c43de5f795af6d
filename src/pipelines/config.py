"""Public names shared by every pipeline: connections, Variables and their defaults.

Nothing here reads a Variable at import time: DAG files use the Jinja templates, task
code calls the functions (both resolve at run time, never at parse time).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

AWS_CONN_ID = "aws_default"  # outside any pipeline's task only (tools, tests of the adapters)
# One AWS connection per pipeline, each assuming that pipeline's own IAM role (role_arn in
# its extra; infra/pipelines.yaml): a task can only reach what its pipeline may reach.
TRAFFIC_AWS_CONN_ID = "aws_traffic"
MARKET_AWS_CONN_ID = "aws_market"
COVID_AWS_CONN_ID = "aws_covid"
DIRECTORY_AWS_CONN_ID = "aws_directory"
RESULTS_AWS_CONN_ID = "aws_results"  # the results API: read-only role
PIPELINE_AWS_CONN_IDS = {
    "traffic_repartition": TRAFFIC_AWS_CONN_ID,
    "market_orders": MARKET_AWS_CONN_ID,
    "covid_daily": COVID_AWS_CONN_ID,
    "department_directory": DIRECTORY_AWS_CONN_ID,
}
SMTP_CONN_ID = "smtp_default"
ESI_CONN_ID = "esi_default"

# -- the offline stack and its defaults -------------------------------------------------------
# A setting whose only sensible default is the offline stack's (moto's account 123456789012,
# its queue URL, its bucket) has that default only where the offline tooling says it runs:
# devtools.airflow_env (make demo/airflow, the tests, the e2e topology) sets this variable.
# Anywhere else (a deployment, the production rehearsal) the setting must be given, and its
# absence fails the component or task at once, naming the setting: never a silent fallback
# to a queue or bucket of another account.
OFFLINE_STACK_ENV = "PIPELINES_OFFLINE_STACK"
OFFLINE_ACCOUNT_ID = "123456789012"
DIRECTORY_EVENTS_QUEUE_URL_ENV = "DIRECTORY_EVENTS_QUEUE_URL"  # stack output DirectoryEventsQueueUrl
OFFLINE_DIRECTORY_EVENTS_QUEUE_URL = (
    f"https://sqs.us-east-1.amazonaws.com/{OFFLINE_ACCOUNT_ID}/directory-events"
)


class MissingSetting(RuntimeError):
    """A production setting is not configured (and there is no default outside the offline stack)."""


def offline_stack(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs against the offline stack (``PIPELINES_OFFLINE_STACK=1``)."""
    return (os.environ if environ is None else environ).get(OFFLINE_STACK_ENV, "") == "1"


def setting(name: str, offline_default: str, where: str, environ: Mapping[str, str] | None = None) -> str:
    """Environment setting ``name``; its offline default only on the offline stack, else an error naming it."""
    environ = os.environ if environ is None else environ
    value = environ.get(name, "").strip()
    if value:
        return value
    if offline_stack(environ):
        return offline_default
    raise MissingSetting(
        f"{name} is not set: {where}. Only the offline stack ({OFFLINE_STACK_ENV}=1) has a default."
    )


def directory_events_queue_url(environ: Mapping[str, str] | None = None) -> str:
    return setting(
        DIRECTORY_EVENTS_QUEUE_URL_ENV,
        OFFLINE_DIRECTORY_EVENTS_QUEUE_URL,
        "set it to the stack output DirectoryEventsQueueUrl (README, Running against real AWS)",
        environ,
    )


DATA_LAKE_BUCKET_VARIABLE = "data_lake_bucket"
DATA_LAKE_BUCKET_DEFAULT = "pipelines-data-lake"  # the offline stack's bucket
ALERT_EMAILS_VARIABLE = "alert_emails"


def data_lake_bucket_template(environ: Mapping[str, str] | None = None) -> str:
    """Jinja for the bucket: offline with the offline bucket as default; elsewhere the Variable
    itself, whose absence fails the task with Airflow's "Variable data_lake_bucket does not exist"."""
    if offline_stack(environ):
        return "{{ var.value.get('" + DATA_LAKE_BUCKET_VARIABLE + "', '" + DATA_LAKE_BUCKET_DEFAULT + "') }}"
    return "{{ var.value." + DATA_LAKE_BUCKET_VARIABLE + " }}"


DATA_LAKE_BUCKET_TEMPLATE = data_lake_bucket_template()
ATHENA_RESULTS_TEMPLATE = "s3://" + DATA_LAKE_BUCKET_TEMPLATE + "/athena-results/"


def sql_dir() -> Path:
    """``include/sql/``: a sibling of the DAGs folder, as deployed (``dags/`` and ``include/``).

    ``PIPELINES_SQL_DIR`` overrides it (a deployment that puts the SQL elsewhere).
    """
    override = os.environ.get("PIPELINES_SQL_DIR")
    if override:
        return Path(override)
    from airflow.configuration import conf

    return Path(conf.get("core", "dags_folder")).resolve().parent / "include" / "sql"


def pipeline_aws_conn_id() -> str:
    """The AWS connection of the pipeline whose task is running (``aws_default`` outside one).

    The shared S3/DynamoDB adapters use it, so a step never names a connection and cannot
    use another pipeline's role.
    """
    from airflow.sdk import get_current_context

    try:
        dag_id = get_current_context()["dag"].dag_id
    except RuntimeError:  # no running task: a tool or a test calling an adapter directly
        return AWS_CONN_ID
    return PIPELINE_AWS_CONN_IDS.get(dag_id, AWS_CONN_ID)


def variable(name: str, default: str) -> str:
    """A Variable's value at run time (task code only, never at parse time)."""
    from airflow.sdk import Variable

    return Variable.get(name, default=default)


def required_variable(name: str, offline_default: str) -> str:
    """A Variable with a default on the offline stack only; elsewhere missing fails naming it."""
    from airflow.sdk import Variable

    value = Variable.get(name, default=None)
    if value:
        return value
    if offline_stack():
        return offline_default
    raise MissingSetting(
        f"Airflow Variable {name} is not set (secret airflow/variables/{name} or AIRFLOW_VAR_{name.upper()}). "
        f"Only the offline stack ({OFFLINE_STACK_ENV}=1) has a default."
    )


def data_lake_bucket() -> str:
    return required_variable(DATA_LAKE_BUCKET_VARIABLE, DATA_LAKE_BUCKET_DEFAULT)


def alert_recipients() -> list[str]:
    raw = variable(ALERT_EMAILS_VARIABLE, "")
    return [address.strip() for address in raw.split(",") if address.strip()]
