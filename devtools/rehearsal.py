"""The production rehearsal: the offline stack deployed and configured as the README deploys AWS.

README, "Running against real AWS", step by step, against the offline stack, and nothing
made by hand or by a test fixture:

1. ``infra/pipelines.yaml`` through CloudFormation as ``aws cloudformation deploy`` sends
   it: a change set, executed (``infra.provision``; where moto's CloudFormation cannot
   create a resource type, provision applies that resource from the same template: the
   Glue database, the queue and bucket policies, the bucket's settings). Every value
   Airflow needs afterwards is read from the stack's outputs (DescribeStacks).
2. and 3. Connections and Variables stored in Secrets Manager, ``airflow/connections/<id>``
   and ``airflow/variables/<key>``, encrypted with the stack's key; each pipeline's AWS
   connection holds only ``role_arn`` (its stack output) and the region.
4. The components run with docker-compose.yaml's settings, read from that file:
   ``SecretsManagerBackend`` with compose's prefixes, FAB's auth manager. No
   ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` fallback at all, so a connection or Variable
   that cannot be read from Secrets Manager fails where it is used instead of quietly
   falling back to an offline default.

IAM is enforced for every caller (``localaws.iam.enforcement``): the workers, scheduler,
dag-processor and triggerer run as a session of the workers' role (template parameter
``AirflowRoleName``), the api-server as a session of its own role (``ApiServerRoleName``),
what an instance profile or pod identity gives them on AWS; every pipeline connection
assumes its role through STS. The stack's administrator key (what the deploy itself and
the tests' own reads use) is never in a component's environment.

:func:`preflight` makes each component's first AWS call as its deployed identity, in a
subprocess with that component's environment: the secret read, each connection's role
assumption, the results API's index query and the directory watcher's queue receive.
``tests/e2e/test_rehearsal_permissions.py`` runs it against copies of the template
missing one permission each.

Two things stay offline-only, on purpose: the SMTP relay is the SMTP catcher (a
connection in Secrets Manager like the rest), and the COVID sources are the sample
files (``PIPELINES_ALLOW_LOCAL_SOURCES``; the sources are outside AWS and outside what
the rehearsal proves).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devtools.airflow_env import REPO

COMPOSE_FILE = REPO / "docker-compose.yaml"
REGION = "us-east-1"
# the template's parameters for the roles the components run as, and their defaults
WORKERS_ROLE_PARAMETER, API_SERVER_ROLE_PARAMETER = "AirflowRoleName", "ApiServerRoleName"
# which identity each component runs as: the api-server alone serves the results API
COMPONENT_IDENTITY = {
    "api-server": "api-server",
    "scheduler": "workers",
    "dag-processor": "workers",
    "triggerer": "workers",
    "worker": "workers",
}
# each AWS connection and the stack output holding its role (README step 2)
CONNECTION_ROLE_OUTPUTS = {
    "aws_traffic": "TrafficRepartitionRoleArn",
    "aws_market": "MarketOrdersRoleArn",
    "aws_covid": "CovidDailyRoleArn",
    "aws_directory": "DepartmentDirectoryRoleArn",
    "aws_results": "ResultsApiRoleArn",
}
# compose's settings the rehearsal takes verbatim from docker-compose.yaml
COMPOSE_SETTINGS = (
    "AIRFLOW__CORE__AUTH_MANAGER",
    "AIRFLOW__SECRETS__BACKEND",
    "AIRFLOW__SECRETS__BACKEND_KWARGS",
)


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    session_token: str

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


def compose_settings(compose_file: Path = COMPOSE_FILE) -> dict[str, str]:
    """``COMPOSE_SETTINGS`` as docker-compose.yaml gives them to every Airflow service, with
    ``${AWS_DEFAULT_REGION:-us-east-1}`` interpolated to the rehearsal's region."""
    document = yaml.safe_load(compose_file.read_text())
    environment = document["x-airflow-common"]["environment"]
    settings = {}
    for name in COMPOSE_SETTINGS:
        if name not in environment:
            raise KeyError(f"{compose_file}: x-airflow-common.environment has no {name}")
        settings[name] = str(environment[name]).replace("${AWS_DEFAULT_REGION:-us-east-1}", REGION)
    return settings


def deploy(endpoint_url: str, template_path: Path | None = None, parameters: dict[str, str] | None = None):
    """README step 1: the stack through a change set, with those of ``parameters`` the
    template declares (``--parameter-overrides``); answers its outputs."""
    from infra.provision import TEMPLATE, load_template, provision, stack_outputs

    declared = load_template(template_path or TEMPLATE)["Parameters"]
    overrides = {name: value for name, value in (parameters or {}).items() if name in declared}
    provision(endpoint_url, overrides, template_path or TEMPLATE)
    return stack_outputs(endpoint_url)


def connections(outputs: dict[str, str], smtp: tuple[str, int], esi_url: str) -> dict[str, dict[str, Any]]:
    """README step 2: every connection, as its JSON secret."""
    found = {
        conn_id: {"conn_type": "aws", "extra": {"region_name": REGION, "role_arn": outputs[output]}}
        for conn_id, output in CONNECTION_ROLE_OUTPUTS.items()
    }
    found["aws_default"] = {"conn_type": "aws", "extra": {"region_name": REGION}}
    found["smtp_default"] = {
        "conn_type": "smtp",
        "host": smtp[0],
        "port": smtp[1],
        "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "airflow@pipelines.local"},
    }
    found["esi_default"] = {"conn_type": "http", "host": esi_url}
    return found


def variables(outputs: dict[str, str], alert_emails: str) -> dict[str, str]:
    """README step 3: every Variable."""
    return {"data_lake_bucket": outputs["DataLakeBucket"], "alert_emails": alert_emails}


def store_secrets(
    secretsmanager: Any, outputs: dict[str, str], conns: dict[str, dict[str, Any]], variables: dict[str, str]
) -> list[str]:
    """Connections and Variables into Secrets Manager under compose's prefixes, encrypted with
    the stack's key; answers the names stored. A secret the stack itself created (the template's
    ``AlertEmailsVariable`` from parameter ``AlertEmails``) is left as the stack made it."""
    kwargs = json.loads(compose_settings()["AIRFLOW__SECRETS__BACKEND_KWARGS"])
    secrets = {f"{kwargs['connections_prefix']}/{k}": json.dumps(v) for k, v in conns.items()}
    secrets.update({f"{kwargs['variables_prefix']}/{k}": v for k, v in variables.items()})
    key = {"KmsKeyId": outputs["DataKeyArn"]} if "DataKeyArn" in outputs else {}
    stored = []
    for name, value in secrets.items():
        try:
            secretsmanager.create_secret(Name=name, SecretString=value, **key)
            stored.append(name)
        except secretsmanager.exceptions.ResourceExistsException:
            pass
    return sorted(stored)


def template_parameter(name: str, template_path: Path | None = None) -> str:
    from infra.provision import load_template

    return load_template(*([template_path] if template_path else []))["Parameters"][name]["Default"]


def session_of(sts: Any, role_name: str) -> Credentials:
    """A session of ``role_name``: what the instance profile or pod identity hands a component."""
    from infra.provision import ACCOUNT_ID

    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{role_name}",
        RoleSessionName=role_name,
        DurationSeconds=43200,
    )["Credentials"]
    return Credentials(
        credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
    )


def identities(sts: Any, template_path: Path | None = None) -> dict[str, Credentials]:
    return {
        "workers": session_of(sts, template_parameter(WORKERS_ROLE_PARAMETER, template_path)),
        "api-server": session_of(sts, template_parameter(API_SERVER_ROLE_PARAMETER, template_path)),
    }


def production_env(base: dict[str, str], endpoint_url: str, outputs: dict[str, str]) -> dict[str, str]:
    """``base`` (a process environment) with every offline fallback removed and compose's
    production settings in: the environment all components share (identity added per component)."""
    env = {
        k: v
        for k, v in base.items()
        if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AWS_ACCESS_KEY", "AWS_SECRET", "AWS_SESSION"))
        and k != "PIPELINES_OFFLINE_STACK"
    }
    env.update(compose_settings())
    env.update(
        {
            # compose: boto3 reads it (AWS itself when empty); here the offline stack
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
            # the directory watcher's queue, from the stack (README step 1's outputs)
            "DIRECTORY_EVENTS_QUEUE_URL": outputs["DirectoryEventsQueueUrl"],
        }
    )
    return env


# -- preflight: each component's first AWS call, as its deployed identity ----------------------

# each probe and the identity it runs as
PROBES = {"secrets": "workers", "roles": "workers", "queue": "workers", "results": "api-server"}


def preflight(
    env_of: dict[str, dict[str, str]], outputs: dict[str, str], timeout: float = 300
) -> dict[str, str]:
    """Run every probe with its component's environment (``env_of``: identity -> environment),
    one subprocess per identity, side by side; answers {probe: "ok" or the error}."""
    running = {}
    for identity in sorted(set(PROBES.values())):
        names = [name for name, owner in PROBES.items() if owner == identity]
        running[identity] = (names, subprocess.Popen(
            [sys.executable, "-m", "devtools.rehearsal", "probe", json.dumps(outputs), *names],
            env=env_of[identity], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        ))  # fmt: skip
    results = {}
    for names, process in running.values():
        stdout, stderr = process.communicate(timeout=timeout)
        answers = dict(line.split("\t", 1) for line in stdout.splitlines() if "\t" in line)
        for name in names:
            results[name] = answers.get(name) or (
                f"probe crashed ({process.returncode}): " + (stderr.strip().splitlines() or ["no output"])[-1]
            )
    return {name: results[name] for name in PROBES}


def _secrets_backend() -> Any:
    from airflow.providers.amazon.aws.secrets.secrets_manager import SecretsManagerBackend

    return SecretsManagerBackend(**json.loads(os.environ["AIRFLOW__SECRETS__BACKEND_KWARGS"]))


def _probe_secrets(outputs: dict[str, str]) -> None:
    """The workers read a Variable and a connection (the failure e-mail's recipients and SMTP relay)."""
    backend = _secrets_backend()
    if not backend.get_variable("alert_emails"):
        raise RuntimeError("Variable alert_emails: not read from Secrets Manager")
    connection = backend.get_connection("aws_covid")
    if connection is None or connection.extra_dejson.get("role_arn") != outputs["CovidDailyRoleArn"]:
        raise RuntimeError("connection aws_covid: not read from Secrets Manager")


def _probe_roles(outputs: dict[str, str]) -> None:
    """Every pipeline connection, read from Secrets Manager, assumes its role through STS."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    for conn_id, output in CONNECTION_ROLE_OUTPUTS.items():
        if conn_id == "aws_results":
            continue  # the api-server's (probe "results")
        arn = AwsBaseHook(aws_conn_id=conn_id, client_type="sts").get_conn().get_caller_identity()["Arn"]
        role = outputs[output].rsplit("/", 1)[-1]
        if f":assumed-role/{role}/" not in arn:
            raise RuntimeError(f"connection {conn_id}: runs as {arn}, not role {role}")


def _probe_results(outputs: dict[str, str]) -> None:
    """The results API's reads as the api-server: the department index query, a table read."""
    from pipelines.aws.dynamodb import dynamodb_client
    from results_api.store import ResultsStore

    store = ResultsStore(dynamodb_client("aws_results"))
    store.departments(prefix="", limit=10, after=None)
    store.department("rehearsal-probe")


def _probe_queue(outputs: dict[str, str]) -> None:
    """The directory watcher's receive (MessageQueueTrigger's SqsHook), leaving messages visible."""
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    SqsHook(aws_conn_id="aws_directory").get_conn().receive_message(
        QueueUrl=os.environ["DIRECTORY_EVENTS_QUEUE_URL"], MaxNumberOfMessages=1, VisibilityTimeout=0
    )


def _probe(name: str, outputs: dict[str, str]) -> str:
    probe = {
        "secrets": _probe_secrets,
        "roles": _probe_roles,
        "results": _probe_results,
        "queue": _probe_queue,
    }
    try:
        probe[name](outputs)
    except Exception as error:  # the answer is the error, the caller decides
        return f"{type(error).__name__}: {error}".replace("\n", " ")
    return "ok"


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) >= 3 and args[0] == "probe" and set(args[2:]) <= set(PROBES):
        outputs = json.loads(args[1])
        for name in args[2:]:
            print(f"{name}\t{_probe(name, outputs)}", flush=True)
        return
    raise SystemExit(f"usage: python -m devtools.rehearsal probe <outputs JSON> <{'|'.join(PROBES)}>...")


if __name__ == "__main__":
    main()
