"""Demo: market_orders for The Forge against the fake ESI server (40 pages in 3 shares, some faults)."""

from __future__ import annotations

import json

from devtools.demo import DemoContext, DemoRun
from devtools.fake_esi import FakeEsi

DAG_ID = "market_orders"
ORDER = 20
REGION = 10000002


def prepare(ctx: DemoContext) -> DemoRun:
    esi = FakeEsi(pages=40, latency=0.02, fault_rate=0.05, timeout_seconds=1.0).start()
    ctx.add_cleanup(esi.stop)
    ctx.env["AIRFLOW_CONN_ESI_DEFAULT"] = json.dumps({"conn_type": "http", "host": esi.url})
    ctx.esi = esi  # type: ignore[attr-defined]
    # 40 pages in shares of 15: three download tasks share the region
    return DemoRun(conf={"region_id": REGION, "concurrency": 16, "pages_per_task": 15})


def standalone(ctx: DemoContext) -> dict[str, str]:
    """``make airflow``: the fake ESI (faults included) behind connection ``esi_default``."""
    prepare(ctx)
    return {"AIRFLOW_CONN_ESI_DEFAULT": ctx.env["AIRFLOW_CONN_ESI_DEFAULT"]}


def summarize(ctx: DemoContext) -> list[tuple[str, object]]:
    dynamodb, s3 = ctx.client("dynamodb"), ctx.client("s3")
    types = sum(
        page["Count"]
        for page in dynamodb.get_paginator("query").paginate(
            TableName="market_orders", KeyConditionExpression="region_id = :r",
            ExpressionAttributeValues={":r": {"S": str(REGION)}}, Select="COUNT",
        )
    )  # fmt: skip
    pages = sum(
        1
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket="pipelines-data-lake", Prefix="market/raw/"
        )
        for obj in page.get("Contents", [])
        if obj["Key"].endswith(".jsonl.gz")
    )
    esi = ctx.esi  # type: ignore[attr-defined]
    return [
        ("raw pages stored in S3", pages),
        (f"type items for region {REGION}", types),
        ("ESI faults survived (5xx/timeouts/truncated)", esi.faults_served),
    ]
