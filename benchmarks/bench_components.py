"""What the project's plugins cost every Airflow component (issue: lean runtime).

Each figure is a ratio measured in this run against the same thing with an EMPTY plugins
folder (the baseline), on the same machine, one after the other:

- plugin load: a fresh interpreter loading Airflow's plugins (``ensure_plugins_loaded`` +
  the FastAPI apps the api-server mounts), median of several runs; also which modules of
  ``pipelines`` it imported (only the DynamoDB adapter the results API reads through) and
  whether pandas or numpy came with them (they must not);
- idle RSS of the scheduler, api-server and triggerer (each process with its children),
  15 s after the topology is healthy;
- wall time of a trivial task from queued to success (median of 5 runs), through the
  LocalExecutor and through the Celery worker.

Goal: the plugins add at most 10 % to each (ratio <= 1.10).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import psutil

from devtools.airflow_env import REPO
from devtools.topology import Topology

PROJECT_PLUGINS = REPO / "plugins"
BENCH_DAGS = Path(__file__).resolve().parent / "dags"
RUNS = 9  # sub-second figures: more runs, the median
GOAL = "<=1.10"

LOAD_PROBE = """
import json, sys, time
started = time.perf_counter()
from airflow import plugins_manager
plugins_manager.ensure_plugins_loaded()
plugins_manager.get_fastapi_plugins()
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "errors": plugins_manager.get_import_errors(),
                  "heavy": sorted(m for m in ("pandas", "numpy") if m in sys.modules),
                  "pipelines": sorted(m for m in sys.modules if m.split(".")[0] == "pipelines")}))
"""


def plugin_load(plugins_folder: Path) -> dict:
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder),
           "AIRFLOW_HOME": tempfile.mkdtemp(prefix="bench-plugins-")}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", LOAD_PROBE], env=env, capture_output=True, text=True,
                         check=True, cwd=REPO).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def tree_rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    members = [process, *process.children(recursive=True)]
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 1e6


def task_wall_seconds(topology: Topology) -> float:
    """Trigger the trivial DAG and return its task's queued -> end time, in seconds."""
    code, body = topology.api("POST", "/api/v2/dags/trivial_task/dagRuns", {"logical_date": None})
    assert code == 200, body
    run_id = body["dag_run_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        code, ti = topology.api("GET", f"/api/v2/dags/trivial_task/dagRuns/{run_id}/taskInstances/noop")
        if code == 200 and ti["state"] == "success":
            return (
                datetime.fromisoformat(ti["end_date"]) - datetime.fromisoformat(ti["queued_when"])
            ).total_seconds()
        if code == 200 and ti["state"] in ("failed", "upstream_failed"):
            raise RuntimeError(f"trivial task {ti['state']}\n{topology.failed_task_logs()}")
        time.sleep(0.5)
    raise TimeoutError("trivial task did not finish")


def measure_topology(executor: str, plugins_folder: Path) -> dict[str, float]:
    topology = Topology(executor=executor, plugins_folder=plugins_folder, dags_folder=BENCH_DAGS)
    try:
        topology.up()
        deadline = time.monotonic() + 120
        while topology.api("GET", "/api/v2/dags/trivial_task")[0] != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("trivial_task was not parsed\n" + topology.logs("dag-processor"))
            time.sleep(1)
        assert topology.api("PATCH", "/api/v2/dags/trivial_task", {"is_paused": False})[0] == 200
        time.sleep(15)  # idle: the components have settled after start-up
        figures = {
            f"rss_{name}": tree_rss_mb(topology.processes[name].pid)
            for name in ("scheduler", "api-server", "triggerer")
        }
        task_wall_seconds(topology)  # the first run warms caches in both variants alike
        figures["task_seconds"] = statistics.median(task_wall_seconds(topology) for _ in range(RUNS))
        return figures
    finally:
        topology.down()


def main() -> None:
    empty = Path(tempfile.mkdtemp(prefix="bench-empty-plugins-"))

    loads = {"empty": [], "project": []}
    heavy, pipeline_modules, errors = set(), set(), {}
    for _ in range(5):  # alternate, so a busy moment of the machine hits both alike
        loads["empty"].append(plugin_load(empty)["seconds"])
        result = plugin_load(PROJECT_PLUGINS)
        loads["project"].append(result["seconds"])
        heavy.update(result["heavy"])
        pipeline_modules.update(result["pipelines"])
        errors.update(result["errors"])
    if errors:
        raise SystemExit(f"plugin import errors: {errors}")
    empty_load, project_load = statistics.median(loads["empty"]), statistics.median(loads["project"])
    print(f"plugin load: empty folder {empty_load:.3f} s, project plugins {project_load:.3f} s; "
          f"pandas/numpy imported by the plugins: {sorted(heavy) or 'none'}; "
          f"pipelines modules: {sorted(pipeline_modules)}")  # fmt: skip
    print(
        f"RESULT plugin_load_vs_empty_plugins {project_load / empty_load:.2f} {GOAL} "
        "plugin load time, project plugins over an empty plugins folder"
    )
    print(
        f"RESULT plugins_import_pandas_numpy_count {len(heavy)} ==0 "
        "count of pandas/numpy imported by loading the plugins (absolute)"
    )

    for executor, label in (("CeleryExecutor", "celery"), ("LocalExecutor", "local")):
        baseline = measure_topology(executor, empty)
        project = measure_topology(executor, PROJECT_PLUGINS)
        print(f"{executor}: empty plugins {json.dumps(baseline)}; project plugins {json.dumps(project)}")
        print(f"RESULT task_queued_to_success_{label} {project['task_seconds'] / baseline['task_seconds']:.2f} "
              f"{GOAL} trivial task queued->success, project plugins over empty ({executor})")  # fmt: skip
        if executor == "CeleryExecutor":  # the idle components are the same under both executors
            for name in ("scheduler", "api-server", "triggerer"):
                key = f"rss_{name}"
                print(
                    f"RESULT idle_rss_{name.replace('-', '_')} {project[key] / baseline[key]:.2f} {GOAL} "
                    f"idle RSS of the {name} with its children, project plugins over empty"
                )


if __name__ == "__main__":
    main()
