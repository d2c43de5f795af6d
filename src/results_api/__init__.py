"""Results API and dashboard over the pipelines' DynamoDB tables, served by Airflow's api-server.

``domain`` (pure derivations), ``store`` (DynamoDB reads), ``auth`` (Airflow's token
check), ``models`` (JSON shapes), ``app`` (the FastAPI app and page). The plugin that
mounts it is ``plugins/results_plugin.py``.
"""
