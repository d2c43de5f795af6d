"""Supply chain: hashed locks, a production image with runtime code and dependencies only,
and `make audit` that never passes without having audited every runtime package.

`make audit` is run for real (the Makefile target, the pinned pip-audit, the runtime lock),
with PyPI's vulnerability API replaced by canned answers through a ``sitecustomize``
module: the same target answers clean, vulnerable and "unknown package" runs. No network.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tests.conftest import REPO

RUNTIME_CODE = ["src", "dags", "plugins"]
FIRST_PARTY_RUNTIME = {"pipelines", "results_api", "results_plugin"}
# What only development, tests or the offline stack use: none may reach production.
DEV_ONLY = {
    "pytest",
    "pytest-timeout",
    "hypothesis",
    "ruff",
    "cfn-lint",
    "playwright",
    "moto",
    "duckdb",
    "sqlglot",
    "aiosmtpd",
    "pip-audit",
}


def _locked(lock: str) -> dict[str, str]:
    """name -> version of every requirement in a lock, each with its hashes."""
    text = (REPO / lock).read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+) \\\n\s+--hash=sha256:[0-9a-f]{64}", text, re.M))
    names = re.findall(r"^([A-Za-z0-9._-]+)==", text, re.M)
    assert set(names) == set(pins), f"{lock}: requirements without hashes: {set(names) - set(pins)}"
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins.items()}


def test_both_locks_pin_every_requirement_with_hashes_and_agree():
    runtime, dev = _locked("requirements.lock"), _locked("requirements-dev.lock")
    assert runtime and dev
    # the development lock is the runtime one plus tools, at the same versions
    assert {name: dev.get(name) for name in runtime} == runtime
    assert not DEV_ONLY & set(runtime), DEV_ONLY & set(runtime)
    assert DEV_ONLY <= set(dev)


def test_make_venv_installs_with_require_hashes():
    makefile = (REPO / "Makefile").read_text()
    assert "uv pip sync --quiet --require-hashes --python $(PY) requirements-dev.lock" in makefile


def _runtime_stage_copies() -> list[str]:
    dockerfile = (REPO / "Dockerfile").read_text()
    runtime = dockerfile.split("\nFROM runtime AS offline\n")[0]
    return [line.split()[-2] for line in runtime.splitlines() if line.startswith("COPY ")]


def test_the_production_image_copies_only_runtime_code():
    assert _runtime_stage_copies() == [
        "requirements.lock",
        "pyproject.toml",
        "src",
        "dags",
        "plugins",
        "include",
        "infra/airflow_pools.json",
    ]


def _top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_runtime_code_imports_only_the_runtime_lock():
    """What the image copies imports the standard library, itself, or a runtime-locked
    distribution: never localaws, devtools, tests or a development tool."""
    runtime = _locked("requirements.lock")
    distributions = packages_distributions()
    for folder in RUNTIME_CODE:
        for path in sorted((REPO / folder).rglob("*.py")):
            for module in _top_level_imports(path) - FIRST_PARTY_RUNTIME:
                if module in sys.stdlib_module_names or module == "__future__":
                    continue
                owners = {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [])}
                assert owners & set(runtime), (
                    f"{path.relative_to(REPO)} imports {module} ({owners or 'no distribution'}), not in requirements.lock"
                )


# --- make audit, with PyPI's vulnerability API answered by the test ---------------------------

SITECUSTOMIZE = """
import json, os
import requests

_MODE = os.environ["FAKE_PYPI_VULNERABILITY_API"]


def _answer(self, method, url, *args, **kwargs):
    response = requests.Response()
    response.url, response.request = url, requests.Request(method, url).prepare()
    name = url.split("/pypi/")[1].split("/")[0]
    if _MODE == "unknown" and name == "a2wsgi":
        response.status_code = 404
        response._content = b"{}"
        return response
    body = {"info": {"name": name}, "vulnerabilities": []}
    if _MODE == "vulnerable" and name == "a2wsgi":
        body["vulnerabilities"] = [{"id": "PYSEC-0000-TEST", "aliases": ["CVE-0000-0000"],
                                    "fixed_in": ["99.0"], "summary": "made up for the test"}]
    response.status_code = 200
    response._content = json.dumps(body).encode()
    return response


requests.Session.request = _answer
"""


def _make_audit(tmp_path, mode: str) -> subprocess.CompletedProcess:
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "FAKE_PYPI_VULNERABILITY_API": mode,
        "PIP_AUDIT_CACHE_DIR": str(tmp_path / "cache"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    return subprocess.run(
        ["make", "--no-print-directory", "audit"], cwd=REPO, env=env, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def audit_home(tmp_path_factory):
    return tmp_path_factory.mktemp("audit")


def test_make_audit_passes_when_no_runtime_package_has_a_known_vulnerability(audit_home):
    done = _make_audit(audit_home, "clean")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No known vulnerabilities found" in done.stdout + done.stderr


def test_make_audit_fails_on_a_known_vulnerability(audit_home):
    done = _make_audit(audit_home, "vulnerable")
    assert done.returncode != 0
    assert "PYSEC-0000-TEST" in done.stdout and "a2wsgi" in done.stdout
    assert "make audit FAILED" in done.stderr


def test_make_audit_fails_loudly_when_a_package_could_not_be_audited(audit_home):
    """What happens where PyPI's vulnerability API is not reachable (404 for every package,
    as on this project's machines): without --strict pip-audit would skip and pass."""
    done = _make_audit(audit_home, "unknown")
    assert done.returncode != 0
    assert "a2wsgi" in done.stderr and "could not be audited" in done.stderr
    assert "make audit FAILED" in done.stderr


def test_make_audit_audits_the_runtime_lock_with_the_pinned_pip_audit():
    recipe = subprocess.run(
        ["make", "--no-print-directory", "-n", "audit"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert "pip-audit --requirement requirements.lock --require-hashes --disable-pip --strict" in recipe
    pinned = re.search(r"^pip-audit==(\S+)$", (REPO / "requirements-dev.txt").read_text(), re.M)
    assert pinned and _locked("requirements-dev.lock")["pip-audit"] == pinned[1]
