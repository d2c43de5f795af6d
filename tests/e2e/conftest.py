"""One production topology for the whole e2e session (see devtools/topology.py)."""

from __future__ import annotations

import os
import time

import pytest

from devtools.topology import Topology

DURATIONS: dict[str, float] = {}


@pytest.fixture(scope="session")
def topology():
    os.environ["LOCALAWS_CRAWL_MIN_SECONDS"] = "3"  # long enough to see the crawl task DEFERRED
    os.environ["LOCALAWS_ATHENA_MIN_SECONDS"] = "2"
    started = time.monotonic()
    stack = Topology()
    try:
        stack.up()
        DURATIONS["topology up"] = time.monotonic() - started
        yield stack
    except Exception:
        print(stack.logs())
        raise
    finally:
        if stack.processes:
            print("\n" + stack.logs(tail=40) if os.environ.get("E2E_PRINT_LOGS") else "")
        stack.down()


def pytest_terminal_summary(terminalreporter):
    if DURATIONS:
        terminalreporter.section("e2e scenario durations")
        for name, seconds in DURATIONS.items():
            terminalreporter.write_line(f"{seconds:7.1f} s  {name}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        DURATIONS[item.name] = report.duration
        if report.failed and "topology" in item.funcargs:
            stack = item.funcargs["topology"]
            report.sections.append(("component logs", stack.logs(tail=60)))
            report.sections.append(("failed task logs", stack.failed_task_logs()))


class Runs:
    """REST helpers for the scenarios."""

    def __init__(self, topology: Topology) -> None:
        self.t = topology

    def unpause(self, dag_id: str) -> None:
        code, body = self.t.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        assert code == 200, body

    def trigger(self, dag_id: str, conf: dict) -> str:
        code, body = self.t.api(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf}
        )
        assert code == 200, body
        return body["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        code, body = self.t.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")
        assert code == 200, body
        return body["dag_runs"]

    def wait(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code, body = self.t.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if code == 200 and body["state"] in ("success", "failed"):
                return body["state"]
            time.sleep(2)
        raise TimeoutError(f"{dag_id} {run_id} did not finish in {timeout}s")

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        code, body = self.t.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=200")
        assert code == 200, body
        return {f"{ti['task_id']}[{ti['map_index']}]": ti["state"] for ti in body["task_instances"]}


@pytest.fixture(scope="session")
def runs(topology):
    return Runs(topology)
