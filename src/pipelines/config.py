"""Public names shared by every pipeline: connections, Variables and their defaults.

Nothing here reads a Variable at import time: DAG files use the Jinja templates, task
code calls the functions (both resolve at run time, never at parse time).
"""

from __future__ import annotations

import os
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

DATA_LAKE_BUCKET_VARIABLE = "data_lake_bucket"
DATA_LAKE_BUCKET_DEFAULT = "pipelines-data-lake"
ALERT_EMAILS_VARIABLE = "alert_emails"

DATA_LAKE_BUCKET_TEMPLATE = (
    "{{ var.value.get('" + DATA_LAKE_BUCKET_VARIABLE + "', '" + DATA_LAKE_BUCKET_DEFAULT + "') }}"
)
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


def data_lake_bucket() -> str:
    return variable(DATA_LAKE_BUCKET_VARIABLE, DATA_LAKE_BUCKET_DEFAULT)


def alert_recipients() -> list[str]:
    raw = variable(ALERT_EMAILS_VARIABLE, "")
    return [address.strip() for address in raw.split(",") if address.strip()]
