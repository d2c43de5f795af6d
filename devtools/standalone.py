"""``make airflow``: the Airflow UI on http://127.0.0.1:8080 against the offline stack.

Runs ``airflow standalone`` (scheduler, dag-processor, triggerer, api-server with
LocalExecutor on SQLite) in ``.airflow/``, after starting the offline AWS stack, the SMTP
catcher and (when present) the fake ESI server in this process, provisioning
``infra/`` and importing the Airflow pools. Log in as admin / admin. Ctrl-C stops all.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

from devtools.airflow_env import REPO, airflow_env

AIRFLOW_HOME = REPO / ".airflow"
USERNAME, PASSWORD = "admin", "admin"


def port_or_free(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]


def standalone_env(aws_endpoint: str, smtp_port: int, esi_url: str | None, api_port: int) -> dict[str, str]:
    passwords = AIRFLOW_HOME / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({USERNAME: PASSWORD}))
    env = {**os.environ, **airflow_env(AIRFLOW_HOME, aws_endpoint, smtp_port, esi_url=esi_url)}
    env.update(
        {
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AWS_ENDPOINT_URL": aws_endpoint,
            # standalone spawns its components as `airflow ...` by name
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
        }
    )
    return env


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the children too, like Ctrl-C
    from devtools.smtp_catcher import SmtpCatcher
    from infra.provision import provision
    from localaws import LocalAWS

    AIRFLOW_HOME.mkdir(exist_ok=True)
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    cleanups = []
    stack = LocalAWS(port=port_or_free(4566)).start()
    cleanups.append(stack.stop)
    smtp = SmtpCatcher(port=port_or_free(1025), echo=True).start()
    cleanups.append(smtp.stop)
    esi_url = None
    try:
        from devtools import fake_esi

        esi = fake_esi.FakeEsi(port=port_or_free(8090)).start()
        cleanups.append(esi.stop)
        esi_url = esi.url
    except ImportError:
        pass
    api_port = port_or_free(8080)
    env = standalone_env(stack.endpoint_url, smtp.port, esi_url, api_port)
    try:
        provision(stack.endpoint_url)
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL
        )
        subprocess.run(
            [sys.executable, "-m", "airflow", "pools", "import", str(REPO / "infra" / "airflow_pools.json")],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(
            f"\n  Airflow UI:      http://127.0.0.1:{api_port}   login: {USERNAME} / {PASSWORD}"
            f"\n  offline AWS:     {stack.endpoint_url}"
            f"\n  SMTP catcher:    127.0.0.1:{smtp.port} (alert e-mails are printed here)"
            + (f"\n  fake ESI:        {esi_url}" if esi_url else "")
            + "\n  Ctrl-C stops everything.\n",
            flush=True,
        )
        proc = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=env)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            try:
                return proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                return 130
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


if __name__ == "__main__":
    sys.exit(main())
