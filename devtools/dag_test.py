"""``airflow dags test`` for the demo, on DAGs that declare a deadline alert.

Airflow 3.3's ``dag.test()`` cannot finish a run of a DAG with a deadline alert: it builds its
scheduler DAG by serializing the DAG in process, without the dag-processor's sync that stores
the alerts and replaces them by ids, and on success ``DagRun.update_state`` looks the alerts up
by id and fails ("'dict' object has no attribute 'hex'"). So ``airflow dags test`` of
traffic_repartition, market_orders and covid_daily fails after every task has succeeded.

This runs Airflow's own ``dags test`` command (same arguments, same parsing, same run) on the
DAG with its deadline dropped. A deadline is a scheduler feature, tested where it is used: on
the real scheduler and triggerer (tests/e2e/test_late_run_alert.py), and as declared
(tests/foundation/test_dag_integrity.py).

    python -m devtools.dag_test dags test <dag_id> [logical_date] [-c JSON]   (as `airflow ...`)
"""

from __future__ import annotations

import sys
from typing import Any


def without_deadline(dag: Any) -> Any:
    """``dag`` for an in-process ``dag.test()``: its deadline alerts dropped (see the module doc)."""
    dag.deadline = None
    return dag


def main(argv: list[str]) -> None:
    from airflow.cli import cli_parser
    from airflow.cli.commands.dag_command import dag_test
    from airflow.utils.cli import get_bagged_dag

    args = cli_parser.get_parser().parse_args(argv)
    if args.func.__name__ != "dag_test":
        raise SystemExit(f"devtools.dag_test runs `dags test` only, not {' '.join(argv[:2])!r}")
    dag = get_bagged_dag(bundle_names=args.bundle_name, dag_id=args.dag_id, dagfile_path=args.dagfile_path)
    dag_test(args, dag=without_deadline(dag))  # raises SystemExit("DagRun failed") as the CLI does


if __name__ == "__main__":
    main(sys.argv[1:])
