"""The offline stack with IAM enforced, and Airflow's AWS connections as a real deployment has them.

Every pipeline connection carries the *worker's* credentials (a session of role
``airflow-pipelines``, which may only assume the pipeline roles) plus ``role_arn`` of its
pipeline's role; the provider assumes it through STS. ``aws_default`` and the process'
own AWS_* variables are the worker's too, so nothing can fall back to the administrator key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.airflow_env import ACCOUNT_ID, pipeline_aws_connections
from infra.provision import TEMPLATE, provision


@pytest.fixture
def least_privilege(local_aws, monkeypatch):
    """``start(template_path)``: a clean stack provisioned from that template, IAM enforced."""

    def start(template_path: Path = TEMPLATE):
        local_aws.iam.enabled = False
        local_aws.reset()
        provision(local_aws.endpoint_url, template_path=template_path)
        worker = local_aws.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/airflow-pipelines", RoleSessionName="airflow-worker"
        )["Credentials"]
        key, secret, token = worker["AccessKeyId"], worker["SecretAccessKey"], worker["SessionToken"]
        for name, value in pipeline_aws_connections(local_aws.endpoint_url, key, secret, token).items():
            monkeypatch.setenv(name, value)
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
