"""Glue crawlers on the offline stack crawl S3 for real."""

from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.localaws.conftest import wait_for_crawler


def put(s3, key, body: bytes):
    s3.put_object(Bucket="lake", Key=key, Body=body)


def jsonl(*records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def crawl(glue, path="s3://lake/raw/", name="c", **extra):
    glue.create_crawler(
        Name=name, Role="role", DatabaseName="db", Targets={"S3Targets": [{"Path": path, **extra}]}
    )
    glue.start_crawler(Name=name)
    return wait_for_crawler(glue, name)


def columns(glue, table):
    found = glue.get_table(DatabaseName="db", Name=table)["Table"]
    return {c["Name"]: c["Type"] for c in found["StorageDescriptor"]["Columns"]}, [
        k["Name"] for k in found["PartitionKeys"]
    ]


def test_plain_folders_become_partition_n_and_types_merge_across_gzip_and_plain_files(lake):
    s3, glue = lake.client("s3"), lake.client("glue")
    put(s3, "raw/2024/12/31/23/a.json.gz", gzip.compress(jsonl({"id": "1", "speed": 90, "ok": True})))
    put(
        s3,
        "raw/2025/01/01/00/b.json",
        jsonl({"id": "2", "speed": 87.5, "extra": "x"}, {"id": "3", "speed": "n/a"}),
    )
    put(s3, "raw/2025/01/01/01/c.json", jsonl({"id": "4", "speed": 80, "ok": False}))
    crawler = crawl(glue)
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    cols, keys = columns(glue, "raw")
    assert cols == {"id": "string", "speed": "string", "ok": "boolean", "extra": "string"}
    assert keys == ["partition_0", "partition_1", "partition_2", "partition_3"]
    partitions = glue.get_partitions(DatabaseName="db", TableName="raw")["Partitions"]
    assert sorted(p["Values"] for p in partitions) == [
        ["2024", "12", "31", "23"],
        ["2025", "01", "01", "00"],
        ["2025", "01", "01", "01"],
    ]
    location = {tuple(p["Values"]): p["StorageDescriptor"]["Location"] for p in partitions}
    assert location[("2025", "01", "01", "00")] == "s3://lake/raw/2025/01/01/00/"


def test_int_and_double_merge_to_double(lake):
    s3, glue = lake.client("s3"), lake.client("glue")
    put(s3, "raw/a.json", jsonl({"v": 1}, {"v": 2.5}))
    crawl(glue)
    assert columns(glue, "raw") == ({"v": "double"}, [])


def test_hive_folders_parquet_and_table_prefix(lake):
    s3, glue = lake.client("s3"), lake.client("glue")
    for hour in ("00", "01"):
        buffer = io.BytesIO()
        pq.write_table(pa.table({"x": [1, 2], "name": ["a", "b"], "speed": [1.5, 2.0]}), buffer)
        put(s3, f"out/year=2024/hour={hour}/part.parquet", buffer.getvalue())
    glue.create_crawler(
        Name="c",
        Role="r",
        DatabaseName="db",
        TablePrefix="t_",
        Targets={"S3Targets": [{"Path": "s3://lake/out"}]},
    )
    glue.start_crawler(Name="c")
    assert wait_for_crawler(glue, "c")["LastCrawl"]["Status"] == "SUCCEEDED"
    assert columns(glue, "t_out") == ({"x": "bigint", "name": "string", "speed": "double"}, ["year", "hour"])
    table = glue.get_table(DatabaseName="db", Name="t_out")["Table"]
    assert "Parquet" in table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
    assert table["Parameters"]["classification"] == "parquet"


def test_csv_with_header_and_exclusions(lake):
    s3, glue = lake.client("s3"), lake.client("glue")
    put(s3, "raw/a.csv", b"date,cases,ratio,flag\n2020-01-01,1,0.5,true\n2020-01-02,3,1,false\n")
    put(s3, "raw/ignored/notes.txt", b"not,a,table\n")
    put(s3, "raw/_SUCCESS", b"x")
    crawler = crawl(glue, Exclusions=["ignored/**"])
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    cols, keys = columns(glue, "raw")
    assert cols == {"date": "string", "cases": "bigint", "ratio": "double", "flag": "boolean"}
    assert keys == []
    table = glue.get_table(DatabaseName="db", Name="raw")["Table"]
    assert table["Parameters"]["skip.header.line.count"] == "1"


def test_recrawl_adds_new_partitions_and_keeps_old(lake):
    s3, glue = lake.client("s3"), lake.client("glue")
    put(s3, "raw/2024/01/01/00/a.json", jsonl({"a": "1"}))
    crawl(glue)
    put(s3, "raw/2024/01/01/01/a.json", jsonl({"a": "1", "b": 2}))
    glue.start_crawler(Name="c")
    crawler = wait_for_crawler(glue, "c")
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    assert len(glue.get_partitions(DatabaseName="db", TableName="raw")["Partitions"]) == 2
    assert columns(glue, "raw")[0] == {"a": "string", "b": "bigint"}
    crawls = glue.list_crawls(CrawlerName="c")["Crawls"]
    assert [c["State"] for c in crawls] == ["COMPLETED", "COMPLETED"]


def test_state_goes_running_then_ready_and_a_running_crawler_cannot_start(lake, monkeypatch):
    monkeypatch.setenv("LOCALAWS_CRAWL_MIN_SECONDS", "1")
    s3, glue = lake.client("s3"), lake.client("glue")
    put(s3, "raw/a.json", jsonl({"a": 1}))
    glue.create_crawler(
        Name="c", Role="r", DatabaseName="db", Targets={"S3Targets": [{"Path": "s3://lake/raw/"}]}
    )
    glue.start_crawler(Name="c")
    assert glue.get_crawler(Name="c")["Crawler"]["State"] == "RUNNING"
    with pytest.raises(glue.exceptions.CrawlerRunningException):
        glue.start_crawler(Name="c")
    with pytest.raises(glue.exceptions.CrawlerRunningException):
        glue.update_crawler(Name="c", TablePrefix="x_")
    assert wait_for_crawler(glue, "c")["LastCrawl"]["Status"] == "SUCCEEDED"
    with pytest.raises(glue.exceptions.CrawlerNotRunningException):
        glue.stop_crawler(Name="c")


def test_stop_cancels_the_crawl(lake, monkeypatch):
    monkeypatch.setenv("LOCALAWS_CRAWL_MIN_SECONDS", "5")
    s3, glue = lake.client("s3"), lake.client("glue")
    put(s3, "raw/a.json", jsonl({"a": 1}))
    glue.create_crawler(
        Name="c", Role="r", DatabaseName="db", Targets={"S3Targets": [{"Path": "s3://lake/raw/"}]}
    )
    glue.start_crawler(Name="c")
    glue.stop_crawler(Name="c")
    assert wait_for_crawler(glue, "c", timeout=5)["LastCrawl"]["Status"] == "CANCELLED"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("s3://no-such-bucket/raw/", None, "no-such-bucket does not exist"),
        ("s3://lake/raw/", b'{"a": 1}\n{not json\n', "line 2 is not JSON"),
        ("s3://lake/raw/", b"\xff\xfe\x00garbage", "not UTF-8"),
    ],
)
def test_failures_end_failed_with_an_error_message(lake, path, body, message):
    s3, glue = lake.client("s3"), lake.client("glue")
    if body is not None:
        put(s3, "raw/a.json", body)
    crawler = crawl(glue, path)
    assert crawler["LastCrawl"]["Status"] == "FAILED"
    assert message in crawler["LastCrawl"]["ErrorMessage"]


def test_an_empty_location_is_crawled_without_changes_as_glue_does(lake):
    # Glue: "Crawler completed and made no changes"; the crawl SUCCEEDS and creates no table
    glue = lake.client("glue")
    crawler = crawl(glue, "s3://lake/empty/")
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    assert glue.get_tables(DatabaseName="db")["TableList"] == []


def test_crawler_crud_like_aws(lake):
    glue = lake.client("glue")
    targets = {"S3Targets": [{"Path": "s3://lake/raw/"}]}
    glue.create_crawler(Name="c", Role="r", DatabaseName="db", Targets=targets)
    with pytest.raises(glue.exceptions.AlreadyExistsException):
        glue.create_crawler(Name="c", Role="r", DatabaseName="db", Targets=targets)
    glue.update_crawler(Name="c", TablePrefix="p_")
    crawler = glue.get_crawler(Name="c")["Crawler"]
    assert (crawler["TablePrefix"], crawler["Version"], crawler["State"]) == ("p_", 2, "READY")
    assert glue.list_crawlers()["CrawlerNames"] == ["c"]
    assert glue.batch_get_crawlers(CrawlerNames=["c", "x"])["CrawlersNotFound"] == ["x"]
    assert glue.get_crawler_metrics(CrawlerNameList=["c"])["CrawlerMetricsList"][0]["CrawlerName"] == "c"
    glue.delete_crawler(Name="c")
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_crawler(Name="c")
