"""The offline crawler honours Glue's recrawl and schema-change policies, strictly.

A configuration Glue refuses is refused with Glue's error; an incremental crawl
(CRAWL_NEW_FOLDERS_ONLY) reads only the folders no earlier successful crawl read; with
UpdateBehavior LOG a declared table keeps its schema and the differences are logged; with
InheritFromTable new partitions take the table's storage.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.localaws.conftest import wait_for_crawler
from tests.localaws.test_glue_crawler import jsonl, put

INCREMENTAL = {
    "RecrawlPolicy": {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"},
    "SchemaChangePolicy": {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"},
}
INHERIT = json.dumps(
    {"Version": 1.0, "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}}}
)


def create(glue, name="c", path="s3://lake/raw/", **extra):
    glue.create_crawler(
        Name=name, Role="role", DatabaseName="db", Targets={"S3Targets": [{"Path": path}]}, **extra
    )


def crawled(glue, name="c") -> dict:
    glue.start_crawler(Name=name)
    crawler = wait_for_crawler(glue, name)
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED", crawler["LastCrawl"]
    return json.loads(glue.list_crawls(CrawlerName=name)["Crawls"][0]["Summary"])


@pytest.mark.parametrize(
    "policy",
    [
        None,  # Glue's default: UPDATE_IN_DATABASE / DEPRECATE_IN_DATABASE
        {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"},
        {"UpdateBehavior": "LOG", "DeleteBehavior": "DEPRECATE_IN_DATABASE"},
    ],
)
def test_new_folders_only_without_log_log_is_refused_as_glue_refuses_it(lake, policy):
    glue = lake.client("glue")
    extra = {"RecrawlPolicy": {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"}}
    if policy:
        extra["SchemaChangePolicy"] = policy
    with pytest.raises(ClientError) as refused:
        create(glue, **extra)
    assert refused.value.response["Error"]["Code"] == "InvalidInputException"
    assert "can have only LOG DeleteBehavior value and LOG UpdateBehavior value" in str(refused.value)
    assert glue.list_crawlers()["CrawlerNames"] == []


def test_other_refusals_and_an_update_that_glue_refuses_changes_nothing(lake):
    glue = lake.client("glue")
    with pytest.raises(ClientError, match="Member must satisfy enum value set"):
        create(glue, RecrawlPolicy={"RecrawlBehavior": "CRAWL_SOMETIMES"})
    with pytest.raises(ClientError, match="EventQueueArn is required"):
        create(glue, RecrawlPolicy={"RecrawlBehavior": "CRAWL_EVENT_MODE"})
    create(glue)  # crawl everything, Glue's defaults
    with pytest.raises(ClientError, match="can have only LOG"):
        glue.update_crawler(Name="c", RecrawlPolicy={"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"})
    assert glue.get_crawler(Name="c")["Crawler"]["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_EVERYTHING"}
    glue.update_crawler(Name="c", **INCREMENTAL)  # both together: accepted
    assert (
        glue.get_crawler(Name="c")["Crawler"]["RecrawlPolicy"]["RecrawlBehavior"] == "CRAWL_NEW_FOLDERS_ONLY"
    )


def test_an_incremental_crawl_reads_only_the_folders_added_since_the_last_crawl(lake):
    s3, glue = lake.client("s3"), lake.client("glue")
    for hour in range(3):
        put(s3, f"raw/2024/01/01/{hour:02d}/a.json", jsonl({"a": "1"}))
    create(glue, name="incremental", **INCREMENTAL)
    create(glue, name="everything")
    assert crawled(glue, "incremental")["ObjectsRead"] == 3
    assert crawled(glue, "everything")["ObjectsRead"] == 3

    put(s3, "raw/2024/01/01/03/a.json", jsonl({"a": "2"}))
    incremental = crawled(glue, "incremental")
    assert (incremental["ObjectsRead"], incremental["PartitionsAdded"]) == (1, 1)  # the new folder only
    assert crawled(glue, "everything")["ObjectsRead"] == 4  # every folder again
    assert len(glue.get_partitions(DatabaseName="db", TableName="raw")["Partitions"]) == 4
    nothing_new = crawled(glue, "incremental")
    assert (nothing_new["ObjectsRead"], nothing_new["PartitionsAdded"]) == (0, 0)


def test_with_update_behavior_log_the_declared_schema_stays_and_partitions_inherit_it(lake):
    s3, glue = lake.client("s3"), lake.client("glue")
    declared = [{"Name": "unieke_id", "Type": "string"}, {"Name": "speed", "Type": "string"}]
    glue.create_table(
        DatabaseName="db",
        TableInput={
            "Name": "raw",
            "TableType": "EXTERNAL_TABLE",
            "PartitionKeys": [{"Name": f"partition_{i}", "Type": "string"} for i in range(4)],
            "StorageDescriptor": {
                "Columns": declared,
                "Location": "s3://lake/raw/",
                "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
                "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"},
            },
        },
    )
    # the publisher renamed nothing but retyped speed (a number now) and added a field
    put(s3, "raw/2024/01/01/00/a.json", jsonl({"unieke_id": "1", "speed": 90, "lane": "L1"}))
    create(glue, Configuration=INHERIT, **INCREMENTAL)
    summary = crawled(glue)
    assert summary["SchemaChangesLogged"] == 2  # speed retyped, lane new: logged, not applied
    table = glue.get_table(DatabaseName="db", Name="raw")["Table"]
    assert table["StorageDescriptor"]["Columns"] == declared
    [partition] = glue.get_partitions(DatabaseName="db", TableName="raw")["Partitions"]
    assert partition["StorageDescriptor"]["Columns"] == declared
    assert (
        partition["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
        == "org.openx.data.jsonserde.JsonSerDe"
    )
    assert partition["StorageDescriptor"]["Location"] == "s3://lake/raw/2024/01/01/00/"
