"""The environment that points Airflow at the offline stack: one definition for demo, UI and tests.

Connections and Variables are given as ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` environment
variables, so nothing has to be written into the metadata database and nothing outside
the project is touched.
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ACCOUNT_ID = "123456789012"  # the offline stack's account
# each pipeline's connection assumes that pipeline's role of infra/pipelines.yaml
PIPELINE_ROLES = {
    "aws_traffic": "pipeline-traffic-repartition",
    "aws_market": "pipeline-market-orders",
    "aws_covid": "pipeline-covid-daily",
    "aws_directory": "pipeline-department-directory",
    "aws_results": "results-api-reader",
}


def pipeline_aws_connections(
    aws_endpoint_url: str,
    access_key: str = "testing",
    secret_key: str = "testing",
    session_token: str | None = None,
) -> dict[str, str]:
    """``AIRFLOW_CONN_AWS_<PIPELINE>``: base credentials (the worker's) plus ``role_arn`` of the pipeline's role.

    The provider assumes the role through STS at the same endpoint (``service_config.sts``:
    for assume-role it never uses the global ``endpoint_url``).
    """
    connections = {}
    for conn_id, role in PIPELINE_ROLES.items():
        extra = {
            "endpoint_url": aws_endpoint_url,
            "region_name": "us-east-1",
            "role_arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{role}",
            "assume_role_method": "assume_role",
            "service_config": {"sts": {"endpoint_url": aws_endpoint_url}},
        }
        if session_token:
            extra["aws_session_token"] = session_token
        connections[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
            {"conn_type": "aws", "login": access_key, "password": secret_key, "extra": extra}
        )
    return connections


def airflow_env(
    airflow_home: Path,
    aws_endpoint_url: str,
    smtp_port: int,
    alert_emails: str = "data-team@example.com",
    esi_url: str | None = None,
) -> dict[str, str]:
    env = {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": r"(airflow|pipelines)\..*",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": aws_endpoint_url, "region_name": "us-east-1"},
            }
        ),
        "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": smtp_port,
                "extra": {
                    "disable_ssl": True,
                    "disable_tls": True,
                    "from_email": "airflow@pipelines.local",
                    "timeout": 10,
                    "retry_limit": 0,
                },
            }
        ),
        **pipeline_aws_connections(aws_endpoint_url),
        "AIRFLOW_VAR_ALERT_EMAILS": alert_emails,
        "AIRFLOW_VAR_DATA_LAKE_BUCKET": "pipelines-data-lake",
        # offline/dev only: covid_daily may read local sample files (never set in a deployment)
        "PIPELINES_ALLOW_LOCAL_SOURCES": "1",
        # offline only: settings may take the offline stack's defaults (pipelines.config.setting)
        "PIPELINES_OFFLINE_STACK": "1",
    }
    if esi_url:
        env["AIRFLOW_CONN_ESI_DEFAULT"] = json.dumps({"conn_type": "http", "host": esi_url})
    return env
