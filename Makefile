# Two commands matter: `make demo` (every pipeline end to end, offline) and `make test`.
# Every target builds .venv first: the development lock (runtime + tools, hashes required),
# then the project's two packages, editable: `pipelines`/`results_api` (src/) and `localaws`.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.8
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: venv checkov-venv checkov lock chromium test demo airflow lint audit bench e2e chaos rehearsal env clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock requirements-dev.lock pyproject.toml localaws/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync --quiet --require-hashes --python $(PY) requirements-dev.lock
	$(VENV)/bin/uv pip install --quiet --no-deps --no-build-isolation --python $(PY) -e . -e ./localaws
	touch $@

## checkov in its own venv: it cannot resolve together with the development lock
## (cachetools<6 against Airflow's 8); used by tests/foundation/test_infra.py
checkov-venv: .venv-checkov/.installed

.venv-checkov/.installed: requirements-checkov.lock | venv
	$(PYTHON) -m venv .venv-checkov
	$(VENV)/bin/uv pip sync --quiet --require-hashes --python .venv-checkov/bin/python requirements-checkov.lock
	touch $@

checkov: checkov-venv
	.venv-checkov/bin/checkov --quiet --compact --framework cloudformation -f infra/pipelines.yaml

## regenerate both locks (with hashes) after editing requirements.txt or requirements-dev.txt;
## the development lock is constrained by the runtime lock, so both pin the same versions
lock: venv
	$(VENV)/bin/uv pip compile --quiet --python-version 3.11 --generate-hashes requirements.txt -o requirements.lock
	$(VENV)/bin/uv pip compile --quiet --python-version 3.11 --generate-hashes -c requirements.lock requirements-dev.txt -o requirements-dev.lock
	$(VENV)/bin/uv pip compile --quiet --python-version 3.11 --generate-hashes requirements-checkov.txt -o requirements-checkov.lock

## Debian's chromium for the browser tests (tests marked `browser`); installed once, as root
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser tests"; \
		if [ "$$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

test: venv checkov-venv chromium
	$(PY) -m pytest -m "not e2e" --durations=25 tests

demo: venv
	$(PY) -m devtools.demo

airflow: venv
	$(PY) -m devtools.standalone

lint: venv
	$(VENV)/bin/ruff check .

## known vulnerabilities in the runtime lock (what the production image installs), by the
## pinned pip-audit. It asks PyPI's vulnerability API (pypi.org/pypi/<name>/<version>/json),
## so it needs that API, not only a package index. --strict: a package it could not audit
## fails the target instead of passing silently. Not in .ci/run: see SECURITY.md.
audit: venv
	@$(VENV)/bin/pip-audit --requirement requirements.lock --require-hashes --disable-pip --strict \
		--progress-spinner off || { \
		echo "make audit FAILED: a known vulnerability above, or a package PyPI's vulnerability API" \
			"could not answer for (is pypi.org/pypi/<name>/<version>/json reachable from here?)" >&2; \
		exit 1; }

bench: venv
	$(PY) -m benchmarks

e2e: venv
	$(PY) -m pytest -m e2e --durations=0 tests/e2e

## the production rehearsal alone: the offline stack deployed as the README deploys AWS
## (change set, Secrets Manager, compose's settings, IAM enforced), every DAG run, every
## results endpoint, the alert and subscriber e-mails, zero AccessDenied, and one permission
## removed at a time (devtools/rehearsal.py). `make e2e` runs it too: its topology is this one.
rehearsal: venv
	$(PY) -m pytest -m rehearsal tests/e2e

## the chaos scenarios (SIGKILLed worker, overlapping backfills) on the production topology
chaos: venv
	$(PY) -m pytest -m chaos tests/e2e

## the deployment's private .env (compose's secrets and AIRFLOW_BASE_URL), created 0600 and
## never overwritten: make env BASE_URL=https://airflow.example.com [ENV_FILE=path]
## (no venv rebuild: it needs only the existing .venv's cryptography)
ENV_FILE ?= .env
env:
	@test -n "$(BASE_URL)" || { echo "usage: make env BASE_URL=https://airflow.example.com" >&2; exit 2; }
	$(PY) devtools/deploy_env.py --base-url "$(BASE_URL)" --output "$(ENV_FILE)"

clean:
	rm -rf .airflow .airflow-test .demo test-output .pytest_cache
