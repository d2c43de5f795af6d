"""One permission removed at a time: the rehearsal fails at the call that needs it, and only there.

Cheap on purpose: no Airflow components. Each case deploys a copy of infra/pipelines.yaml
missing one statement through the rehearsal's own deploy (change set, Secrets Manager,
role sessions; devtools/rehearsal.py), then runs the rehearsal's preflight: each
component's first AWS call as its deployed identity, with its connections read from
Secrets Manager by compose's SecretsManagerBackend. The unedited template passes every
probe; each edit must fail exactly the probes that need the statement, refused for exactly
its action.

The offline stack runs in a process of its own (``python -m localaws``): moto's backends
are global to a process, and the session's topology (tests/e2e/conftest.py) has its own
stack in this one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from devtools import rehearsal
from infra.provision import TEMPLATE
from localaws.server import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.rehearsal]
ADMIN = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
ALL_OK = dict.fromkeys(rehearsal.PROBES, "ok")


class Stack:
    """The offline stack in its own process, driven through its endpoint and control API."""

    def __init__(self, tmp_path) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.log = (tmp_path / "localaws.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "localaws", "--port", str(self.port)],
            env={**os.environ, **ADMIN}, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.control("health", method="GET")
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("localaws did not start")

    def control(self, path: str, body: dict | None = None, method: str = "POST") -> dict:
        request = urllib.request.Request(
            f"{self.endpoint_url}/_localaws/{path}",
            data=None if method == "GET" else json.dumps(body or {}).encode(), method=method,
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def client(self, service: str):
        import boto3

        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        ).client(service, endpoint_url=self.endpoint_url)

    def rehearse(self, template_path) -> tuple[dict[str, str], set[tuple[str, str]]]:
        """Deploy ``template_path`` as the rehearsal does, run the preflight with IAM enforced;
        answers (probe results, {(refused action, resource)})."""
        self.control("iam", {"enforce": False, "clear": True})
        self.control("reset")
        for role in ("airflow-pipelines", "airflow-api-server"):  # what the account has before the stack
            self.client("iam").create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                        "Principal": {"Service": "ec2.amazonaws.com"}}],
            }))  # fmt: skip
        previous = {name: os.environ.get(name) for name in ADMIN}
        os.environ.update(ADMIN)  # provision's clients: the administrator's key, as a deploy has
        try:
            outputs = rehearsal.deploy(self.endpoint_url, template_path)
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        rehearsal.store_secrets(
            self.client("secretsmanager"), outputs,
            rehearsal.connections(outputs, ("127.0.0.1", 25), "http://127.0.0.1:1"),
            rehearsal.variables(outputs, "data-team@example.com"),
        )  # fmt: skip
        identities = rehearsal.identities(self.client("sts"), template_path)
        base = rehearsal.production_env(dict(os.environ), self.endpoint_url, outputs)
        env_of = {name: {**base, **credentials.env()} for name, credentials in identities.items()}
        self.control("iam", {"enforce": True, "clear": True})
        results = rehearsal.preflight(env_of, outputs)
        self.refusals = self.control("iam", {})["refusals"]
        return results, {(r["action"], r["resource"]) for r in self.refusals}

    def refused_callers(self, action: str) -> set[str]:
        """The roles whose sessions were refused ``action`` in the last rehearsal."""
        return {
            r["caller"].split(":assumed-role/")[1].split("/")[0]
            for r in self.refusals
            if r["action"] == action
        }

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)
        self.log.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    started = Stack(tmp_path_factory.mktemp("rehearsal-permissions"))
    yield started
    started.stop()


def without(tmp_path, policy: str, sid: str):
    """A copy of the template whose ``policy`` lacks statement ``sid``."""
    template = yaml.safe_load(TEMPLATE.read_text())
    document = template["Resources"][policy]["Properties"]["PolicyDocument"]
    kept = [statement for statement in document["Statement"] if statement.get("Sid") != sid]
    assert len(kept) == len(document["Statement"]) - 1, f"{policy} has no statement {sid}"
    document["Statement"] = kept
    path = tmp_path / f"without-{sid}.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path


def failed(results: dict[str, str]) -> set[str]:
    return {probe for probe, answer in results.items() if answer != "ok"}


def test_the_template_as_it_is_passes_every_probe_with_nothing_refused(stack):
    results, refusals = stack.rehearse(TEMPLATE)
    assert (results, refusals) == (ALL_OK, set())


def test_without_the_index_query_the_results_api_fails_on_the_index(stack, tmp_path):
    results, refusals = stack.rehearse(without(tmp_path, "ResultsApiPolicy", "QueryTheResultIndexes"))
    assert failed(results) == {"results"}, results
    assert "department_directory/index/department_names" in results["results"]
    assert {action for action, _ in refusals} == {"dynamodb:Query"}
    assert {resource for _, resource in refusals} == {
        "arn:aws:dynamodb:us-east-1:123456789012:table/department_directory/index/department_names"
    }


def test_without_the_keys_decrypt_the_results_api_cannot_read_its_tables(stack, tmp_path):
    results, refusals = stack.rehearse(
        without(tmp_path, "ResultsApiPolicy", "DecryptTheTablesThroughDynamoDB")
    )
    assert failed(results) == {"results"}, results
    assert "kms:Decrypt" in results["results"]
    assert {action for action, _ in refusals} == {"kms:Decrypt"}
    assert all(":key/" in resource for _, resource in refusals)


def test_without_the_secret_read_the_workers_have_no_connection_or_variable(stack, tmp_path):
    results, refusals = stack.rehearse(
        without(tmp_path, "WorkersAssumePipelineRolesPolicy", "ReadTheAirflowSecrets")
    )
    # every probe of the workers reads its connection from Secrets Manager first; the api-server's role
    # has its own grant
    assert failed(results) == {"secrets", "roles", "queue"}, results
    assert "secretsmanager:GetSecretValue" in results["secrets"]
    assert "not role pipeline-" in results["roles"]
    # no connection, so the provider falls back to the process' own credentials (it warns, no more):
    # the watcher polls as the workers' base identity, which may not receive
    assert {action for action, _ in refusals} == {"secretsmanager:GetSecretValue", "sqs:ReceiveMessage"}
    assert stack.refused_callers("sqs:ReceiveMessage") == {"airflow-pipelines"}


def test_without_the_queue_receive_the_directory_watcher_hears_nothing(stack, tmp_path):
    results, refusals = stack.rehearse(without(tmp_path, "DepartmentDirectoryPolicy", "Events"))
    assert failed(results) == {"queue"}, results
    assert "sqs:ReceiveMessage" in results["queue"]
    assert refusals == {("sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:123456789012:directory-events")}
