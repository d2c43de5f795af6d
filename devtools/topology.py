"""The production topology on one machine: the real Airflow 3 components on Postgres and Redis.

Configured as docker-compose.yaml configures them (same settings, by the same environment
variable names): CeleryExecutor, Postgres metadata DB (a fresh database per run),
Redis broker (its own DB index), api-server, scheduler, dag-processor, triggerer and a
Celery worker as subprocesses on free local ports; the offline AWS stack, the SMTP
catcher and the fake ESI server in this process.

``Topology(rehearsal=True)`` (what ``make e2e`` and ``make rehearsal`` run) is the
production rehearsal of devtools/rehearsal.py: the stack deployed through a CloudFormation
change set, connections and Variables in Secrets Manager, compose's SecretsManagerBackend
and FAB auth manager, each component running as its role's session with IAM enforced
for every caller. Without it (the benchmarks) connections and Variables come from the
environment and the stack is not enforcing IAM. By hand:

    python -m devtools.topology up [--rehearsal]   # prints the URLs; Ctrl-C tears everything down
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.airflow_env import REPO, airflow_env

POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432"
# Celery broker database; E2E_REDIS_DB lets two e2e sessions on one machine keep apart
REDIS_DB = int(os.environ.get("E2E_REDIS_DB", "5"))
COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer"],
    "worker": ["celery", "worker", "--concurrency", "4"],
}
USERNAME = PASSWORD = "admin"
TEST_HEARTBEAT_SETTINGS = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "3",
}


def _psql(sql: str) -> None:
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


@dataclass
class Topology:
    aws: Any = None
    smtp: Any = None
    esi: Any = None
    api_port: int = 0
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="airflow-e2e-")))
    database: str = field(default_factory=lambda: f"airflow_e2e_{secrets.token_hex(4)}")
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    # what the benchmarks vary (benchmarks/bench_components.py); the e2e tests keep the defaults
    executor: str = "CeleryExecutor"
    plugins_folder: Path = REPO / "plugins"
    dags_folder: Path = REPO / "dags"
    rehearsal: bool = False
    # the rehearsal's deployment: the stack's outputs, the secrets stored, each identity's session
    outputs: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    identities: dict[str, Any] = field(default_factory=dict)
    alert_emails: str = "data-team@example.com"
    # the COVID topic's e-mail subscriber (template parameter CovidSubscriberEmail)
    covid_subscriber: str = "covid-subscribers@example.com"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def build_env(self) -> dict[str, str]:
        passwords = self.home / "passwords.json"
        passwords.write_text(json.dumps({USERNAME: PASSWORD}))
        env = {
            **os.environ,
            **airflow_env(
                self.home,
                self.aws.endpoint_url,
                self.smtp.port,
                esi_url=self.esi.url,
                alert_emails=self.alert_emails,
            ),
        }
        env.update(
            {
                # the same settings docker-compose.yaml gives every component
                "AIRFLOW__CORE__EXECUTOR": self.executor,
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.plugins_folder),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{POSTGRES}/{self.database}",
                "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://postgres@127.0.0.1:5432/{self.database}",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                # quick to notice new files, runs and events on a test machine
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__CORE__PARALLELISM": "8",
                # A task whose worker died is noticed (no heartbeat) after 30 s here instead
                # of production's 300 s, so the chaos scenarios recover within minutes.
                # Test topology only: users keep Airflow's defaults (docker-compose.yaml).
                **TEST_HEARTBEAT_SETTINGS,
                "AWS_ENDPOINT_URL": self.aws.endpoint_url,
                "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
            }
        )
        if self.rehearsal:
            from cryptography.fernet import Fernet

            from devtools.rehearsal import production_env

            env = production_env(env, self.aws.endpoint_url, self.outputs)
            env.update(
                {
                    # compose requires both (SECURITY.md, "Deployment secrets")
                    "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                    "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                }
            )
        return env

    def component_env(self, name: str) -> dict[str, str]:
        """A component's environment: the shared one plus, in the rehearsal, its identity's session."""
        if not self.rehearsal:
            return self.env
        from devtools.rehearsal import COMPONENT_IDENTITY

        return {**self.env, **self.identities[COMPONENT_IDENTITY.get(name, "workers")].env()}

    def deploy_as_the_readme_does(self) -> None:
        """README, "Running against real AWS", steps 1-3 (devtools/rehearsal.py), then IAM on."""
        from devtools import rehearsal

        self.outputs = rehearsal.deploy(
            self.aws.endpoint_url,
            parameters={"AlertEmails": self.alert_emails, "CovidSubscriberEmail": self.covid_subscriber},
        )
        self.secrets = rehearsal.store_secrets(
            self.aws.client("secretsmanager"),
            self.outputs,
            rehearsal.connections(self.outputs, ("127.0.0.1", self.smtp.port), self.esi.url),
            rehearsal.variables(self.outputs, self.alert_emails),
        )
        self.identities = rehearsal.identities(self.aws.client("sts"))
        self.aws.iam.clear()
        self.aws.iam.enabled = True

    def up(self) -> Topology:
        from devtools.fake_esi import FakeEsi
        from devtools.smtp_catcher import SmtpCatcher
        from infra.provision import provision
        from localaws import LocalAWS
        from localaws.server import free_port

        # the stack's administrator key: the deploy's and the tests' own reads (never a component's
        # in the rehearsal)
        os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
        self.smtp = SmtpCatcher().start()
        # SNS e-mail subscriptions are delivered to the catcher, as AWS delivers them to inboxes
        self.aws = LocalAWS(enforce_iam=False, smtp=("127.0.0.1", self.smtp.port)).start()
        self.esi = FakeEsi(pages=8, seed=2).start()
        self.api_port = free_port()
        if self.rehearsal:
            self.deploy_as_the_readme_does()
        else:
            provision(self.aws.endpoint_url)
        _psql(f'CREATE DATABASE "{self.database}"')
        import redis

        redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()
        self.env = self.build_env()
        self.airflow("db", "migrate")
        self.airflow("pools", "import", str(REPO / "infra" / "airflow_pools.json"))
        if self.rehearsal:  # FAB's users live in the metadata DB (compose's airflow-init does this)
            self.airflow(
                "users", "create", "--username", USERNAME, "--password", PASSWORD, "--role", "Admin",
                "--firstname", "Rehearsal", "--lastname", "Admin", "--email", "admin@pipelines.local",
            )  # fmt: skip
        for name in COMPONENTS:
            if name == "worker" and self.executor != "CeleryExecutor":
                continue
            self.start(name)
        self.wait_until_healthy()
        return self

    def start(self, name: str) -> subprocess.Popen:
        """One component as a subprocess in its own session, its output appended to its log."""
        log = (self.home / f"{name}.log").open("a")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "airflow", *COMPONENTS[name]],
            env=self.component_env(name), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        return self.processes[name]

    def kill(self, name: str) -> list[int]:
        """SIGKILL a component with every process it started, as when its machine dies.

        Killing the process group is not enough: Airflow's task supervisor runs each task
        in a process group of its own, which would live on and finish the task. The tree is
        frozen (SIGSTOP) first so that nothing forks or finishes between listing and killing.
        psutil comes with Airflow (a dependency of apache-airflow-core).
        """
        import psutil

        root = psutil.Process(self.processes[name].pid)
        tree: dict[int, psutil.Process] = {}
        for _ in range(3):  # a process forked while the tree was being frozen is caught next round
            found = [root, *root.children(recursive=True)]
            new = [process for process in found if process.pid not in tree]
            if not new:
                break
            for process in new:
                tree[process.pid] = process
                try:
                    process.suspend()
                except psutil.NoSuchProcess:
                    pass
        for process in tree.values():
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(list(tree.values()), timeout=10)
        self.processes[name].wait(timeout=10)
        return sorted(tree)

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.component_env("cli"),  # an operator's shell on a worker (compose exec)
            capture_output=True,
            text=True,
            check=check,
        )

    def wait_until_healthy(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}\n{self.logs(name)}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/api/v2/monitor/health", timeout=5) as response:
                    health = json.load(response)
                if (
                    health.get("scheduler", {}).get("status") == "healthy"
                    and health.get("triggerer", {}).get("status") == "healthy"
                ):
                    return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(1)
        raise TimeoutError("Airflow components did not become healthy\n" + self.logs())

    def logs(self, only: str | None = None, tail: int = 80) -> str:
        out = []
        for name in [only] if only else self.processes:
            path = self.home / f"{name}.log"
            lines = path.read_text(errors="replace").splitlines()[-tail:] if path.exists() else []
            out.append(f"----- {name} (last {tail} lines) -----\n" + "\n".join(lines))
        return "\n".join(out)

    def failed_task_logs(self, tail: int = 40) -> str:
        """The end of every task log that holds an error: what a failed scenario needs to show."""
        out = []
        for path in sorted((self.home / "logs").rglob("*.log")):
            text = path.read_text(errors="replace")
            if re.search(r'"level":\s*"error"|Traceback', text):
                lines = text.splitlines()[-tail:]
                out.append(f"----- {path.relative_to(self.home)} -----\n" + "\n".join(lines))
        return "\n".join(out)

    def down(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for stoppable in (self.esi, self.smtp, self.aws):
            if stoppable is not None:
                stoppable.stop()
        try:
            _psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            shutil.rmtree(self.home, ignore_errors=True)

    # -- REST helpers -------------------------------------------------------------------

    def token(self) -> str:
        request = urllib.request.Request(
            f"{self.api_url}/auth/token",
            data=json.dumps({"username": USERNAME, "password": PASSWORD}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["access_token"]

    def api(self, method: str, path: str, body: Any = None, token: str | None = "auto") -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token == "auto":
            token = self.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            f"{self.api_url}{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers=headers,
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


def main() -> None:
    topology = Topology(rehearsal="--rehearsal" in sys.argv[1:])
    try:
        topology.up()
        print(f"Airflow: {topology.api_url} (admin/admin); AWS: {topology.aws.endpoint_url}; "
              f"SMTP: {topology.smtp.port}; ESI: {topology.esi.url}; logs in {topology.home}", flush=True)  # fmt: skip
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT, signal.SIGTERM])
        signal.sigwait([signal.SIGINT, signal.SIGTERM])
    finally:
        topology.down()


if __name__ == "__main__":
    main()
