"""The provider's AthenaOperator completes for real on the offline stack (dag.test).

Deferrable (the trigger polls Athena) and blocking (the worker polls) operators each run
an INSERT INTO that really writes Parquet partitions; a failing query fails its task
with Athena's reason in the task's error.
"""

from __future__ import annotations

import gzip
import json

import pytest

from tests.conftest import REPO, load_dag, run_dag, task_states
from tests.localaws.conftest import result_rows, wait_for_query

TEST_DAGS = REPO / "tests" / "dags"
BUCKET = "pipelines-data-lake"
ROWS_PER_HOUR = 5


def _athena(aws, sql: str) -> dict:
    athena = aws.client("athena")
    query_id = athena.start_query_execution(
        QueryString=sql,
        QueryExecutionContext={"Database": "traffic"},
        ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/athena-results/"},
    )["QueryExecutionId"]
    execution = wait_for_query(athena, query_id)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    return execution


@pytest.fixture
def raw_table(aws):
    """traffic.athena_check_raw: three arrival hours of JSON lines (one gzip), plain folders."""
    s3 = aws.client("s3")
    for hour in ("00", "01", "02"):
        body = "".join(
            json.dumps({"id": f"{hour}-{i}", "v": i}) + "\n" for i in range(ROWS_PER_HOUR)
        ).encode()
        s3.put_object(
            Bucket=BUCKET,
            Key=f"check/athena_raw/2024/01/01/{hour}/events.json" + (".gz" if hour == "01" else ""),
            Body=gzip.compress(body) if hour == "01" else body,
        )
    _athena(
        aws,
        "CREATE EXTERNAL TABLE athena_check_raw (id string, v bigint) "
        "PARTITIONED BY (partition_0 string, partition_1 string, partition_2 string, partition_3 string) "
        f"ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://{BUCKET}/check/athena_raw/'",
    )
    _athena(
        aws,
        "ALTER TABLE athena_check_raw ADD "
        + " ".join(
            f"PARTITION (partition_0='2024', partition_1='01', partition_2='01', partition_3='{hour}') "
            f"LOCATION 's3://{BUCKET}/check/athena_raw/2024/01/01/{hour}/'"
            for hour in ("00", "01", "02")
        ),
    )
    return aws


def test_deferrable_and_blocking_athena_operators_insert_rows_for_real(airflow_db, raw_table):
    run = run_dag(load_dag("localaws_athena_insert", TEST_DAGS))
    assert run.state == "success", task_states(run)
    assert set(task_states(run).values()) == {"success"}

    keys = [
        o["Key"]
        for o in raw_table.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="check/athena_copy/")[
            "Contents"
        ]
    ]
    assert sorted(k.rsplit("/", 1)[0] for k in keys) == [
        "check/athena_copy/hour=00",
        "check/athena_copy/hour=01",
    ]
    partitions = raw_table.client("glue").get_partitions(
        DatabaseName="traffic", TableName="athena_check_copy"
    )
    assert sorted(p["Values"] for p in partitions["Partitions"]) == [["00"], ["01"]]
    landed = _athena(
        raw_table, "SELECT hour, count(*), sum(v) FROM athena_check_copy GROUP BY hour ORDER BY hour"
    )
    total = str(sum(range(ROWS_PER_HOUR)))
    assert result_rows(raw_table.client("athena"), landed["QueryExecutionId"])[1:] == [
        ["00", str(ROWS_PER_HOUR), total],
        ["01", str(ROWS_PER_HOUR), total],
    ]


def test_a_failing_query_fails_its_task_with_athenas_reason(airflow_db, raw_table, capfd):
    run = run_dag(load_dag("localaws_athena_insert", TEST_DAGS), conf={"source_table": "no_such_table"})
    assert run.state == "failed"
    assert task_states(run) == {
        "create_copy_table": "success",
        "copy_hour_deferrable": "failed",
        "copy_hour_blocking": "failed",
    }
    errors = [line for line in "".join(capfd.readouterr()).splitlines() if "AirflowException: " in line]
    reason = "TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.traffic.no_such_table' does not exist"
    # blocking: the operator's own exception carries the StateChangeReason
    blocking = [line for line in errors if "Final state of Athena job is FAILED" in line]
    assert len(blocking) == 1 and blocking[0].endswith(f"Error: {reason}")
    # deferrable: the trigger's failure event carries the query's Status, reason included
    deferred = [line for line in errors if "Error while waiting for operation" in line]
    assert len(deferred) == 1
    assert "StateChangeReason" in deferred[0]  # (the message quotes the reason with escapes)
    assert "TABLE_NOT_FOUND: line 1:1: Table" in deferred[0]
    assert "awsdatacatalog.traffic.no_such_table" in deferred[0]
    assert "Contents" not in raw_table.client("s3").list_objects_v2(
        Bucket=BUCKET, Prefix="check/athena_copy/"
    )
