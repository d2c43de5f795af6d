# The Airflow image for every component of docker-compose.yaml: the official Airflow
# 3.3.2 image plus exactly the project's pinned lock, so the image matches `make venv`.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root requirements.lock /opt/airflow/requirements.lock
RUN pip install --no-cache-dir -r /opt/airflow/requirements.lock

# The offline stack and dev tools, for the `offline` profile (harmless in production).
COPY --chown=airflow:root localaws /opt/airflow/localaws
COPY --chown=airflow:root devtools /opt/airflow/devtools
COPY --chown=airflow:root infra /opt/airflow/infra
ENV PYTHONPATH=/opt/airflow:/opt/airflow/plugins
