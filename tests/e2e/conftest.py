"""One production topology for the whole e2e session (see devtools/topology.py)."""

from __future__ import annotations

import io
import os
import time
from datetime import datetime

import pyarrow.parquet as pq
import pytest

from devtools.topology import Topology

DURATIONS: dict[str, float] = {}
BUCKET = "pipelines-data-lake"


def query_count(aws, table: str, key: str, value: str) -> int:
    return sum(
        page["Count"]
        for page in aws.client("dynamodb").get_paginator("query").paginate(
            TableName=table, KeyConditionExpression="#k = :v", ExpressionAttributeNames={"#k": key},
            ExpressionAttributeValues={":v": {"S": value}}, Select="COUNT",
        )
    )  # fmt: skip


def partitions(aws) -> dict[tuple, tuple[int, int]]:
    """Every traffic event-hour partition in S3: (year, month, day, hour) -> (files, rows)."""
    s3, found = aws.client("s3"), {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="traffic/transformed/"):
        for obj in page.get("Contents", []):
            key = tuple(p.split("=")[1] for p in obj["Key"].split("/")[2:-1])
            rows = pq.read_metadata(
                io.BytesIO(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
            ).num_rows
            files, total = found.get(key, (0, 0))
            found[key] = (files + 1, total + rows)
    return found


@pytest.fixture(scope="session")
def topology():
    os.environ["LOCALAWS_CRAWL_MIN_SECONDS"] = "3"  # long enough to see the crawl task DEFERRED
    os.environ["LOCALAWS_ATHENA_MIN_SECONDS"] = "2"
    started = time.monotonic()
    stack = Topology(rehearsal=True)
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
        self._token, self._token_at = "", 0.0

    def token(self) -> str:
        """One token for many calls (scenarios poll several times a second)."""
        if time.monotonic() - self._token_at > 600:
            self._token, self._token_at = self.t.token(), time.monotonic()
        return self._token

    def api(self, method: str, path: str, body=None):
        return self.t.api(method, path, body, token=self.token())

    def unpause(self, dag_id: str) -> None:
        code, body = self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        assert code == 200, body

    def trigger(self, dag_id: str, conf: dict) -> str:
        code, body = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        assert code == 200, body
        return body["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        code, body = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")
        assert code == 200, body
        return body["dag_runs"]

    def wait(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                code, body = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            except OSError:  # a busy api-server answering slower than the client's 30 s: poll again
                code, body = 0, None
            if code == 200 and body["state"] in ("success", "failed"):
                return body["state"]
            time.sleep(2)
        raise TimeoutError(f"{dag_id} {run_id} did not finish in {timeout}s")

    def state(self, dag_id: str, run_id: str) -> str:
        code, body = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        assert code == 200, body
        return body["state"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        code, body = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=200")
        assert code == 200, body
        return body["task_instances"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {
            f"{ti['task_id']}[{ti['map_index']}]": ti["state"] for ti in self.task_instances(dag_id, run_id)
        }

    def backfill_runs(self, dag_id: str, since: float) -> list[dict]:
        """The DAG's backfill runs queued since ``since`` (a POSIX timestamp)."""
        return [
            run for run in self.runs(dag_id)
            if run["run_type"] == "backfill"
            and datetime.fromisoformat(run["queued_at"] or run["run_after"]).timestamp() >= since - 5
        ]  # fmt: skip

    def wait_backfills_done(self, dag_id: str, since: float, timeout: float = 600) -> list[dict]:
        """Until the scheduler marks every backfill of the DAG complete (only then may the
        next be created) and their runs since ``since`` are finished; answers those runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code, body = self.api("GET", f"/api/v2/backfills?dag_id={dag_id}")
            mine = self.backfill_runs(dag_id, since)
            if (
                code == 200
                and all(backfill["completed_at"] for backfill in body["backfills"])
                and all(run["state"] in ("success", "failed") for run in mine)
            ):
                return mine
            time.sleep(2)
        raise TimeoutError(f"backfills of {dag_id} not done in {timeout}s")


@pytest.fixture(scope="session")
def runs(topology):
    return Runs(topology)
