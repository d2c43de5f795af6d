from __future__ import annotations

import time

import pytest


def wait_for_crawler(glue, name: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        crawler = glue.get_crawler(Name=name)["Crawler"]
        if crawler["State"] == "READY" and "LastCrawl" in crawler:
            return crawler
        time.sleep(0.1)
    raise TimeoutError(name)


def run_query(athena, sql: str, database: str = "db", timeout: float = 60) -> dict:
    query_id = athena.start_query_execution(
        QueryString=sql,
        QueryExecutionContext={"Database": database},
        ResultConfiguration={"OutputLocation": "s3://lake/athena-results/"},
    )["QueryExecutionId"]
    return wait_for_query(athena, query_id, timeout)


def wait_for_query(athena, query_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if execution["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return execution
        time.sleep(0.05)
    raise TimeoutError(query_id)


def result_rows(athena, query_id: str) -> list[list[str | None]]:
    rows = []
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
        rows += [[cell.get("VarCharValue") for cell in row["Data"]] for row in page["ResultSet"]["Rows"]]
    return rows


@pytest.fixture
def lake(local_aws, monkeypatch):
    """An empty stack with bucket ``lake`` and Glue database ``db``; crawls take 0.3 s."""
    monkeypatch.setenv("LOCALAWS_CRAWL_MIN_SECONDS", "0.3")
    local_aws.reset()
    local_aws.client("s3").create_bucket(Bucket="lake")
    local_aws.client("glue").create_database(DatabaseInput={"Name": "db"})
    return local_aws
