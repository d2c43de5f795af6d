"""One module per pipeline, run by ``make demo`` in ``ORDER``.

A step module defines::

    DAG_ID = "covid_daily"
    ORDER = 30                                   # demo order (lower first)

    def prepare(ctx: DemoContext) -> DemoRun:    # upload sample data, start fakes
        ...
        return DemoRun(conf={...}, logical_date="2024-03-01")

    def summarize(ctx: DemoContext) -> list[tuple[str, object]]:
        return [("items in covid_stats", 820), ...]

    def standalone(ctx: DemoContext) -> dict[str, str]:  # `make airflow`: load sample data so that
        ...                                              # triggering the DAG with its defaults works;
        return {"AIRFLOW_VAR_...": "..."}               # answers the env (Variables, connections)

``ctx`` gives the offline stack (``ctx.client("s3")``, ``ctx.endpoint_url``), the
environment the ``airflow dags test`` subprocess gets (``ctx.env``, add connections
there), a scratch folder (``ctx.workdir``) and ``ctx.add_cleanup(fn)`` for fakes the
step starts. Cleanups run also when the demo fails.
"""
