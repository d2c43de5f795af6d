"""Results API: department lookup latency through Airflow's api-server vs the table's own GetItem.

500 departments (20,000 employees, the directory benchmark's data set) nested by the
pipeline's code and written to the offline stack's ``department_directory``. Then, in the
same run, 1000 lookups of random departments two ways, interleaved, one request at a time:

* through the API: ``GET /results/api/departments/{d}`` on a real ``airflow api-server``
  process (the plugin loaded as in production), Bearer token from ``POST /auth/token``,
  keep-alive HTTP: JWT check (signature + revoked-token lookup in the metadata DB),
  routing, GetItem, JSON;
* directly: ``GetItem`` with boto3 from this process: the floor any API must stand on.

Prints p50/p95 of both and the ratios (API latency over GetItem latency: lower is better).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.update(
    {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
)

import httpx  # noqa: E402

from devtools.airflow_env import airflow_env  # noqa: E402
from devtools.directory_sample import directory_csv  # noqa: E402
from infra.provision import provision  # noqa: E402
from localaws import LocalAWS  # noqa: E402
from localaws.server import free_port  # noqa: E402
from pipelines.aws.dynamodb import put_items  # noqa: E402
from pipelines.directory.domain import nest  # noqa: E402

TABLE = "department_directory"
DEPARTMENTS, EMPLOYEES, REQUESTS, WARMUP = 500, 20_000, 1000, 50
USERNAME, PASSWORD = "bench", "bench-password"


def percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1]


def start_api_server(home: Path, aws_endpoint: str, port: int) -> subprocess.Popen:
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({USERNAME: PASSWORD}))
    env = {**os.environ, **airflow_env(home, aws_endpoint, 1)}
    env.update(
        {
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API_AUTH__JWT_SECRET": "bench-" + "s" * 64,
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True
    )
    with (home / "api-server.log").open("wb") as log:  # read back if the server dies
        return subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


def wait_until_up(base_url: str, process: subprocess.Popen, log_path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"airflow api-server exited with {process.returncode}:\n{tail}")
        try:
            if httpx.get(f"{base_url}/api/v2/monitor/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError("airflow api-server did not come up")


def main() -> None:
    rng = random.Random(9)
    with LocalAWS() as stack, tempfile.TemporaryDirectory(prefix="bench-results-api-") as home:
        provision(stack.endpoint_url)
        client = stack.client("dynamodb")
        departments = nest(directory_csv(departments=DEPARTMENTS, employees=EMPLOYEES, seed=9), "bench.csv")
        put_items(client, TABLE, ({**item, "source_key": "bench.csv"} for item in departments.values()))
        names = sorted(departments)
        lookups = [rng.choice(names) for _ in range(WARMUP + REQUESTS)]

        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        server = start_api_server(Path(home), stack.endpoint_url, port)
        try:
            wait_until_up(base_url, server, Path(home) / "api-server.log")
            with httpx.Client(base_url=base_url, timeout=30) as http:
                token = http.post("/auth/token", json={"username": USERNAME, "password": PASSWORD})
                token.raise_for_status()
                http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
                # Interleaved, one of each per department, so both see the same machine load.
                api_ms, getitem_ms = [], []
                for index, name in enumerate(lookups):
                    started = time.perf_counter()
                    response = http.get(f"/results/api/departments/{name}")
                    api_elapsed = (time.perf_counter() - started) * 1000
                    response.raise_for_status()
                    assert response.json()["employee_count"] == len(departments[name]["employees"])

                    started = time.perf_counter()
                    item = client.get_item(TableName=TABLE, Key={"department": {"S": name}})
                    getitem_elapsed = (time.perf_counter() - started) * 1000
                    assert "Item" in item
                    if index >= WARMUP:
                        api_ms.append(api_elapsed)
                        getitem_ms.append(getitem_elapsed)
        finally:
            server.terminate()
            server.wait(timeout=30)

    api_p50, api_p95 = percentile(api_ms, 50), percentile(api_ms, 95)
    get_p50, get_p95 = percentile(getitem_ms, 50), percentile(getitem_ms, 95)
    print(
        f"departments: {len(names)}, employees: {EMPLOYEES}, lookups: {REQUESTS} each way (+{WARMUP} warm-up)"
    )
    print(f"API  GET /results/api/departments/{{d}}: p50 {api_p50:.2f} ms  p95 {api_p95:.2f} ms")
    print(f"DynamoDB GetItem (boto3, same table):   p50 {get_p50:.2f} ms  p95 {get_p95:.2f} ms")
    print(
        f"API overhead over GetItem (JWT check, routing, JSON, HTTP): p50 {api_p50 - get_p50:+.2f} ms, "
        f"p95 {api_p95 - get_p95:+.2f} ms"
    )
    print(
        f"RESULT results_api_department_p50_vs_getitem {api_p50 / get_p50:.2f} <=3 API p50 over GetItem p50"
    )
    print(
        f"RESULT results_api_department_p95_vs_getitem {api_p95 / get_p95:.2f} <=3 API p95 over GetItem p95"
    )


if __name__ == "__main__":
    main()
