"""`make env BASE_URL=https://...` writes the deployment's private .env, once."""

from __future__ import annotations

import stat
import subprocess

from tests.conftest import REPO


def _make_env(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "env", f"ENV_FILE={tmp_path / '.env'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _required_by_compose() -> set[str]:
    """Every ${NAME:?...} docker-compose.yaml refuses to start without (read from the file)."""
    import re

    return set(re.findall(r"\$\{([A-Z0-9_]+):\?", (REPO / "docker-compose.yaml").read_text()))


def test_make_env_writes_every_secret_compose_requires_privately_and_never_overwrites(tmp_path):
    done = _make_env(tmp_path, "BASE_URL=https://airflow.example.com/")
    assert done.returncode == 0, done.stderr
    env_file = tmp_path / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert values["AIRFLOW_BASE_URL"] == "https://airflow.example.com"
    # not secrets: the base image's digest (SECURITY.md), the account from the stack's outputs
    # (README, Running against real AWS), and VAR (the syntax, in a comment)
    missing = _required_by_compose() - set(values) - {"AIRFLOW_BASE_DIGEST", "AWS_ACCOUNT_ID", "VAR"}
    assert not missing, f"compose requires {missing}"
    assert len(values["AIRFLOW_JWT_SECRET"]) >= 64
    secrets = [v for k, v in values.items() if k != "AIRFLOW_BASE_URL"]
    assert len(set(secrets)) == len(secrets)  # each secret its own

    before = env_file.read_text()
    again = _make_env(tmp_path, "BASE_URL=https://other.example.com")
    assert again.returncode != 0 and "never overwritten" in again.stderr
    assert env_file.read_text() == before


def test_make_env_refuses_a_missing_or_bad_base_url_and_writes_nothing(tmp_path):
    missing = _make_env(tmp_path)
    assert missing.returncode != 0 and "usage: make env BASE_URL=" in missing.stderr
    bad = _make_env(tmp_path, "BASE_URL=airflow.example.com")
    assert bad.returncode != 0 and "BASE_URL must be the http(s) address" in bad.stderr
    assert not (tmp_path / ".env").exists()
