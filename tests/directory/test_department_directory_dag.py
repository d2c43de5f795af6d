"""department_directory on the offline stack: loads, stale departments, failures, the event path."""

from __future__ import annotations

import asyncio
import time

import pytest

from devtools.directory_sample import directory_csv
from pipelines.aws.dynamodb import deserialize_item
from pipelines.directory.domain import keys_from_s3_events, nest
from tests.conftest import load_dag, run_dag

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


def run(key):
    return run_dag(load_dag("department_directory"), conf={"s3_key": key})


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
