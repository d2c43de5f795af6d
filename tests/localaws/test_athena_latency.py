"""The offline Athena's latency knob: a fixed queue time and run time per query, set at run time.

``athena_queue_seconds`` keeps a query QUEUED, ``athena_run_seconds`` keeps it RUNNING that
long with the engine's work inside it (publication waits for the end); a stop during either
ends it CANCELLED with nothing written. Read from the stack's own query timestamps.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from tests.localaws.conftest import wait_for_query

RESULTS = {"OutputLocation": "s3://lake/athena-results/"}


def set_faults(stack, **values) -> dict:
    request = urllib.request.Request(f"{stack.endpoint_url}/_localaws/faults", data=json.dumps(values).encode(),
                                     method="POST")  # fmt: skip
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


@pytest.fixture
def slow(lake):
    lake.client("glue").create_table(
        DatabaseName="db",
        TableInput={"Name": "t", "TableType": "EXTERNAL_TABLE",
                    "StorageDescriptor": {"Columns": [{"Name": "n", "Type": "int"}], "Location": "s3://lake/t/",
                                          "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                                          "SerdeInfo": {"SerializationLibrary":
                                                        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}},
    )  # fmt: skip
    set_faults(lake, athena_queue_seconds=1.0, athena_run_seconds=2.0)
    yield lake
    set_faults(lake, athena_queue_seconds=0, athena_run_seconds=0)


def test_a_query_is_queued_then_runs_for_the_set_times(slow):
    athena = slow.client("athena")
    query_id = athena.start_query_execution(QueryString="SELECT 1", ResultConfiguration=RESULTS)[
        "QueryExecutionId"
    ]
    time.sleep(0.5)
    assert (
        athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"] == "QUEUED"
    )
    execution = wait_for_query(athena, query_id)
    assert execution["Status"]["State"] == "SUCCEEDED"
    took = (
        execution["Status"]["CompletionDateTime"] - execution["Status"]["SubmissionDateTime"]
    ).total_seconds()
    assert 3.0 <= took < 6.0  # 1 s queued + 2 s running, the engine's work inside the 2 s


def test_an_insert_stopped_during_its_run_time_writes_nothing(slow):
    athena, s3 = slow.client("athena"), slow.client("s3")
    query_id = athena.start_query_execution(
        QueryString="INSERT INTO t SELECT 1",
        QueryExecutionContext={"Database": "db"},
        ResultConfiguration=RESULTS,
    )["QueryExecutionId"]
    while (
        athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"] == "QUEUED"
    ):
        time.sleep(0.05)
    time.sleep(0.5)  # running: the engine may have computed the rows, nothing is published yet
    athena.stop_query_execution(QueryExecutionId=query_id)
    assert wait_for_query(athena, query_id)["Status"]["State"] == "CANCELLED"
    assert s3.list_objects_v2(Bucket="lake", Prefix="t/").get("KeyCount", 0) == 0


def test_knob_values_are_checked(lake):
    with pytest.raises(urllib.error.HTTPError):
        set_faults(lake, athena_run_seconds=-1)
    with pytest.raises(urllib.error.HTTPError):
        set_faults(lake, athena_queue_seconds="soon")
    assert set_faults(lake)["athena_run_seconds"] == 0
