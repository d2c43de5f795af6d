""" "Data as of": when a pipeline last loaded its table, from Airflow's own records.

The api-server serving this app has Airflow's metadata database: the end of the latest
successful ``load`` task of the DAG that writes the data is when that data was last
written, for every pipeline alike, without the pipelines storing anything extra.
"""

from __future__ import annotations

from datetime import UTC, datetime

LOAD_TASK_ID = "load"  # every result-writing DAG writes its table in a task named `load`


def last_loaded(dag_id: str) -> str | None:
    """ISO 8601 UTC end of the DAG's latest successful ``load`` task; None if it never ran."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        ended: datetime | None = session.scalar(
            select(func.max(TaskInstance.end_date)).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.task_id == LOAD_TASK_ID,
                TaskInstance.state == "success",
            )
        )
    if ended is None:
        return None
    if ended.tzinfo is None:
        ended = ended.replace(tzinfo=UTC)
    return ended.astimezone(UTC).isoformat(timespec="seconds")
