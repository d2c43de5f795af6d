"""market_orders: concurrent download, batched load, streaming memory — each against a baseline.

1. 200 pages with 100 ms server latency: the EsiClient at concurrency 16 vs concurrency 1
   (sequential), same fake ESI (goal >= 10x).
2. 50,000 items into DynamoDB on the offline stack: the project's batched writer vs a
   per-item PutItem loop on the same endpoint (goal >= 10x).
3. Peak memory growth while aggregating 1M orders streamed page by page (goal <= 150 MB
   over the process baseline), measured in a fresh subprocess with tracemalloc, beside the
   same aggregation with every order held at once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.update(
    {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
)

from devtools.fake_esi import FakeEsi  # noqa: E402
from pipelines.market.esi import EsiClient  # noqa: E402


def download_seconds(url: str, concurrency: int) -> float:
    client = EsiClient(url, concurrency=concurrency)

    async def sink(page, body, last_modified):
        return None

    started = time.perf_counter()
    snapshot = asyncio.run(client.download(10000002, sink))
    assert snapshot.pages == 200
    return time.perf_counter() - started


def dynamodb_ratio() -> tuple[float, float]:
    from infra.provision import provision
    from localaws import LocalAWS
    from pipelines.aws.dynamodb import put_items, serialize_item

    items = [
        {"region_id": "1", "type_id": str(i), "sell_volume": i, "buy_volume": 2 * i} for i in range(50_000)
    ]
    with LocalAWS() as stack:
        provision(stack.endpoint_url)
        client = stack.client("dynamodb")
        started = time.perf_counter()
        put_items(client, "market_orders", items)
        batched = time.perf_counter() - started
        started = time.perf_counter()
        for item in items:
            client.put_item(TableName="market_orders", Item=serialize_item({**item, "region_id": "2"}))
        single = time.perf_counter() - started
    return batched, single


MEMORY_PROBE = """
import gc, sys, tracemalloc
from devtools.fake_esi import FakeEsi
from pipelines.market.domain import aggregate, merge_all
esi = FakeEsi(seed=5, pages=1000)
gc.collect()
tracemalloc.start()
if {streaming!r}:
    partials = []
    for page in range(1, 1001):      # 1000 pages x 1000 orders = 1M orders, one page at a time
        partials.append(aggregate(esi.orders(10000002, page, 0)))
        if len(partials) >= 16:
            partials = [merge_all(partials)]
    totals = merge_all(partials)
else:                                # the baseline: every order held at once, then aggregated
    orders = [order for page in range(1, 1001) for order in esi.orders(10000002, page, 0)]
    totals = aggregate(orders)
current, peak = tracemalloc.get_traced_memory()
print(len(totals), peak)
"""


def peak_memory_mb(streaming: bool) -> tuple[int, float]:
    code = MEMORY_PROBE.format(streaming=streaming)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.split()
    return int(out[0]), int(out[1]) / 1e6


def main() -> None:
    with FakeEsi(pages=200, latency=0.1) as esi:
        for page in range(1, 201):  # warm the server's page cache: measure the client, not the fake
            esi._page_body(10000002, page, 0, "all")
        concurrent = download_seconds(esi.url, 16)
        sequential = download_seconds(esi.url, 1)
    print(f"200 pages @100 ms: concurrency 16 {concurrent:.1f}s, sequential {sequential:.1f}s")
    print(
        f"RESULT market_download_concurrent_vs_sequential {sequential / concurrent:.1f} >=10 sequential time over concurrent time"
    )
    batched, single = dynamodb_ratio()
    print(f"50,000 items: batched {batched:.1f}s, PutItem loop {single:.1f}s")
    print(
        f"RESULT market_dynamodb_batched_vs_putitem {single / batched:.1f} >=10 PutItem-loop time over batched time"
    )
    types, peak_mb = peak_memory_mb(streaming=True)
    _, all_at_once_mb = peak_memory_mb(streaming=False)
    print(f"1M orders aggregated ({types} types): peak traced memory {peak_mb:.1f} MB streamed page by page, "
          f"{all_at_once_mb:.1f} MB with every order held at once")  # fmt: skip
    print(
        f"RESULT market_memory_1m_orders_mb {peak_mb:.1f} <=150 peak MB (not a ratio) allocated while aggregating 1M streamed orders"
    )
    print(
        f"RESULT market_memory_all_at_once_over_streamed {all_at_once_mb / peak_mb:.0f} - peak memory holding every order over streaming"
    )

if __name__ == "__main__":
    main()
