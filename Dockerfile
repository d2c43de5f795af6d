# Two images from one file, both on the official Airflow 3.3.2 image (which runs as the
# non-root user `airflow`, uid 50000):
#   runtime  every Airflow component in production: the runtime lock (hashes required),
#            the project's package (src/), dags/, plugins/ (the entry point only), include/
#   offline  runtime + the development lock, the offline AWS stack (localaws/) and devtools/,
#            for docker-compose's `offline` profile; never deployed
#
# The base image is pinned by digest, never by tag alone (a tag can be re-pushed). The tag
# stays in the reference for readers: apache/airflow:3.3.2-python3.11. The digest is a
# build argument with no default, so a build without it fails instead of pulling whatever
# the tag points at today. Record it once, in .env beside docker-compose.yaml (compose
# passes it), after checking it (SECURITY.md, "Base image"):
#   docker buildx imagetools inspect apache/airflow:3.3.2-python3.11 --format '{{json .Manifest.Digest}}'
#   AIRFLOW_BASE_DIGEST=sha256:<64 hex digits>
ARG AIRFLOW_BASE_DIGEST
FROM apache/airflow:3.3.2-python3.11@${AIRFLOW_BASE_DIGEST} AS runtime
USER airflow
COPY --chown=airflow:root requirements.lock /opt/airflow/requirements.lock
RUN pip install --no-cache-dir --require-hashes -r /opt/airflow/requirements.lock
COPY --chown=airflow:root pyproject.toml /tmp/build/pyproject.toml
COPY --chown=airflow:root src /tmp/build/src
RUN pip install --no-cache-dir --no-deps --no-build-isolation /tmp/build && rm -rf /tmp/build
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
COPY --chown=airflow:root include /opt/airflow/include
COPY --chown=airflow:root infra/airflow_pools.json /opt/airflow/infra/airflow_pools.json
USER airflow

FROM runtime AS offline
COPY --chown=airflow:root requirements-dev.txt requirements-dev.lock /opt/airflow/
RUN pip install --no-cache-dir --require-hashes -r /opt/airflow/requirements-dev.lock
COPY --chown=airflow:root localaws /tmp/localaws
RUN pip install --no-cache-dir --no-deps --no-build-isolation /tmp/localaws && rm -rf /tmp/localaws
COPY --chown=airflow:root devtools /opt/airflow/devtools
COPY --chown=airflow:root infra /opt/airflow/infra
USER airflow
