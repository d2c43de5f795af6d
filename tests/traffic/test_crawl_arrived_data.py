"""crawl_raw's and recrawl_target's operator with a crawl already running (an overlapping run, a backfill), on the offline stack.

The provider's GlueCrawlerRunOperator fails on CrawlerRunningException (or, told not to,
waits for that crawl and stops). CrawlArrivedDataOperator waits for it, then crawls again
when that crawl started before the run's data landed, so an incremental crawler never
skips the run's new folders. The deferrals run through the provider's real trigger.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from pipelines.traffic.operators import CrawlArrivedDataOperator

BUCKET = "pipelines-data-lake"
CRAWLER = "traffic_raw_crawler"
RAW_DDL_COLUMNS = [{"Name": "unieke_id", "Type": "string"}, {"Name": "tijd_waarneming", "Type": "string"}]


@pytest.fixture
def lake(aws, monkeypatch):
    # the other run's crawl lasts 10 s (however loaded the machine), so this run's crawl
    # request really meets it running; crawls started later are quick (other_crawl())
    monkeypatch.setenv("LOCALAWS_CRAWL_MIN_SECONDS", "10")
    aws.client("glue").create_table(
        DatabaseName="traffic",
        TableInput={
            "Name": "raw", "TableType": "EXTERNAL_TABLE",
            "PartitionKeys": [{"Name": k, "Type": "int"} for k in ("arrival_year", "arrival_month", "arrival_day", "arrival_hour")],
            "StorageDescriptor": {"Columns": RAW_DDL_COLUMNS, "Location": f"s3://{BUCKET}/traffic/raw/",
                                  "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"}},
        },
    )  # fmt: skip
    return aws


def other_crawl(aws, monkeypatch) -> None:
    """Another run's crawl, started now and running for 10 s; later crawls last 0.5 s."""
    aws.client("glue").start_crawler(Name=CRAWLER)
    while aws.client("glue").get_crawler(Name=CRAWLER)["Crawler"]["State"] != "RUNNING":
        time.sleep(0.05)
    time.sleep(0.3)  # the crawl thread has read its duration
    monkeypatch.setenv("LOCALAWS_CRAWL_MIN_SECONDS", "0.5")


def land(aws, hour: str) -> None:
    body = json.dumps({"unieke_id": "1", "tijd_waarneming": "2025-01-01T00:00:00+01:00"}).encode() + b"\n"
    aws.client("s3").put_object(Bucket=BUCKET, Key=f"traffic/raw/{hour}/part.json", Body=body)


def run_deferral(deferred: TaskDeferred) -> dict:
    """What the triggerer does: run the trigger to its first event."""

    async def first_event():
        async for event in deferred.trigger.run():
            return event.payload

    return asyncio.run(first_event())


def run_operator(operator: CrawlArrivedDataOperator) -> list[str]:
    """Run the operator through its deferrals; answer the methods it resumed in."""
    resumed, step = [], lambda: operator.execute({})
    while True:
        try:
            step()
            return resumed
        except TaskDeferred as deferred:
            event = run_deferral(deferred)
            method = getattr(operator, deferred.method_name)
            resumed.append(deferred.method_name)
            kwargs = deferred.kwargs or {}  # what the operator handed to its resumption
            step = lambda method=method, event=event, kwargs=kwargs: method({}, event, **kwargs)  # noqa: E731


def partitions(aws) -> list[str]:
    found = aws.client("glue").get_partitions(DatabaseName="traffic", TableName="raw")["Partitions"]
    return sorted(p["StorageDescriptor"]["Location"].split("/traffic/raw/", 1)[1] for p in found)


def crawls(aws) -> list[dict]:
    return list(reversed(aws.client("glue").list_crawls(CrawlerName=CRAWLER)["Crawls"]))


def test_a_crawl_running_since_before_the_data_landed_is_waited_for_then_crawled_again(lake, monkeypatch):
    land(lake, "2025/01/01/00")
    other_crawl(lake, monkeypatch)  # started before this run's data landed
    land(lake, "2025/01/01/01")  # this run's data lands while that crawl runs
    landed = datetime.now(UTC)
    # no data_landed_by, as recrawl_target: the data is upstream's, landed when the task starts
    operator = CrawlArrivedDataOperator(
        task_id="recrawl", crawler_name=CRAWLER, aws_conn_id="aws_traffic", poll_interval=1,
    )  # fmt: skip
    resumed = run_operator(operator)
    assert resumed == ["after_other_crawl", "execute_complete"]  # waited, then its own crawl
    first, second = crawls(lake)
    assert first["State"] == second["State"] == "COMPLETED"
    assert first["StartTime"] < landed <= second["StartTime"]
    assert partitions(lake) == ["2025/01/01/00/", "2025/01/01/01/"]  # the late folder is not skipped


def test_a_crawl_that_started_after_the_data_landed_covers_it_and_is_not_repeated(lake, monkeypatch):
    land(lake, "2025/01/01/00")
    landed = datetime.now(UTC)
    time.sleep(0.05)
    other_crawl(lake, monkeypatch)  # started after this run's data landed
    operator = CrawlArrivedDataOperator(
        task_id="crawl_raw", crawler_name=CRAWLER, data_landed_by=landed.isoformat(),
        aws_conn_id="aws_traffic", poll_interval=1,
    )  # fmt: skip
    assert run_operator(operator) == ["after_other_crawl"]
    assert len(crawls(lake)) == 1
    assert partitions(lake) == ["2025/01/01/00/"]


def test_the_providers_operator_fails_on_the_running_crawl_this_one_does_not(lake):
    """The old behaviour, for the record: the plain provider operator fails the run."""
    from airflow.providers.amazon.aws.operators.glue_crawler import GlueCrawlerRunOperator
    from botocore.exceptions import ClientError

    land(lake, "2025/01/01/00")
    lake.client("glue").start_crawler(Name=CRAWLER)
    crawl_raw = GlueCrawlerRunOperator(task_id="crawl_raw", crawler_name=CRAWLER, aws_conn_id="aws_traffic",
                                       deferrable=True)  # fmt: skip
    with pytest.raises(ClientError, match="CrawlerRunningException"):
        crawl_raw.execute({})
