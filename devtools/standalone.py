"""``make airflow``: the Airflow UI on http://127.0.0.1:8080 against the offline stack, with data.

Starts the offline AWS stack, the SMTP catcher and the fake ESI server in this process,
provisions ``infra/``, imports the Airflow pools, and loads each pipeline's sample data
through ``devtools/demo_steps`` (``standalone(ctx)`` of each step), which also answers the
Variables that make every DAG's *defaults* work offline (local copies of the COVID
sources, a directory CSV, raw traffic events for yesterday's event day). Then it runs
``airflow standalone`` (scheduler, dag-processor, triggerer, api-server; LocalExecutor
on SQLite, parallelism 4 for a 2-core machine) in ``.airflow/``. Log in as admin / admin.

Ctrl-C, SIGTERM and SIGHUP all stop everything: ``airflow standalone`` runs in its own
process group, which gets SIGTERM, and whatever of it (the scheduler ignores SIGTERM while
busy) still runs after ``STOP_GRACE_SECONDS`` gets SIGKILL, then the in-process servers
stop. ``AIRFLOW_STANDALONE_HOME`` moves the Airflow home (the tests use a scratch one),
``AIRFLOW_STANDALONE_PORT`` the UI's port (0: every server on any free port).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from devtools.airflow_env import REPO, airflow_env

AIRFLOW_HOME = Path(os.environ.get("AIRFLOW_STANDALONE_HOME", REPO / ".airflow"))
USERNAME, PASSWORD = "admin", "admin"
# LocalExecutor forks one worker per parallelism slot: 4 fits a 2-core machine (Airflow's default is 32)
PARALLELISM = 4
STOP_GRACE_SECONDS = 10
FIRST_DAG = "covid_daily"
OFFLINE_STACK_LOG = AIRFLOW_HOME / "offline-stack.log"


# AIRFLOW_STANDALONE_PORT=0: every server on any free port (tests that run side by side)
ANY_FREE_PORTS = os.environ.get("AIRFLOW_STANDALONE_PORT") == "0"


def port_or_free(preferred: int) -> int:
    """``preferred`` if it is free, else any free port."""
    if ANY_FREE_PORTS:
        preferred = 0
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def warnings_to_log(path: Path) -> Iterator[None]:
    """Every warning raised inside (any thread: the offline stack serves from its own), and
    moto's own log records, are appended to ``path`` instead of the console; none is dropped.

    Provisioning ``infra/`` makes moto's CloudFormation warn "Tried to parse AWS::S3::BucketPolicy
    but it's not supported" for each resource type ``infra/provision.py`` then applies itself:
    expected, and of no use to someone opening the UI, so it goes to the offline stack's log.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    moto_log = logging.getLogger("moto")  # "No Moto CloudFormation support for ...", same cause
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    moto_log.addHandler(handler)
    propagate, moto_log.propagate = moto_log.propagate, False
    with path.open("a") as log_file, warnings.catch_warnings():  # the filters stay as they are
        def to_log(message, category, filename, lineno, file=None, line=None) -> None:
            log_file.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} ")
            log_file.write(warnings.formatwarning(message, category, filename, lineno, line))
            log_file.flush()

        warnings.showwarning = to_log
        try:
            yield
        finally:
            moto_log.removeHandler(handler)
            moto_log.propagate = propagate
            handler.close()


def jwt_secret() -> str:
    """The UI's token-signing secret, 64 random bytes kept in the Airflow home (0600).

    Airflow's generated default is 24 characters, and PyJWT warns on the console at each login
    that an HMAC key under 64 bytes is below the minimum for SHA512 (issue 22.8). Kept, not
    drawn per start, so a restart does not log the user out.
    """
    path = AIRFLOW_HOME / "jwt_secret"
    if not path.exists():
        import secrets

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(64))
    return path.read_text().strip()


def standalone_env(aws_endpoint: str, smtp_port: int, esi_url: str | None, api_port: int) -> dict[str, str]:
    passwords = AIRFLOW_HOME / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({USERNAME: PASSWORD}))
    env = {**os.environ, **airflow_env(AIRFLOW_HOME, aws_endpoint, smtp_port, esi_url=esi_url)}
    env.update(
        {
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
            # SQLite's default 5 s busy timeout is too short on a loaded 2-core machine: the
            # scheduler died of "database is locked" while the other components wrote
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}?timeout=60",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            # where alert e-mails' log links point: this UI (see README "Failure e-mails")
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret(),
            "AWS_ENDPOINT_URL": aws_endpoint,
            # standalone spawns its components as `airflow ...` by name
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
        }
    )
    return env


class StopRequested(BaseException):
    """Ctrl-C, SIGTERM or SIGHUP: unwind and stop everything (a BaseException, like KeyboardInterrupt)."""


def _request_stop(signum: int, _frame: object) -> None:
    raise StopRequested(signal.Signals(signum).name)


def stop_process_tree(proc: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> list[int]:
    """SIGTERM the process group of ``proc`` (started with ``start_new_session``), SIGKILL what remains.

    The descendants are listed before the signal: a child that left the group, or one
    whose parent died first, is still found. Answers the pids that needed SIGKILL.
    """
    import psutil

    try:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    _gone, alive = psutil.wait_procs(tree, timeout=grace)
    killed = []
    for leftover in alive:
        try:
            leftover.kill()
            killed.append(leftover.pid)
        except psutil.NoSuchProcess:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything forked after the listing
    except ProcessLookupError:
        pass
    psutil.wait_procs(alive, timeout=5)
    proc.wait()
    return killed


def load_sample_data(ctx, steps) -> dict[str, str]:
    """Each demo step loads its sample data; answers the environment (Variables, connections) they need."""
    extra: dict[str, str] = {}
    for step in steps:
        if not hasattr(step, "standalone"):
            raise RuntimeError(f"devtools/demo_steps/{step.__name__.rsplit('.', 1)[-1]}.py has no standalone(ctx)")
        extra.update(step.standalone(ctx))
        print(f"  sample data for {step.DAG_ID} loaded", flush=True)
    return extra


def main() -> int:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _request_stop)
    cleanups = []
    try:
        return _run(cleanups)
    except StopRequested as stop:
        print(f"\n{stop}: stopping everything", flush=True)
        return 0
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the stopping short
        started = time.monotonic()
        for cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception as error:  # keep stopping the rest
                print(f"cleanup failed: {error}", flush=True)
        print(f"stopped in {time.monotonic() - started:.1f}s", flush=True)


def _run(cleanups: list) -> int:
    from devtools.demo import DemoContext, discover_steps
    from devtools.smtp_catcher import SmtpCatcher
    from infra.provision import provision
    from localaws import LocalAWS

    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    stack = LocalAWS(port=port_or_free(4566)).start()
    cleanups.append(stack.stop)
    smtp = SmtpCatcher(port=port_or_free(1025), echo=True).start()
    cleanups.append(smtp.stop)
    api_port = port_or_free(int(os.environ.get("AIRFLOW_STANDALONE_PORT", "8080")))
    env = standalone_env(stack.endpoint_url, smtp.port, None, api_port)
    with warnings_to_log(OFFLINE_STACK_LOG):
        provision(stack.endpoint_url)
        ctx = DemoContext(stack.endpoint_url, env, AIRFLOW_HOME / "sample-data", stack, smtp)
        ctx.workdir.mkdir(exist_ok=True)
        cleanups.extend(reversed_cleanups(ctx))
        env.update(load_sample_data(ctx, discover_steps()))
    for args in (["db", "migrate"], ["pools", "import", str(REPO / "infra" / "airflow_pools.json")]):
        subprocess.run([sys.executable, "-m", "airflow", *args], env=env, check=True, stdout=subprocess.DEVNULL)
    esi = json.loads(env["AIRFLOW_CONN_ESI_DEFAULT"])["host"] if "AIRFLOW_CONN_ESI_DEFAULT" in env else None
    print(
        f"\n  Airflow UI:      http://127.0.0.1:{api_port}   login: {USERNAME} / {PASSWORD}"
        f"\n  Try first:       {FIRST_DAG} (unpause it, then Trigger with its defaults; about a minute),"
        f"\n                   then the dashboard: http://127.0.0.1:{api_port}/results/dashboard"
        f"\n  offline AWS:     {stack.endpoint_url}   (provisioning warnings: {OFFLINE_STACK_LOG})"
        f"\n  SMTP catcher:    127.0.0.1:{smtp.port} (alert e-mails are printed here)"
        + (f"\n  fake ESI:        {esi}" if esi else "")
        + f"\n  LocalExecutor:   parallelism {PARALLELISM}"
        + "\n  Ctrl-C (or SIGTERM/SIGHUP) stops everything.\n",
        flush=True,
    )
    proc = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=env, start_new_session=True)
    cleanups.append(lambda: stop_process_tree(proc))
    return proc.wait()


def reversed_cleanups(ctx) -> list:
    """The demo steps' cleanups (fakes they started), run when standalone stops."""

    def run_all() -> None:
        for fn in reversed(ctx.cleanups):
            fn()

    return [run_all]


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Every server and process is stopped by now; what may remain are the offline stack's
    # worker threads finishing a crawl or query for clients that are gone, which the
    # interpreter would otherwise join at exit (measured: 15 s more on a loaded machine).
    os._exit(code)
