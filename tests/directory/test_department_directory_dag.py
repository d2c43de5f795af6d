"""department_directory on the offline stack: loads, stale departments, failures, the event path."""

from __future__ import annotations

import asyncio
import time

import pytest

from devtools.directory_sample import directory_csv
from pipelines.aws.dynamodb import deserialize_item
from pipelines.directory.domain import keys_from_s3_events, nest
from tests.conftest import load_dag, run_dag, task_states

BUCKET = "pipelines-data-lake"


def table(aws) -> dict:
    items = {}
    for page in aws.client("dynamodb").get_paginator("scan").paginate(TableName="department_directory"):
        for item in page["Items"]:
            plain = deserialize_item(item)
            items[plain["department"]] = plain
    return items


def drop(aws, name: str, data: bytes) -> str:
    key = f"directory/incoming/{name}"
    aws.client("s3").put_object(Bucket=BUCKET, Key=key, Body=data)
    return key


def run(key, **conf):
    return run_dag(load_dag("department_directory"), conf={"s3_key": key, **conf})


def test_a_file_gives_the_nested_items_and_a_second_file_deletes_a_vanished_department(airflow_db, aws):
    first = directory_csv(departments=6, employees=80, seed=2)
    key = drop(aws, "staff-1.csv", first)
    assert run(key).state == "success"
    items = table(aws)
    expected = nest(first, "x")
    assert sorted(items) == sorted(expected)
    for department, item in items.items():
        assert item["employees"] == expected[department]["employees"]
        assert item["source_key"] == key and item["source_etag"] and item["loaded_at"]
    raw = aws.client("dynamodb").get_item(
        TableName="department_directory", Key={"department": {"S": "dept-000"}}
    )
    facts = raw["Item"]["employees"]["M"]["emp-00000"]["M"]
    assert set(facts["salary"]) == {"N"} and set(facts["fte"]) == {"N"} and set(facts["remote"]) == {"BOOL"}
    assert set(facts["phone"]) == {"S"}  # leading zero kept: an identifier, not a number

    time.sleep(1.1)  # S3 LastModified has one-second resolution: the second file is newer
    second = directory_csv(departments=6, employees=80, seed=2, skip={"dept-003"})
    key2 = drop(aws, "staff-2.csv", second)
    assert run(key2).state == "success"
    after = table(aws)
    assert "dept-003" not in after and len(after) == 5
    assert {item["source_key"] for item in after.values()} == {key2}


def test_a_header_and_one_row_does_not_wipe_the_directory_unless_the_run_allows_it(airflow_db, aws, capfd):
    key = drop(aws, "staff.csv", directory_csv(departments=12, employees=150, seed=1))
    assert run(key).state == "success"
    before = table(aws)
    assert len(before) == 12
    time.sleep(1.1)
    truncated = drop(aws, "truncated.csv", directory_csv(departments=12, employees=1, seed=1))
    capfd.readouterr()
    result = run(truncated)
    assert result.state == "failed" and task_states(result)["load"] == "failed"
    assert table(aws) == before  # nothing deleted, nothing overwritten
    output = "".join(capfd.readouterr())
    # 150 employees stored, 1 kept (emp-00000): 149 gone, 11 of 12 departments deleted
    assert (
        "department_directory (11 of 12 departments deleted): this run would remove or lower 149 of "
        "the 150 stored employees (99.3%" in output
    )
    assert "the limit is 37 employees (max_removal_share 25.0% of 150, and at least 10)" in output
    assert '{"allow_large_removal": true}' in output

    # the operator checked: the directory really shrank; a manual run with the override loads it
    capfd.readouterr()
    assert run(truncated, allow_large_removal=True).state == "success"
    assert sorted(table(aws)) == ["dept-000"]
    assert "allow_large_removal=true let this run through: department_directory" in "".join(
        capfd.readouterr()
    )


def test_a_failing_file_leaves_the_table_exactly_as_it_was(airflow_db, aws):
    key = drop(aws, "good.csv", directory_csv(departments=4, employees=20))
    assert run(key).state == "success"
    before = table(aws)
    time.sleep(1.1)
    bad = directory_csv(departments=4, employees=20) + b"dept-000,emp-00000,dup,,,,,,,\n"
    bad_key = drop(aws, "bad.csv", bad)
    assert run(bad_key).state == "failed"
    assert table(aws) == before


def test_an_older_file_is_not_applied_over_a_newer_one(airflow_db, aws):
    old = drop(aws, "old.csv", directory_csv(departments=3, employees=9, seed=1))
    time.sleep(1.1)
    new = drop(aws, "new.csv", directory_csv(departments=2, employees=9, seed=1))
    assert run(old).state == "success"  # the load step is skipped: a newer file exists
    assert table(aws) == {}
    assert run(new).state == "success"
    assert sorted(table(aws)) == ["dept-000", "dept-001"]


def test_s3_put_reaches_the_watchers_trigger_with_the_right_key(aws):
    dag = load_dag("department_directory")
    [asset] = (
        dag.timetable.asset_condition.objects
        if hasattr(dag.timetable.asset_condition, "objects")
        else [dag.timetable.asset_condition]
    )
    trigger = asset.watchers[0].trigger
    sqs = aws.client("sqs")
    sqs.purge_queue(QueueUrl=sqs.get_queue_url(QueueName="directory-events")["QueueUrl"])
    key = drop(aws, "staff 2025.csv", directory_csv(departments=2, employees=4))

    async def first_event():
        async for event in trigger.trigger.run():
            return event

    event = asyncio.run(asyncio.wait_for(first_event(), timeout=60))
    assert event.payload["status"] == "success"
    assert (
        keys_from_s3_events(event.payload["message_batch"])[0][0]
        == key
        == "directory/incoming/staff 2025.csv"
    )


def test_s3_key_param_is_validated_at_trigger_time():
    from airflow.sdk.exceptions import ParamValidationError

    param = load_dag("department_directory").params.get_param("s3_key")
    assert param.resolve("directory/incoming/a.csv") == "directory/incoming/a.csv"
    with pytest.raises(ParamValidationError):
        param.resolve("elsewhere/a.csv")
    params = load_dag("department_directory").params
    assert params.get_param("allow_large_removal").resolve() is False
    assert params.get_param("max_removal_share").resolve() == 0.25
    for name, bad in (("allow_large_removal", "yes"), ("max_removal_share", 2)):
        with pytest.raises(ParamValidationError):
            params.get_param(name).resolve(bad)


def test_a_value_dynamodb_cannot_store_leaves_the_table_exactly_as_before(airflow_db, aws):
    key = drop(aws, "good.csv", directory_csv(departments=40, employees=80, seed=1))
    assert run(key).state == "success"
    before = table(aws)
    time.sleep(1.1)
    # a new file with other values everywhere; its last row (department 40) holds a 1e200
    rows = directory_csv(departments=40, employees=80, seed=9).decode().splitlines()
    cells = rows[-1].split(",")
    cells[4] = "1e200"
    rows[-1] = ",".join(cells)
    bad_key = drop(aws, "bad.csv", ("\n".join(rows) + "\n").encode())
    result = run(bad_key)
    assert result.state == "failed"
    assert task_states(result)["nest_and_validate"] == "failed"
    assert table(aws) == before


def test_identifiers_are_stored_as_text_exactly_as_written(airflow_db, aws):
    data = (
        b"department,employee,zip,phone,badge\nops,ann,02134,+15551234567,-3\nops,bob,12345,15551234567,5\n"
    )
    assert run(drop(aws, "ids.csv", data)).state == "success"
    raw = aws.client("dynamodb").get_item(TableName="department_directory", Key={"department": {"S": "ops"}})
    employees = raw["Item"]["employees"]["M"]
    assert employees["ann"]["M"] == {
        "zip": {"S": "02134"},
        "phone": {"S": "+15551234567"},
        "badge": {"S": "-3"},
    }
    assert employees["bob"]["M"] == {
        "zip": {"S": "12345"},
        "phone": {"S": "15551234567"},
        "badge": {"S": "5"},
    }


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        # a bucket policy or KMS key denying s3:GetObject: HEAD answers 403 without a body
        ({"s3_access_denied_prefixes": ["pipelines-data-lake/directory/incoming/"]}, "403"),
        # S3 throttling that outlasts botocore's retries
        ({"s3_slowdown_rate": 1.0}, "503"),
    ],
)
def test_an_s3_error_other_than_404_fails_the_run_and_alerts(airflow_db, aws, mailbox, fault, code):
    key = drop(aws, "staff.csv", directory_csv(departments=2, employees=4))
    aws.set_faults(**fault)
    try:
        result = run(key)
    finally:
        aws.set_faults(s3_access_denied_prefixes=[], s3_slowdown_rate=0)
    assert result.state == "failed" and task_states(result)["resolve_source"] == "failed"
    assert table(aws) == {}
    [alert] = mailbox.wait_for(1)
    assert "department_directory.resolve_source" in alert.subject and f"({code})" in alert.text


def test_an_s3_slowdown_that_outlasts_the_retries_fails_the_run(airflow_db, aws):
    key = drop(aws, "staff.csv", directory_csv(departments=2, employees=4))
    aws.set_faults(s3_slowdown_rate=1.0)
    try:
        result = run(key)
    finally:
        aws.set_faults(s3_slowdown_rate=0)
    assert result.state == "failed" and task_states(result)["resolve_source"] == "failed"


def test_a_file_gone_before_the_run_skips_it(airflow_db, aws):
    result = run("directory/incoming/deleted-meanwhile.csv")
    assert task_states(result) == {
        "resolve_source": "skipped",
        "nest_and_validate": "skipped",
        "load": "skipped",
    }


def test_only_404_and_no_such_key_mean_missing(aws):
    from botocore.exceptions import ClientError

    from pipelines.aws.s3 import is_missing

    s3 = aws.client("s3")
    errors = {}
    for name, call in {
        "head": lambda: s3.head_object(Bucket=BUCKET, Key="directory/incoming/absent.csv"),
        "get": lambda: s3.get_object(Bucket=BUCKET, Key="directory/incoming/absent.csv"),
    }.items():
        with pytest.raises(ClientError) as raised:
            call()
        errors[name] = raised.value
    assert is_missing(errors["head"]) and is_missing(errors["get"])
    assert errors["get"].response["Error"]["Code"] == "NoSuchKey"
    aws.set_faults(s3_slowdown_rate=1.0)
    try:
        with pytest.raises(ClientError) as slowdown:
            s3.head_object(Bucket=BUCKET, Key="directory/incoming/absent.csv")
    finally:
        aws.set_faults(s3_slowdown_rate=0)
    assert slowdown.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert not is_missing(slowdown.value)
    forbidden = ClientError(
        {"Error": {"Code": "403", "Message": "Forbidden"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
        "HeadObject",
    )
    access_denied = ClientError(
        {
            "Error": {"Code": "AccessDenied", "Message": "Access Denied"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        "GetObject",
    )
    assert not is_missing(forbidden) and not is_missing(access_denied)
