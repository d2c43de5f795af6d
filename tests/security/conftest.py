"""The offline stack with IAM enforced, and Airflow's AWS connections as a real deployment has them.

Every pipeline connection carries the *worker's* credentials (a session of role
``airflow-pipelines``, which may only assume the pipeline roles) plus ``role_arn`` of its
pipeline's role; the provider assumes it through STS. ``aws_results`` carries the API
server's (``airflow-api-server``, which may only assume the results role). ``aws_default`` and the process'
own AWS_* variables are the worker's too, so nothing can fall back to the administrator key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.airflow_env import ACCOUNT_ID, pipeline_aws_connections
from infra.provision import TEMPLATE, provision


def _session_of(stack, role: str) -> tuple[str, str, str]:
    """Credentials of a session of ``role`` (what the instance or pod identity would give)."""
    credentials = stack.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{role}", RoleSessionName=role
    )["Credentials"]
    return credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]


@pytest.fixture
def least_privilege(local_aws, monkeypatch):
    """``start(template_path)``: a clean stack provisioned from that template, IAM enforced."""

    def start(template_path: Path = TEMPLATE):
        local_aws.iam.enabled = False
        local_aws.reset()
        provision(local_aws.endpoint_url, template_path=template_path)
        key, secret, token = _session_of(local_aws, "airflow-pipelines")
        for name, value in pipeline_aws_connections(local_aws.endpoint_url, key, secret, token).items():
            monkeypatch.setenv(name, value)
        # the API server has its own identity: only it may assume the results role
        api_server = pipeline_aws_connections(
            local_aws.endpoint_url, *_session_of(local_aws, "airflow-api-server")
        )
        monkeypatch.setenv("AIRFLOW_CONN_AWS_RESULTS", api_server["AIRFLOW_CONN_AWS_RESULTS"])
        monkeypatch.setenv(
            "AIRFLOW_CONN_AWS_DEFAULT",
            json.dumps(
                {
                    "conn_type": "aws",
                    "login": key,
                    "password": secret,
                    "extra": {
                        "endpoint_url": local_aws.endpoint_url,
                        "region_name": "us-east-1",
                        "aws_session_token": token,
                    },
                }
            ),
        )
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
        monkeypatch.setenv("AWS_SESSION_TOKEN", token)
        local_aws.iam.clear()
        local_aws.iam.enabled = True
        return local_aws

    yield start
    local_aws.iam.enabled = False
