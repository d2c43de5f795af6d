"""Waiting for ESI's next snapshot holds no worker: every task that pins a snapshot defers.

``plan_download`` pins on every run, ``download_pages`` re-pins on a retry (ESI replaced
the planned snapshot) and ``combine`` pins to complete the newest snapshot's missing pages.
When the snapshot a task pins is replaced sooner than the run's margin, the task must leave
its worker (state ``deferred``), the trigger wait until the snapshot's Expires, and the
resumed task pin the *next* snapshot. Observed by recording each in-process task execution
(the worker's part) and the inline trigger run (the triggerer's part), with their intervals.
"""

from __future__ import annotations

import json
import math
import time

from devtools.fake_esi import FakeEsi
from tests.conftest import load_dag, run_dag, task_instances
from tests.market.test_market_orders_dag import _reference_items, items

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


def _record(monkeypatch) -> tuple[list, list]:
    """Each in-process task execution (task, map index, state it ended in, start, end) and each
    inline trigger run (trigger, moment, start, end), as the test runs the DAG."""
    import airflow.sdk.definitions.dag as sdk_dag
    import airflow.sdk.execution_time.supervisor as supervisor

    executions, triggers = [], []
    run_task_in_process, run_inline_trigger = supervisor.run_task_in_process, sdk_dag._run_inline_trigger

    def recording_task(*args, **kwargs):
        started = time.time()
        result = run_task_in_process(*args, **kwargs)
        state = getattr(result.ti.state, "value", result.ti.state)
        executions.append((result.ti.task_id, result.ti.map_index, state, started, time.time()))
        return result

    def recording_trigger(trigger, ti):
        started = time.time()
        event = run_inline_trigger(trigger, ti)
        triggers.append((ti.task_id, type(trigger).__name__, trigger.moment, started, time.time()))
        return event

    monkeypatch.setattr(supervisor, "run_task_in_process", recording_task)
    monkeypatch.setattr(sdk_dag, "_run_inline_trigger", recording_trigger)
    return executions, triggers


REPIN_MARGIN = 15
REPIN_LEFT = 8  # the doomed snapshot's seconds left as it is pinned: less than the margin
REPIN_SNAPSHOT_SECONDS = 200  # the next snapshot outlives the rest of the run


def test_a_rollover_in_a_split_region_is_retried_its_re_pins_defer_and_one_snapshot_is_loaded(
    airflow_db, aws, monkeypatch
):
    """A split region meets a new snapshot mid-download (page 13): the shares that met it fail
    their attempt, and their retries re-pin; ``combine`` pins the current snapshot to complete
    the newest one. Each of these two tasks' first pin finds its snapshot replaced in
    REPIN_LEFT s (< the margin): it defers and is resumed on the next snapshot (before, each
    slept in its worker); a later re-pin finds time left and goes on at once. The region is
    loaded from one snapshot, every item equal to that snapshot's computed independently."""
    from airflow.sdk import get_current_context

    from pipelines.market.esi import EsiClient

    executions, triggers = _record(monkeypatch)
    pin, doomed = EsiClient.pin, {}  # task -> (the doomed snapshot, when ESI replaces it)

    async def doomed_first_pin_of_each_task(self, *args, **kwargs):
        task_id = get_current_context()["ti"].task_id
        if task_id in ("download_pages", "combine") and task_id not in doomed:
            # ESI's snapshot as served now; from here on replaced every REPIN_SNAPSHOT_SECONDS,
            # this one REPIN_LEFT s from now (the fake serves `snapshot` + elapsed periods)
            now = time.time()
            esi.snapshot, _ = esi.current_snapshot(now)
            esi.snapshot_seconds = REPIN_SNAPSHOT_SECONDS
            esi.clock_start = float(math.ceil(now)) + REPIN_LEFT - REPIN_SNAPSHOT_SECONDS
            doomed[task_id] = (esi.snapshot, esi.current_snapshot(now)[1])
        return await pin(self, *args, **kwargs)

    monkeypatch.setattr(EsiClient, "pin", doomed_first_pin_of_each_task)
    esi = FakeEsi(pages=25, seed=3, rollover_after=12)  # pages 1-12 of snapshot 0, then snapshot 1
    with esi:
        monkeypatch.setenv("AIRFLOW_CONN_ESI_DEFAULT", json.dumps({"conn_type": "http", "host": esi.url}))
        conf = {"region_id": REGION, "concurrency": 2, "pages_per_task": 10, "snapshot_margin_seconds": REPIN_MARGIN}
        run = run_dag(load_dag("market_orders"), conf=conf, retries=2)

    assert run.state == "success"
    tries = {ti.map_index: ti.try_number for ti in task_instances(run) if ti.task_id == "download_pages"}
    assert sorted(tries) == [0, 1, 2]  # pages 2-11, 12-21, 22-25
    # the share(s) that met snapshot 1 were retried; which ones depends on the order the
    # mapped tasks ran in, so the test holds to what matters: a retry, then one snapshot
    assert any(attempts > 1 for attempts in tries.values()), tries
    assert esi.requests > 25
    assert doomed.keys() == {"download_pages", "combine"}
    assert [(task_id, kind) for task_id, kind, *_ in triggers] == [
        ("download_pages", "DateTimeTrigger"),
        ("combine", "DateTimeTrigger"),
    ]
    for task_id, _, moment, wait_started, wait_ended in triggers:
        _, expires = doomed[task_id]
        assert expires <= moment.timestamp() <= expires + 2  # until the doomed snapshot's Expires (+1 s)
        [deferred] = [e for e in executions if e[0] == task_id and e[2] == "deferred"]
        *_, deferred_started, deferred_ended = deferred
        # the worker was left at once: the deferred execution ended before the snapshot was
        # replaced (a sleep in the task would end after), and before the wait began
        assert deferred_ended < expires and deferred_ended <= wait_started
        assert wait_ended - wait_started >= 1  # the wait happened in the trigger, not in a worker
        [resumed] = [
            e for e in executions if e[:2] == deferred[:2] and e[3] >= wait_ended and e[2] == "success"
        ]  # the same task instance, run again after the trigger fired

    # data: one snapshot, the one after combine's doomed snapshot, every page of it
    final = esi.last_modified(doomed["combine"][0] + 1).strftime("%a, %d %b %Y %H:%M:%S GMT")
    got = items(aws)
    assert {item["last_modified"] for item in got.values()} == {final}
    expected = _reference_items(25, snapshot=doomed["combine"][0] + 1)
    assert got.keys() == expected.keys()
    for type_id, item in expected.items():
        for name in ("sell_volume", "buy_volume", "sell_orders", "buy_orders", "min_sell_price"):
            assert got[type_id].get(name) == item.get(name), (type_id, name)
