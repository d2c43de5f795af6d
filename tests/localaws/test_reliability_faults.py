"""The faults reliability needs, injected through the control endpoint and met through boto3.

An Athena INSERT that writes part of its files and then fails, an S3 read refused with
403, DynamoDB writes that fail for real after N successful ones: each is what real AWS
can do, and what today's happy-path stack never did.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localaws.faults import FaultSettings
from pipelines.aws.dynamodb import put_items
from tests.localaws.conftest import result_rows, run_query


def set_faults(aws, **values) -> dict:
    """POST /_localaws/faults, as a test topology or a person with curl would."""
    request = urllib.request.Request(
        f"{aws.endpoint_url}/_localaws/faults", data=json.dumps(values).encode(), method="POST"
    )
    return json.load(urllib.request.urlopen(request))


def client_without_retries(aws, service: str):
    return boto3.client(
        service,
        endpoint_url=aws.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


# -- Athena: an INSERT that fails after writing part of its files ---------------------------


@pytest.fixture
def days(lake):
    """db.source: 3 rows per day for days 01, 02, 03; db.totals: empty, partitions 01 and 02 declared."""
    s3, athena = lake.client("s3"), lake.client("athena")
    buffer = io.BytesIO()
    pq.write_table(pa.table({"n": list(range(9)), "day": ["01", "02", "03"] * 3}), buffer)
    s3.put_object(Bucket="lake", Key="source/data.parquet", Body=buffer.getvalue())
    for sql in (
        "CREATE EXTERNAL TABLE source (n bigint, day string) STORED AS PARQUET LOCATION 's3://lake/source/'",
        "CREATE EXTERNAL TABLE totals (n bigint) PARTITIONED BY (day string) "
        "STORED AS PARQUET LOCATION 's3://lake/totals/'",
        "ALTER TABLE totals ADD PARTITION (day='01') LOCATION 's3://lake/totals/day=01/' "
        "PARTITION (day='02') LOCATION 's3://lake/totals/day=02/'",
    ):
        assert run_query(athena, sql)["Status"]["State"] == "SUCCEEDED"
    return lake


def totals_by_day(aws) -> list[list[str | None]]:
    athena = aws.client("athena")
    execution = run_query(athena, "SELECT day, count(*) FROM totals GROUP BY day ORDER BY day")
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    return result_rows(athena, execution["QueryExecutionId"])[1:]


def test_an_insert_can_fail_after_writing_part_of_its_files_and_they_stay(days):
    s3, glue = days.client("s3"), days.client("glue")
    assert set_faults(days, athena_insert_fail_after_files=2)["athena_insert_fail_after_files"] == 2
    execution = run_query(days.client("athena"), "INSERT INTO totals SELECT n, day FROM source")
    assert execution["Status"]["State"] == "FAILED"
    assert execution["Status"]["StateChangeReason"].startswith(
        "GENERIC_INTERNAL_ERROR: Error committing write to Hive (wrote 2 of 3 file(s)"
    )
    assert execution["Status"]["AthenaError"]["Retryable"] is True
    written = [o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix="totals/").get("Contents", [])]
    assert sorted(key.split("/")[1] for key in written) == ["day=01", "day=02"]  # day=03 never written
    # the partitions the catalog had show the partial data; the new one was not registered
    assert totals_by_day(days) == [["01", "3"], ["02", "3"]]
    partitions = glue.get_partitions(DatabaseName="db", TableName="totals")["Partitions"]
    assert sorted(p["Values"][0] for p in partitions) == ["01", "02"]
    # one failure only (athena_insert_failures defaults to 1): a retry appends a full copy
    assert set_faults(days)["athena_insert_fail_after_files"] is None
    assert (
        run_query(days.client("athena"), "INSERT INTO totals SELECT n, day FROM source")["Status"]["State"]
        == "SUCCEEDED"
    )
    assert totals_by_day(days) == [["01", "6"], ["02", "6"], ["03", "3"]]


def test_several_inserts_can_fail_and_zero_files_means_a_clean_failure(days):
    set_faults(days, athena_insert_fail_after_files=0, athena_insert_failures=2)
    athena = days.client("athena")
    for _attempt in range(2):
        execution = run_query(athena, "INSERT INTO totals SELECT n, day FROM source")
        assert execution["Status"]["State"] == "FAILED"
        assert "wrote 0 of 3 file(s)" in execution["Status"]["StateChangeReason"]
    assert days.client("s3").list_objects_v2(Bucket="lake", Prefix="totals/").get("KeyCount", 0) == 0
    assert run_query(athena, "INSERT INTO totals SELECT n, day FROM source")["Status"]["State"] == "SUCCEEDED"
    assert totals_by_day(days) == [["01", "3"], ["02", "3"], ["03", "3"]]


# -- S3: GetObject / HeadObject answered 403 AccessDenied under a prefix ---------------------


def test_reads_under_a_denied_prefix_answer_403_and_everything_else_works(lake):
    s3 = client_without_retries(lake, "s3")
    for key in ("secret/a.json", "secret/b.json", "open/a.json"):
        s3.put_object(Bucket="lake", Key=key, Body=b"{}")
    assert set_faults(lake, s3_access_denied_prefixes=["s3://lake/secret/"])["s3_access_denied_prefixes"] == [
        "lake/secret/"
    ]
    with pytest.raises(ClientError) as denied:
        s3.get_object(Bucket="lake", Key="secret/a.json")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as head:
        s3.head_object(Bucket="lake", Key="secret/b.json")
    assert head.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert s3.get_object(Bucket="lake", Key="open/a.json")["Body"].read() == b"{}"
    # only reads of the objects are refused: listing and writing still work, as with a
    # policy that denies s3:GetObject alone
    assert s3.list_objects_v2(Bucket="lake", Prefix="secret/")["KeyCount"] == 2
    s3.put_object(Bucket="lake", Key="secret/c.json", Body=b"{}")
    set_faults(lake, s3_access_denied_prefixes=[])
    assert s3.get_object(Bucket="lake", Key="secret/a.json")["Body"].read() == b"{}"


# -- DynamoDB: writes fail for real after N successful ones ----------------------------------


def items(start: int, count: int) -> list[dict]:
    return [
        {"PutRequest": {"Item": {"region_id": {"S": "9"}, "type_id": {"S": str(i)}}}}
        for i in range(start, start + count)
    ]


def stored(aws) -> int:
    return aws.client("dynamodb").scan(TableName="market_orders", Select="COUNT")["Count"]


def test_dynamodb_writes_fail_after_n_successful_batches(aws):
    dynamodb = client_without_retries(aws, "dynamodb")
    set_faults(aws, dynamodb_fail_after_writes=2)
    assert dynamodb.batch_write_item(RequestItems={"market_orders": items(0, 25)})["UnprocessedItems"] == {}
    dynamodb.batch_write_item(RequestItems={"market_orders": items(25, 25)})
    with pytest.raises(ClientError) as batch:
        dynamodb.batch_write_item(RequestItems={"market_orders": items(50, 25)})
    assert batch.value.response["Error"]["Code"] == "InternalServerError"
    assert batch.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    key = {"region_id": {"S": "9"}, "type_id": {"S": "0"}}
    with pytest.raises(ClientError, match="InternalServerError"):
        dynamodb.put_item(TableName="market_orders", Item={**key, "v": {"N": "1"}})
    with pytest.raises(ClientError, match="InternalServerError"):
        dynamodb.delete_item(TableName="market_orders", Key=key)
    assert stored(aws) == 50  # the two batches before the failure, nothing of the rest
    set_faults(aws, dynamodb_fail_after_writes=None)
    dynamodb.delete_item(TableName="market_orders", Key=key)
    assert stored(aws) == 49


def test_the_shared_writer_surfaces_a_failure_after_n_batches_with_the_chosen_error(aws):
    set_faults(aws, dynamodb_fail_after_writes=3, dynamodb_failure_code="AccessDeniedException")
    with pytest.raises(ClientError) as error:
        put_items(
            aws.client("dynamodb"),
            "market_orders",
            ({"region_id": "8", "type_id": str(i)} for i in range(200)),
        )
    assert error.value.response["Error"]["Code"] == "AccessDeniedException"
    assert stored(aws) == 75  # three batches of 25 landed before the failure


def test_fault_settings_are_checked_whole_and_reset_turns_every_fault_off(local_aws):
    with pytest.raises(ValueError, match="whole number"):
        FaultSettings().update({"dynamodb_fail_after_writes": -1})
    with pytest.raises(ValueError, match="must be one of"):
        FaultSettings().update({"dynamodb_failure_code": "Teapot"})
    settings = FaultSettings()
    with pytest.raises(ValueError):
        settings.update({"athena_insert_fail_after_files": 1, "dynamodb_failure_code": "Teapot"})
    assert settings.athena_insert_fail_after_files is None  # a bad body changes nothing
    from_env = FaultSettings.from_env(
        {
            "LOCALAWS_S3_ACCESS_DENIED_PREFIXES": "lake/secret/, other",
            "LOCALAWS_ATHENA_INSERT_FAIL_AFTER_FILES": "1",
            "LOCALAWS_DYNAMODB_FAIL_AFTER_WRITES": "4",
        }
    )
    assert from_env.s3_access_denied_prefixes == ("lake/secret/", "other")
    assert (from_env.athena_insert_fail_after_files, from_env.dynamodb_fail_after_writes) == (1, 4)
    request = urllib.request.Request(
        f"{local_aws.endpoint_url}/_localaws/faults", data=b'{"athena_insert_failures": "x"}', method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(request)
    assert bad.value.code == 400
    set_faults(
        local_aws,
        athena_insert_fail_after_files=1,
        s3_access_denied_prefixes="a/b",
        dynamodb_fail_after_writes=0,
    )
    local_aws.reset()
    current = set_faults(local_aws)
    assert current["athena_insert_fail_after_files"] is None
    assert current["s3_access_denied_prefixes"] == [] and current["dynamodb_fail_after_writes"] is None
