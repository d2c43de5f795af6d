"""Every DAG in dags/ imports cleanly, follows the house rules, and parses offline and fast."""

from __future__ import annotations

import socket
import time

import pytest

from pipelines.alerts import FailureEmailNotifier
from tests.conftest import REPO

DAGS_FOLDER = REPO / "dags"


class NetworkUsedAtParseTime(AssertionError):
    pass


@pytest.fixture(scope="module")
def dagbag():
    """The dags folder parsed with sockets and Variable reads forbidden."""
    from unittest import mock

    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import Variable

    def refuse_socket(*args, **kwargs):
        raise NetworkUsedAtParseTime(f"a DAG file opened a socket at parse time: {args!r}")

    def refuse_variable(*args, **kwargs):
        raise NetworkUsedAtParseTime(f"a DAG file read a Variable at parse time: {args!r}")

    with (
        mock.patch.object(socket.socket, "connect", refuse_socket),
        mock.patch.object(socket, "create_connection", refuse_socket),
        mock.patch.object(socket, "getaddrinfo", refuse_socket),
        mock.patch.object(Variable, "get", refuse_variable),
    ):
        started = time.perf_counter()
        bag = DagBag(dag_folder=str(DAGS_FOLDER))
        elapsed = time.perf_counter() - started
    print(f"\nparsed {len(bag.dags)} DAG(s) from {DAGS_FOLDER} in {elapsed:.3f}s")
    return bag


def test_the_dags_folder_has_dags(dagbag):
    assert dagbag.dags, "no DAGs found in dags/"


def test_no_import_errors_and_no_network_or_variables_at_parse_time(dagbag):
    assert not dagbag.import_errors, "\n".join(f"{f}: {e}" for f, e in dagbag.import_errors.items())


def test_each_dag_file_holds_the_dag_of_its_name(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.fileloc.endswith(f"/{dag_id}.py"), f"{dag_id} lives in {dag.fileloc}"


@pytest.mark.parametrize("rule", ["tags", "owner", "doc_md", "retries", "failure_notifier"])
def test_every_dag_follows_the_house_rules(dagbag, rule):
    broken = []
    for dag_id, dag in dagbag.dags.items():
        if rule == "tags" and not dag.tags:
            broken.append(dag_id)
        if rule == "doc_md" and not (dag.doc_md or "").strip():
            broken.append(dag_id)
        for task in dag.tasks:
            if rule == "owner" and task.owner in (None, "", "airflow"):
                broken.append(f"{dag_id}.{task.task_id}")
            if rule == "retries" and task.retries < 2:
                broken.append(f"{dag_id}.{task.task_id} (retries={task.retries})")
            if rule == "failure_notifier":
                callbacks = task.on_failure_callback or []
                callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
                if not any(isinstance(cb, FailureEmailNotifier) for cb in callbacks):
                    broken.append(f"{dag_id}.{task.task_id}")
    assert not broken, f"{rule} missing or wrong in: {', '.join(broken)}"


def test_parse_time_of_the_dags_folder_is_reported(dagbag, capsys):
    """A fresh interpreter parses the folder (what the dag-processor does); the time is printed."""
    import os
    import subprocess
    import sys

    code = (
        "import time\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "t = time.perf_counter()\n"
        f"bag = DagBag(dag_folder={str(DAGS_FOLDER)!r})\n"
        "print(len(bag.dags), len(bag.import_errors), f'{time.perf_counter() - t:.3f}')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy(), check=True
    )
    dags, errors, seconds = result.stdout.strip().splitlines()[-1].split()
    with capsys.disabled():
        print(f"\n[dags folder] {dags} DAG(s) parsed in {seconds}s (fresh process, airflow imported)")
    assert (int(dags), int(errors)) == (len(dagbag.dags), 0)


def test_every_dag_links_its_operators_page_and_the_page_covers_what_an_operator_needs(dagbag):
    for dag_id, dag in dagbag.dags.items():
        page = REPO / "docs" / "pipelines" / f"{dag_id}.md"
        assert f"`docs/pipelines/{dag_id}.md`" in dag.doc_md, f"{dag_id}: doc_md does not link {page.name}"
        text = page.read_text()
        for section in ("## Reads and writes", "## Params", "## When it fails"):
            assert section in text, f"{page}: missing {section!r}"
        for param in dag.params:
            assert f"`{param}`" in text, f"{page}: param {param!r} undocumented"


def test_every_scheduled_dag_declares_its_late_run_deadline(dagbag):
    """Time-scheduled DAGs carry ``deadline=late_run_alert(dag_id)``; only event-driven DAGs may not."""
    from airflow.sdk.definitions.timetables.assets import AssetTriggeredTimetable

    from pipelines.deadlines import NO_DEADLINE, RUN_DEADLINES, late_run_alert

    broken = []
    for dag_id, dag in dagbag.dags.items():
        if isinstance(dag.timetable, AssetTriggeredTimetable) and dag_id in NO_DEADLINE:
            assert not dag.deadline, f"{dag_id} is listed in NO_DEADLINE but declares one"
            continue
        if dag_id not in RUN_DEADLINES:
            broken.append(f"{dag_id} (no entry in pipelines.deadlines.RUN_DEADLINES)")
        elif dag.deadline != [late_run_alert(dag_id)] or dag.deadline[0].interval != RUN_DEADLINES[dag_id]:
            broken.append(f"{dag_id} (deadline={dag.deadline!r})")
    assert not broken, f"scheduled DAGs without their late-run deadline: {', '.join(broken)}"
