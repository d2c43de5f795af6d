"""Waiting for ESI's next snapshot holds no worker: plan_download defers to the triggerer.

The fake ESI replaces its snapshot every 40 s; as the task starts, the test sets the fake's
clock so the snapshot it pins has 12 s left, less than the run's 20 s margin. The task must
leave its worker (state
``deferred``), the trigger wait until the snapshot's Expires, and the resumed task pin the
*next* snapshot. Observed by recording each in-process task execution (the worker's part)
and the inline trigger run (the triggerer's part), with their intervals.
"""

from __future__ import annotations

import json
import math
import time

from devtools.fake_esi import FakeEsi
from tests.conftest import load_dag, task_instances

REGION = 10000002
SNAPSHOT_SECONDS = 40
MARGIN = 20
LEFT_AT_START = 12


def test_plan_download_defers_until_the_next_snapshot_then_pins_it(airflow_db, aws, monkeypatch):
    import airflow.sdk.definitions.dag as sdk_dag
    import airflow.sdk.execution_time.supervisor as supervisor

    executions, triggers = [], []
    run_task_in_process, run_inline_trigger = supervisor.run_task_in_process, sdk_dag._run_inline_trigger

    def recording_task(*args, **kwargs):
        started = time.time()
        result = run_task_in_process(*args, **kwargs)
        executions.append(
            (result.ti.task_id, getattr(result.ti.state, "value", result.ti.state), started, time.time())
        )
        return result

    def recording_trigger(trigger, ti):
        started = time.time()
        event = run_inline_trigger(trigger, ti)
        triggers.append((type(trigger).__name__, trigger.moment, started, time.time()))
        return event

    from pipelines.market.esi import EsiClient

    first_page, pinned_at = EsiClient._first_page, []

    async def first_page_of_a_doomed_snapshot(self, *args, **kwargs):
        if not pinned_at:  # the snapshot served to the first pin expires LEFT_AT_START s from now
            pinned_at.append(time.time())
            esi.clock_start = float(math.ceil(pinned_at[0])) + LEFT_AT_START - SNAPSHOT_SECONDS
        return await first_page(self, *args, **kwargs)

    monkeypatch.setattr(EsiClient, "_first_page", first_page_of_a_doomed_snapshot)
    monkeypatch.setattr(supervisor, "run_task_in_process", recording_task)
    monkeypatch.setattr(sdk_dag, "_run_inline_trigger", recording_trigger)

    dag = load_dag("market_orders").partial_subset("plan_download", include_downstream=False)
    for task in dag.tasks:
        task.retries = 0
    esi = FakeEsi(pages=6, seed=3, snapshot_seconds=SNAPSHOT_SECONDS)
    with esi:
        monkeypatch.setenv("AIRFLOW_CONN_ESI_DEFAULT", json.dumps({"conn_type": "http", "host": esi.url}))
        run = dag.test(run_conf={"region_id": REGION, "snapshot_margin_seconds": MARGIN})
        doomed, expires = esi.current_snapshot(now=pinned_at[0])
        next_snapshot = esi.last_modified(doomed + 1).strftime("%a, %d %b %Y %H:%M:%S GMT")

    assert run.state == "success"
    assert [(task_id, state) for task_id, state, *_ in executions] == [
        ("plan_download", "deferred"),  # the worker was left while waiting
        ("plan_download", "success"),
    ]
    [(trigger_name, moment, wait_started, wait_ended)] = triggers
    assert trigger_name == "DateTimeTrigger"
    assert expires <= moment.timestamp() <= expires + 2  # until the doomed snapshot's Expires (+1 s)
    _, _, first_started, first_ended = executions[0]
    _, _, second_started, _ = executions[1]
    # Ordering observed: the first execution ended before the wait, the second began after it.
    assert first_ended <= wait_started and wait_ended <= second_started
    assert wait_ended - wait_started >= 5  # the wait happened in the trigger, not in a worker

    [ti] = task_instances(run)
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        stored = (
            session.query(XComModel.value)
            .filter_by(dag_id="market_orders", run_id=run.run_id, task_id="plan_download", key="return_value")
            .scalar()
        )
    shares = json.loads(stored) if isinstance(stored, str | bytes) else stored
    assert {share["last_modified"] for share in shares} == {next_snapshot}
    assert ti.state == "success"
