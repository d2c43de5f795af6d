"""S3 event mode offline, as Glue documents it (issue 21): S3 events reach the queue for
every write path, and a CRAWL_EVENT_MODE crawler lists and reads only the folders they name.

"Accelerating crawls using Amazon S3 event notifications": the first crawl lists the whole
target; later crawls consume the queue's events, list only their folders, and stop at once
on an empty queue; an update of the crawler sends the next crawl back to a full listing.
Configurations Glue refuses are refused. The oracle of what a crawl reads is the objects the
test itself wrote and removed, and a CRAWL_EVERYTHING crawler on the same table.
"""

from __future__ import annotations

import io
import json
from urllib.parse import unquote_plus

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from tests.localaws.conftest import run_query, wait_for_crawler

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:lake-events"
LOG_LOG = {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
EVENT_MODE = {"RecrawlPolicy": {"RecrawlBehavior": "CRAWL_EVENT_MODE"}, "SchemaChangePolicy": LOG_LOG}


@pytest.fixture
def evented(lake):
    """Bucket ``lake`` versioned (as the data lake is), its ``t/`` events queued on lake-events."""
    s3, sqs = lake.client("s3"), lake.client("sqs")
    url = sqs.create_queue(QueueName="lake-events")["QueueUrl"]
    s3.put_bucket_versioning(Bucket="lake", VersioningConfiguration={"Status": "Enabled"})
    rules = {"Key": {"FilterRules": [{"Name": "prefix", "Value": "t/"}]}}
    s3.put_bucket_notification_configuration(
        Bucket="lake",
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": QUEUE_ARN, "Events": ["s3:ObjectCreated:*"], "Filter": rules},
                {"QueueArn": QUEUE_ARN, "Events": ["s3:ObjectRemoved:*"], "Filter": rules},
            ]
        },
    )
    return lake, url


def drain(sqs, url) -> list[tuple[str, str]]:
    """(eventName, key) of every queued record, the messages deleted."""
    found = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            for record in json.loads(message["Body"]).get("Records", []):
                found.append((record["eventName"], unquote_plus(record["s3"]["object"]["key"])))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return sorted(found)


def parquet(value: int) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"v": pa.array([value], pa.int32())}), sink)
    return sink.getvalue()


def declare_table(glue) -> None:
    glue.create_table(
        DatabaseName="db",
        TableInput={
            "Name": "t",
            "TableType": "EXTERNAL_TABLE",
            "PartitionKeys": [{"Name": "day", "Type": "string"}],
            "StorageDescriptor": {
                "Columns": [{"Name": "v", "Type": "int"}],
                "Location": "s3://lake/t/",
                "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "SerdeInfo": {
                    "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                },
            },
        },
    )


def create(glue, name="c", queue=QUEUE_ARN, **extra):
    target = {"DatabaseName": "db", "Tables": ["t"]}
    if queue:
        target["EventQueueArn"] = queue
    glue.create_crawler(
        Name=name, Role="role", DatabaseName="db", Targets={"CatalogTargets": [target]}, **extra
    )


def crawled(glue, name="c") -> dict:
    glue.start_crawler(Name=name)
    crawler = wait_for_crawler(glue, name)
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED", crawler["LastCrawl"]
    return json.loads(glue.list_crawls(CrawlerName=name)["Crawls"][0]["Summary"])


def test_every_write_path_sends_its_s3_event_to_the_queue(evented):
    stack, url = evented
    s3, sqs, athena = stack.client("s3"), stack.client("sqs"), stack.client("athena")
    s3.put_object(Bucket="lake", Key="t/day=1/a.parquet", Body=parquet(1))
    s3.copy_object(
        Bucket="lake", Key="t/day=2/b.parquet", CopySource={"Bucket": "lake", "Key": "t/day=1/a.parquet"}
    )
    s3.delete_object(Bucket="lake", Key="t/day=1/a.parquet")  # versioned: a delete marker
    s3.delete_objects(Bucket="lake", Delete={"Objects": [{"Key": "t/day=2/b.parquet"}]})
    s3.put_object(Bucket="lake", Key="elsewhere/x.parquet", Body=b"x")  # outside the prefix: no event
    assert drain(sqs, url) == [
        ("ObjectCreated:Copy", "t/day=2/b.parquet"),
        ("ObjectCreated:Put", "t/day=1/a.parquet"),
        ("ObjectRemoved:DeleteMarkerCreated", "t/day=1/a.parquet"),
        ("ObjectRemoved:DeleteMarkerCreated", "t/day=2/b.parquet"),
    ]
    # what localaws' Athena writes for INSERT INTO is an S3 write like any other
    ddl = "CREATE EXTERNAL TABLE t (v int) PARTITIONED BY (day string) STORED AS PARQUET LOCATION 's3://lake/t/'"
    assert run_query(athena, ddl)["Status"]["State"] == "SUCCEEDED"
    assert run_query(athena, "INSERT INTO t SELECT 7, '3'")["Status"]["State"] == "SUCCEEDED"
    [(event, key)] = [e for e in drain(sqs, url) if e[1].startswith("t/")]
    assert event == "ObjectCreated:Put" and key.startswith("t/day=3/")


def test_an_event_mode_crawl_reads_only_the_folders_its_events_name(evented):
    stack, url = evented
    s3, sqs, glue = stack.client("s3"), stack.client("sqs"), stack.client("glue")
    declare_table(glue)
    for day in (1, 2, 3):
        s3.put_object(Bucket="lake", Key=f"t/day={day}/a.parquet", Body=parquet(day))
    create(glue, Configuration=json.dumps(
        {"Version": 1.0, "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}}}
    ), **EVENT_MODE)  # fmt: skip
    create(glue, name="everything", queue=None, SchemaChangePolicy=LOG_LOG)  # the baseline

    first = crawled(glue)  # lists the whole table, the events it makes redundant purged first
    assert (first["ObjectsRead"], first["PartitionsAdded"]) == (3, 3)
    assert "EventMessagesConsumed" not in first
    assert drain(sqs, url) == []

    s3.put_object(Bucket="lake", Key="t/day=4/a.parquet", Body=parquet(4))
    s3.put_object(Bucket="lake", Key="t/day=4/b.parquet", Body=parquet(5))
    s3.put_object(Bucket="lake", Key="t/day=3/b.parquet", Body=parquet(6))  # an existing partition
    s3.delete_object(Bucket="lake", Key="t/day=1/a.parquet")  # day=1 is gone
    events = crawled(glue)
    assert events["EventMessagesConsumed"] == 4
    assert events["ObjectsRead"] == 4  # day=4 and day=3, 2 files each; never day=2
    assert (events["PartitionsAdded"], events["PartitionsGoneLogged"], events["PartitionsDeleted"]) == (
        1,
        1,
        0,
    )
    values = sorted(
        p["Values"][0] for p in glue.get_partitions(DatabaseName="db", TableName="t")["Partitions"]
    )
    assert values == ["1", "2", "3", "4"]  # DeleteBehavior LOG: day=1 logged, kept
    assert drain(sqs, url) == []  # the consumed messages are deleted

    empty = crawled(glue)  # nothing queued: the crawl stops, having read nothing
    assert (empty["ObjectsRead"], empty["EventMessagesConsumed"]) == (0, 0)
    assert crawled(glue, "everything")["ObjectsRead"] == 5  # day=2, day=3 (2), day=4 (2)

    # an update sends the next crawl back to a full listing, as Glue does (within a minute of
    # the first purge, SQS refuses another: the queued events are received and deleted instead)
    glue.update_crawler(Name="c", Description="changed")
    s3.put_object(Bucket="lake", Key="t/day=5/a.parquet", Body=parquet(7))
    assert crawled(glue)["ObjectsRead"] == 6  # day=2, 3 (2), 4 (2), 5
    assert drain(sqs, url) == []


def test_event_mode_configurations_glue_refuses_are_refused(evented):
    stack, _url = evented
    glue = stack.client("glue")

    def refused(**kwargs) -> str:
        with pytest.raises(ClientError) as error:
            glue.create_crawler(Name="x", Role="role", DatabaseName="db", **kwargs)
        assert error.value.response["Error"]["Code"] == "InvalidInputException"
        return str(error.value)

    catalog = {"DatabaseName": "db", "Tables": ["t"]}
    mode = EVENT_MODE
    assert "EventQueueArn is required" in refused(Targets={"CatalogTargets": [catalog]}, **mode)
    assert "not a valid Amazon SQS ARN" in refused(
        Targets={"CatalogTargets": [{**catalog, "EventQueueArn": "lake-events"}]}, **mode
    )
    assert "single Amazon S3 or Data Catalog target" in refused(
        Targets={"CatalogTargets": [{**catalog, "EventQueueArn": QUEUE_ARN}],
                 "S3Targets": [{"Path": "s3://lake/raw/", "EventQueueArn": QUEUE_ARN}]},
        **mode,
    )  # fmt: skip
    # a catalog target's deleted partitions are logged or deleted, never deprecated (Glue's default)
    assert "only LOG or DELETE_FROM_DATABASE" in refused(
        Targets={"CatalogTargets": [{**catalog, "EventQueueArn": QUEUE_ARN}]},
        RecrawlPolicy=mode["RecrawlPolicy"],
    )
    assert "only supported for crawlers with Amazon S3 targets" in refused(
        Targets={"CatalogTargets": [catalog]},
        RecrawlPolicy={"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"},
        SchemaChangePolicy=LOG_LOG,
    )
    create(glue, queue=None, SchemaChangePolicy=LOG_LOG)  # crawl everything: accepted
    with pytest.raises(ClientError, match="EventQueueArn is required"):
        glue.update_crawler(Name="c", **mode)
    assert glue.get_crawler(Name="c")["Crawler"]["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_EVERYTHING"}
    assert glue.list_crawlers()["CrawlerNames"] == ["c"]
