"""``make demo``: every pipeline end to end on the offline stack, then a summary table.

Starts the offline AWS stack and the SMTP catcher, provisions ``infra/``, migrates a
demo Airflow home (``.demo/airflow``), and for each step in ``devtools/demo_steps``:
prepares sample data, runs the DAG with ``airflow dags test``, and reads back what it
produced. Everything started is stopped at the end, also on failure.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.airflow_env import REPO, airflow_env

DEMO_DIR = REPO / ".demo"


@dataclass
class DemoRun:
    conf: dict[str, Any] = field(default_factory=dict)
    logical_date: str | None = None


@dataclass
class DemoContext:
    endpoint_url: str
    env: dict[str, str]
    workdir: Path
    stack: Any
    smtp: Any
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def client(self, service: str) -> Any:
        return self.stack.client(service)

    def add_cleanup(self, fn: Callable[[], None]) -> None:
        self.cleanups.append(fn)


def discover_steps() -> list[Any]:
    import devtools.demo_steps as package

    modules = [
        importlib.import_module(f"devtools.demo_steps.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
    ]
    return sorted(modules, key=lambda m: (m.ORDER, m.DAG_ID))


def airflow_cli(env: dict[str, str], *args: str, log_file: Path, module: str = "airflow") -> int:
    """``airflow <args>`` (or ``python -m <module> <args>``), its output appended to ``log_file``."""
    with log_file.open("a") as log:
        log.write(f"\n$ airflow {' '.join(args)}\n")
        log.flush()
        return subprocess.run(
            [sys.executable, "-m", module, *args], env=env, stdout=log, stderr=subprocess.STDOUT
        ).returncode


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    headers = ("pipeline", "result", "what", "count")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(4)]
    line = "+".join("-" * (w + 2) for w in widths)
    print(f"+{line}+")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print(f"+{line}+")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    print(f"+{line}+")


def main() -> int:
    from devtools.smtp_catcher import SmtpCatcher
    from infra.provision import provision
    from localaws import LocalAWS

    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    (DEMO_DIR / "airflow").mkdir(parents=True)
    log_file = DEMO_DIR / "airflow-runs.log"
    steps = discover_steps()
    rows: list[tuple[str, str, str, str]] = []
    failed = False
    with LocalAWS() as stack, SmtpCatcher() as smtp:
        env = {**os.environ, **airflow_env(DEMO_DIR / "airflow", stack.endpoint_url, smtp.port)}
        env["AWS_ENDPOINT_URL"] = stack.endpoint_url
        os.environ.update(
            {k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
        )
        print(f"offline AWS stack on {stack.endpoint_url}, SMTP catcher on 127.0.0.1:{smtp.port}")
        provision(stack.endpoint_url)
        print("provisioned infra/pipelines.yaml")
        if airflow_cli(env, "db", "migrate", log_file=log_file) != 0:
            print(f"airflow db migrate failed, see {log_file}")
            return 1
        pools = str(REPO / "infra" / "airflow_pools.json")
        if airflow_cli(env, "pools", "import", pools, log_file=log_file) != 0:
            print(f"airflow pools import failed, see {log_file}")
            return 1
        ctx = DemoContext(stack.endpoint_url, env, DEMO_DIR, stack, smtp)
        try:
            for step in steps:
                started = time.monotonic()
                print(f"\n== {step.DAG_ID}: preparing sample data")
                run = step.prepare(ctx)
                args = ["dags", "test", step.DAG_ID]
                if run.logical_date:
                    args.append(run.logical_date)
                if run.conf:
                    import json

                    args += ["-c", json.dumps(run.conf)]
                print(f"== {step.DAG_ID}: airflow {' '.join(args)}")
                # Airflow's `dags test`, through devtools.dag_test: 3.3's cannot finish a DAG
                # that declares a deadline alert (that module says why)
                code = airflow_cli(ctx.env, *args, log_file=log_file, module="devtools.dag_test")
                seconds = time.monotonic() - started
                if code != 0:
                    failed = True
                    rows.append((step.DAG_ID, f"FAILED ({seconds:.0f}s)", f"see {log_file}", "-"))
                    print(f"== {step.DAG_ID}: FAILED, log in {log_file}")
                    continue
                for what, count in step.summarize(ctx):
                    rows.append((step.DAG_ID, f"success ({seconds:.0f}s)", what, str(count)))
        finally:
            for cleanup in reversed(ctx.cleanups):
                try:
                    cleanup()
                except Exception as error:  # keep stopping the rest
                    print(f"cleanup failed: {error}")
    print()
    if rows:
        print_table(rows)
    else:
        print("no pipelines to demo yet")
    print(f"\nAirflow logs of the runs: {log_file}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
