"""market_orders' task bodies: download to S3, aggregate from S3, load DynamoDB."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from email.utils import parsedate_to_datetime
from typing import Any

from pipelines.aws.dynamodb import delete_keys, dynamodb_client, put_items, query_keys
from pipelines.aws.s3 import read_bytes, s3_hook, write_bytes
from pipelines.config import ESI_CONN_ID
from pipelines.market.domain import (
    PageValidationError,
    TypeAggregate,
    aggregate,
    merge_all,
    to_items,
    validate_order,
)
from pipelines.market.esi import EsiClient, base_url_from_connection

log = logging.getLogger(__name__)

TABLE = "market_orders"


def snapshot_prefix(bucket: str, region_id: int, last_modified: str) -> str:
    stamp = parsedate_to_datetime(last_modified).strftime("%Y%m%dT%H%M%SZ") if last_modified else "unknown"
    return f"s3://{bucket}/market/raw/region={region_id}/snapshot={stamp}/"


def download(region_id: int, concurrency: int, bucket: str) -> dict[str, Any]:
    """All pages of one snapshot, each to S3 as gzip JSON lines as it arrives."""
    from airflow.sdk.bases.hook import BaseHook

    client = EsiClient(
        base_url_from_connection(BaseHook.get_connection(ESI_CONN_ID)), concurrency=concurrency
    )
    s3 = s3_hook().get_conn()
    written: dict[str, int] = {"pages": 0}

    async def sink(page: int, body: bytes, last_modified: str) -> None:
        try:
            orders = json.loads(body)
        except json.JSONDecodeError as error:
            raise PageValidationError(f"page {page}: not JSON ({error.msg} at char {error.pos})") from error
        if not isinstance(orders, list):
            raise PageValidationError(f"page {page}: expected a JSON array of orders")
        lines = "".join(json.dumps(order, separators=(",", ":")) + "\n" for order in orders).encode()
        bucket_name, _, key = (
            snapshot_prefix(bucket, region_id, last_modified) + f"page={page:05d}.jsonl.gz"
        )[5:].partition("/")
        await asyncio.to_thread(s3.put_object, Bucket=bucket_name, Key=key, Body=gzip.compress(lines, 5))
        written["pages"] += 1

    snapshot = asyncio.run(client.download(region_id, sink))
    prefix = snapshot_prefix(bucket, region_id, snapshot.last_modified)
    log.info(
        "region %s: %s pages of snapshot %s in %s", region_id, snapshot.pages, snapshot.last_modified, prefix
    )
    return {
        "region_id": region_id,
        "pages": snapshot.pages,
        "last_modified": snapshot.last_modified,
        "prefix": prefix,
    }


def _page_keys(prefix: str, pages: int) -> list[str]:
    return [f"{prefix}page={page:05d}.jsonl.gz" for page in range(1, pages + 1)]


def aggregate_pages(downloaded: dict[str, Any]) -> dict[str, Any]:
    """Validate every order and aggregate, streaming page by page from S3; stage the items."""
    partials: list[dict[int, TypeAggregate]] = []
    orders_seen = 0
    for page, uri in enumerate(_page_keys(downloaded["prefix"], downloaded["pages"]), start=1):
        lines = gzip.decompress(read_bytes(uri)).splitlines()
        orders = []
        for index, line in enumerate(lines):
            order = json.loads(line)
            validate_order(order, page, index)
            orders.append(order)
        partials.append(aggregate(orders))
        orders_seen += len(orders)
        if len(partials) >= 16:  # keep memory bounded by types, not pages
            partials = [merge_all(partials)]
    totals = merge_all(partials)
    items = to_items(downloaded["region_id"], totals, downloaded["last_modified"])
    items_uri = downloaded["prefix"] + "aggregates.json"
    write_bytes(items_uri, json.dumps(items, default=str).encode(), "application/json")
    log.info("%s orders -> %s types", orders_seen, len(items))
    return {
        "items_uri": items_uri,
        "types": len(items),
        "orders": orders_seen,
        "region_id": downloaded["region_id"],
    }


def load(aggregated: dict[str, Any]) -> dict[str, int]:
    """Write every type of the region, then delete the types no longer on its market."""
    from decimal import Decimal

    items = json.loads(read_bytes(aggregated["items_uri"]), parse_float=Decimal)
    for item in items:
        for name in ("min_sell_price", "max_buy_price", "sell_avg_price", "buy_avg_price"):
            if name in item:
                item[name] = Decimal(str(item[name]))
    client = dynamodb_client()
    region = str(aggregated["region_id"])
    written = put_items(client, TABLE, items)
    current = {item["type_id"] for item in items}
    stale = [
        k for k in query_keys(client, TABLE, "region_id", region, "type_id") if k["type_id"] not in current
    ]
    deleted = delete_keys(client, TABLE, stale)
    log.info("region %s: wrote %s types, deleted %s stale", region, written, deleted)
    return {"written": written, "deleted": deleted}
