"""Start ``python -m devtools.standalone`` as a user would, wait until healthy; inspect its process tree."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests

from tests.conftest import REPO


def listening_ports(pids: set[int]) -> set[int]:
    return {
        conn.laddr.port
        for conn in psutil.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids
    }


def alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def start_standalone(home: Path, log: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "AIRFLOW_STANDALONE_HOME": str(home), "AIRFLOW_STANDALONE_PORT": "0"}
    for key in [k for k in env if k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))]:
        del env[key]  # the test session's Airflow settings are not the user's
    env.pop("AIRFLOW_HOME", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.standalone"], cwd=REPO, env=env,
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 900  # a loaded 2-core machine: minutes to migrate and start
    url = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"standalone exited early:\n{log.read_text()[-3000:]}"
        found = url or re.search(r"Airflow UI:\s+(http://127\.0\.0\.1:\d+)", log.read_text())
        url = url or (found.group(1) if found else None)
        if url:
            try:
                health = requests.get(f"{url}/api/v2/monitor/health", timeout=5).json()
                if all(
                    health.get(part, {}).get("status") == "healthy"
                    for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
                ):
                    return proc, url
            except (requests.RequestException, ValueError):
                pass
        time.sleep(3)
    proc.send_signal(signal.SIGTERM)  # stops its process group too; a bare kill would orphan it
    proc.wait(timeout=60)
    raise AssertionError(f"standalone did not come up healthy:\n{log.read_text()[-3000:]}")


