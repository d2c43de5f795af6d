"""``make airflow`` (``python -m devtools.standalone``) stops everything it started, on any signal.

Ctrl-C (SIGINT), SIGTERM (``kill``, a process manager) and SIGHUP (a closed terminal):
every process of the tree is gone and no port it listened on is still open, within 30 s.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from devtools.standalone import PARALLELISM, stop_process_tree
from tests.devtools.standalone_process import alive, listening_ports, start_standalone

STOP_WITHIN_SECONDS = 30


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period():
    ignoring = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", ignoring], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    grandchild = int(proc.stdout.readline())
    started = time.monotonic()
    killed = stop_process_tree(proc, grace=2)
    assert time.monotonic() - started < 10
    assert set(killed) == {proc.pid, grandchild}
    assert not alive({proc.pid, grandchild})


@pytest.fixture(scope="module")
def standalone_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("standalone-home")  # migrated once, reused by each signal


@pytest.mark.timeout(900)  # the whole stack starts each time: minutes on a loaded 2-core machine
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_each_signal_stops_every_process_and_frees_every_port(signum, standalone_home, tmp_path):
    log = tmp_path / "standalone.log"
    proc, url = start_standalone(standalone_home, log)
    try:
        # issue 22.8: the start-up console (every component is healthy by now) warns of no
        # deprecated dependency; the Starlette one is fixed in the lock (requirements.txt: httpx2)
        assert "DeprecationWarning" not in log.read_text(), log.read_text()[-3000:]
        tree = {proc.pid, *(child.pid for child in psutil.Process(proc.pid).children(recursive=True))}
        ports = listening_ports(tree)
        assert int(url.rsplit(":", 1)[1]) in ports  # the api-server is among what we watch
        assert len(ports) >= 4, ports  # api-server, offline AWS, SMTP catcher, fake ESI
        commands = [" ".join(psutil.Process(pid).cmdline()) for pid in alive(tree)]
        assert any("scheduler" in c for c in commands) and any("triggerer" in c for c in commands), commands
        [scheduler] = [p for p in alive(tree) if psutil.Process(p).cmdline()[-1:] == ["scheduler"]]
        # LocalExecutor forks `parallelism` workers: sized for 2 cores, not Airflow's 32
        assert psutil.Process(scheduler).environ()["AIRFLOW__CORE__PARALLELISM"] == str(PARALLELISM) == "4"

        started = time.monotonic()
        proc.send_signal(signum)
        proc.wait(timeout=STOP_WITHIN_SECONDS)
        while alive(tree) and time.monotonic() - started < STOP_WITHIN_SECONDS:
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        print(f"\n[{signum.name}] {len(tree)} processes, ports {sorted(ports)}: stopped in {elapsed:.1f}s")
        assert not alive(tree), f"left running after {signum.name}: {alive(tree)}"
        still_listening = {
            conn.laddr.port
            for conn in psutil.net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port in ports
        }
        assert not still_listening, f"ports still listening after {signum.name}: {still_listening}"
        assert elapsed < STOP_WITHIN_SECONDS
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in alive(tree if "tree" in locals() else {proc.pid}):
            psutil.Process(pid).kill()

