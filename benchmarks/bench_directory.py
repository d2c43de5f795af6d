"""department_directory load: batched writes vs one PutItem per item (the original's method).

20,000 employees in 500 departments, nested by the pipeline's own code, written to the
offline stack's DynamoDB twice in the same run: with the project's batch writer and with
a PutItem loop. Prints the ratio of the two wall times.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.update(
    {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
)

from devtools.directory_sample import directory_csv  # noqa: E402
from infra.provision import provision  # noqa: E402
from localaws import LocalAWS  # noqa: E402
from pipelines.aws.dynamodb import put_items, serialize_item  # noqa: E402
from pipelines.directory.domain import nest  # noqa: E402

TABLE = "department_directory"


def main() -> None:
    data = directory_csv(departments=500, employees=20_000, seed=9)
    with LocalAWS() as stack:
        provision(stack.endpoint_url)
        client = stack.client("dynamodb")
        started = time.perf_counter()
        items = nest(data, "bench.csv")
        batched_items = [{**item, "source_key": "bench.csv"} for item in items.values()]
        put_items(client, TABLE, batched_items)
        batched = time.perf_counter() - started

        started = time.perf_counter()
        items = nest(data, "bench.csv")
        for item in items.values():
            client.put_item(TableName=TABLE, Item=serialize_item({**item, "source_key": "bench.csv"}))
        one_by_one = time.perf_counter() - started
        count = client.describe_table(TableName=TABLE)["Table"].get("ItemCount", len(items))
    print(f"departments: {len(items)}, employees: 20000, items in table: {count}")
    print(f"batched load (nest + BatchWriteItem x{-(-len(items) // 25)}): {batched:.2f}s")
    print(f"PutItem per item (nest + PutItem x{len(items)}):             {one_by_one:.2f}s")
    print(
        f"RESULT directory_batched_vs_putitem {one_by_one / batched:.1f} - PutItem-loop time over batched-load time"
    )


if __name__ == "__main__":
    main()
