"""Demo: drop the sample directory CSV in S3 and load it into department_directory."""

from __future__ import annotations

from devtools.airflow_env import REPO
from devtools.demo import DemoContext, DemoRun

DAG_ID = "department_directory"
ORDER = 40
KEY = "directory/incoming/staff.csv"


def prepare(ctx: DemoContext) -> DemoRun:
    ctx.client("s3").put_object(
        Bucket="pipelines-data-lake",
        Key=KEY,
        Body=(REPO / "sample_data" / "directory" / "staff.csv").read_bytes(),
    )
    return DemoRun(conf={"s3_key": KEY})


def standalone(ctx: DemoContext) -> dict[str, str]:
    """``make airflow``: the sample CSV in S3, and the file a manual run without ``s3_key`` loads."""
    prepare(ctx)
    return {"AIRFLOW_VAR_DIRECTORY_DEFAULT_S3_KEY": KEY}


def summarize(ctx: DemoContext) -> list[tuple[str, object]]:
    items = []
    for page in ctx.client("dynamodb").get_paginator("scan").paginate(TableName="department_directory"):
        items += page["Items"]
    employees = sum(len(item["employees"]["M"]) for item in items)
    example = min(items, key=lambda item: item["department"]["S"]) if items else None
    rows: list[tuple[str, object]] = [("department items", len(items)), ("employees nested", employees)]
    if example:
        rows.append((f"e.g. {example['department']['S']}", f"{len(example['employees']['M'])} employees"))
    return rows
