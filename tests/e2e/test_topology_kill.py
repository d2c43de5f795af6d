"""``Topology.kill``: a component dies with every process it started, as when its machine dies."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from devtools.topology import Topology

# A "worker" whose child moves to a process group of its own, as Airflow's task supervisor
# puts each task, and forks a grandchild: killing the worker's process group would miss both.
TREE = """
import os, sys, time
child = os.fork()
if child == 0:
    os.setpgid(0, 0)
    if os.fork() == 0:
        time.sleep(600)
    time.sleep(600)
print(os.getpid(), child, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_kill_takes_the_whole_tree_even_processes_in_other_groups(tmp_path):
    topology = Topology(home=tmp_path)
    worker = subprocess.Popen(
        [sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    topology.processes["worker"] = worker
    parent, child = map(int, worker.stdout.readline().split())
    time.sleep(0.5)  # the grandchild is forked
    assert os.getpgid(child) == child != os.getpgid(parent)
    killed = topology.kill("worker")
    assert parent in killed and child in killed and len(killed) == 3, killed
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in killed if _alive(pid)]
