"""Clearing a task of a finished ``dag.test()`` run and resuming that run, as an operator does.

``dag.test()`` cannot do it: it replaces any run of the same logical date with a new one
(upstream XComs gone). Here the task is cleared with Airflow's own
``clear_task_instances`` (what the UI's and REST API's "Clear" call), the run goes back to
running, and it is resumed in-process with ``dag.test()``'s own loop: the cleared task runs
again on the XComs its upstream tasks left in that run.
"""

from __future__ import annotations


def clear_and_resume(dag, run, task_ids: set[str]):
    """Clear ``task_ids`` of ``run`` and run what becomes runnable until the run finishes."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import clear_task_instances
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    with create_session() as session:
        dr = session.scalar(select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == run.run_id))
        cleared = [ti for ti in dr.get_task_instances(session=session) if ti.task_id in task_ids]
        assert cleared, f"no task {task_ids} in run {run.run_id}"
        clear_task_instances(cleared, session, dag_run_state=DagRunState.RUNNING)
        session.commit()
        dr = session.scalar(select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == run.run_id))
        dr.dag = scheduler_dag
        for _step in range(100):  # each step runs what became runnable; a few suffice
            session.expire_all()
            schedulable, _ = dr.update_state(session=session)
            if dr.state != DagRunState.RUNNING:
                break
            for ti in schedulable:
                ti.try_number += 1
                ti.state = TaskInstanceState.SCHEDULED
            session.commit()
            scheduled = [ti for ti in dr.get_task_instances(session=session) if ti.state == "scheduled"]
            if not scheduled:
                break  # nothing runnable and the run not finished: the caller's assertions say why
            for ti in scheduled:
                try:
                    _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
                except Exception:  # the task's state says how it ended, as in dag.test()
                    pass
        session.expunge_all()
        return dr
