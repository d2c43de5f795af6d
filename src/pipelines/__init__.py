"""The project's Python package: shared config, alerts, AWS adapters and per-pipeline domain logic.

An installed package (``pyproject.toml``, ``src/`` layout): DAG files ``import pipelines``
like any library. It is deliberately *not* in Airflow's plugins folder, whose loader
imports every module it finds there into every component.
"""
