"""Demo: covid_daily over local copies of the real NYT and Johns Hopkins files."""

from __future__ import annotations

from devtools.airflow_env import REPO
from devtools.demo import DemoContext, DemoRun

DAG_ID = "covid_daily"
ORDER = 30
DATA = REPO / "sample_data" / "covid"


CASES = DATA / "nyt_us_snapshot_000bd91_through_2022-04-19.csv"
RECOVERIES = DATA / "jhu_time-series-19-covid-combined_subset_US_KoreaSouth_Afghanistan.csv"


def prepare(ctx: DemoContext) -> DemoRun:
    return DemoRun(conf={"cases_url": str(CASES), "recoveries_url": str(RECOVERIES)})


def standalone(ctx: DemoContext) -> dict[str, str]:
    """``make airflow``: the params' defaults (the live URLs) replaced by the local copies."""
    return {"AIRFLOW_VAR_COVID_CASES_URL": str(CASES), "AIRFLOW_VAR_COVID_RECOVERIES_URL": str(RECOVERIES)}


def summarize(ctx: DemoContext) -> list[tuple[str, object]]:
    dynamodb = ctx.client("dynamodb")
    items = sum(
        page["Count"]
        for page in dynamodb.get_paginator("query").paginate(
            TableName="covid_stats",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "CASES"}},
            Select="COUNT",
        )
    )
    messages = [m for m in ctx.stack.sent()["sns"] if m["topic_arn"].endswith(":covid-refresh")]
    last = messages[-1]["subject"] if messages else "none"
    return [("items in covid_stats", items), ("SNS messages to covid-refresh", f"{len(messages)} ({last})")]
