"""`make airflow`'s console shows what a user needs: provisioning's expected moto warnings go to
the offline stack's log (devtools/standalone.py), none is lost."""

from __future__ import annotations

import threading
import warnings

from devtools.standalone import warnings_to_log


def test_provisioning_warnings_go_to_the_offline_stack_log_not_the_console(local_aws, tmp_path, capfd):
    from infra.provision import provision

    log = tmp_path / "offline-stack.log"
    local_aws.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # as a console sees them (pytest's config ignores these)
        with warnings_to_log(log):
            provision(local_aws.endpoint_url)
    console = capfd.readouterr()
    assert "Tried to parse" not in console.err + console.out
    assert "No Moto CloudFormation support" not in console.err + console.out
    logged = log.read_text()
    assert "Tried to parse AWS::S3::BucketPolicy but it's not supported" in logged
    assert "UserWarning" in logged
    assert "moto WARNING: No Moto CloudFormation support for AWS::S3::BucketPolicy" in logged


def test_a_warning_from_another_thread_is_logged_too_and_none_is_dropped(tmp_path, capfd):
    log = tmp_path / "offline-stack.log"
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with warnings_to_log(log):
            warnings.warn("first", UserWarning, stacklevel=1)
            worker = threading.Thread(
                target=lambda: warnings.warn("from the server", DeprecationWarning, stacklevel=1)
            )
            worker.start()
            worker.join()
    assert capfd.readouterr().err == ""
    logged = log.read_text()
    assert "UserWarning: first" in logged and "DeprecationWarning: from the server" in logged


def test_the_airflow_components_start_without_a_dependency_deprecation_warning(tmp_path):
    """Issue 22.8: `make airflow` printed, once per Airflow component (standalone, api-server,
    dag-processor), "Using `httpx` with `starlette.testclient` is deprecated; install `httpx2`
    instead." (StarletteDeprecationWarning). Each imports Airflow's execution API at start-up,
    which imports svcs, whose svcs.fastapi imports fastapi.testclient -> starlette.testclient,
    which warns when only httpx is installed. The cause is fixed by the lock (httpx2, see
    requirements.txt), not filtered: the same import, as those components make it, in a
    fresh process with the user's settings, must print nothing.

    The start-up console itself is checked by tests/devtools/test_standalone.py.
    """
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    # the test session's settings are not the user's
    settings = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(settings)}
    env.update({"AIRFLOW_HOME": str(tmp_path), "PYTHONWARNINGS": ""})
    started = subprocess.run(
        [sys.executable, "-c", "import airflow.api_fastapi.execution_api.app"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    console = started.stdout + started.stderr
    assert started.returncode == 0, console
    assert "starlette.testclient" not in console and "DeprecationWarning" not in console, console
    assert "warning" not in console.lower(), console  # nothing at all a user would have to read past
