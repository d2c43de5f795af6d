"""The project's Python package: shared config, alerts, AWS adapters and per-pipeline domain logic.

It lives in Airflow's plugins folder because that folder is on ``sys.path`` in every
deployment (docker-compose, MWAA, Astronomer), so DAGs can ``import pipelines``.
"""
