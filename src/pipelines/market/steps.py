"""market_orders' task bodies: download to S3, aggregate from S3, load DynamoDB."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from pipelines.aws.dynamodb import delete_keys, dynamodb_client, put_items, query_keys
from pipelines.aws.s3 import read_bytes, read_bytes_if_exists, s3_hook, split_uri, write_bytes
from pipelines.config import ESI_CONN_ID
from pipelines.guard import (
    LoadMark,
    RemovalLimit,
    enforce_removal_limit,
    override_note,
    refuse_older_data,
    removal_problem,
)
from pipelines.market.domain import (
    DEFAULT_MAX_REMOVAL_SHARE,
    REMOVAL_FLOOR,
    PageValidationError,
    TypeAggregate,
    aggregate,
    merge_all,
    removal,
    stale_types,
    to_items,
    validate_order,
)
from pipelines.market.esi import (
    EsiClient,
    Snapshot,
    SnapshotChangedError,
    base_url_from_connection,
    snapshot_time,
)
from pipelines.tables import MARKET_TABLE as TABLE

log = logging.getLogger(__name__)




def snapshot_prefix(bucket: str, region_id: int, last_modified: str) -> str:
    stamp = parsedate_to_datetime(last_modified).strftime("%Y%m%dT%H%M%SZ") if last_modified else "unknown"
    return f"s3://{bucket}/market/raw/region={region_id}/snapshot={stamp}/"


def _esi_client(concurrency: int) -> EsiClient:
    from airflow.sdk.bases.hook import BaseHook

    return EsiClient(base_url_from_connection(BaseHook.get_connection(ESI_CONN_ID)), concurrency=concurrency)


def _s3_sink(bucket: str, region_id: int):
    """Each page to S3 as gzip JSON lines, under its snapshot's prefix, as it arrives."""
    s3 = s3_hook().get_conn()

    async def sink(page: int, body: bytes, last_modified: str) -> None:
        try:
            orders = json.loads(body)
        except json.JSONDecodeError as error:
            raise PageValidationError(f"page {page}: not JSON ({error.msg} at char {error.pos})") from error
        if not isinstance(orders, list):
            raise PageValidationError(f"page {page}: expected a JSON array of orders")
        lines = "".join(json.dumps(order, separators=(",", ":")) + "\n" for order in orders).encode()
        bucket_name, key = split_uri(
            snapshot_prefix(bucket, region_id, last_modified) + f"page={page:05d}.jsonl.gz"
        )
        await asyncio.to_thread(s3.put_object, Bucket=bucket_name, Key=key, Body=gzip.compress(lines, 5))

    return sink


def _downloaded(snapshot: Snapshot, bucket: str) -> dict[str, Any]:
    return {
        "region_id": snapshot.region_id,
        "pages": snapshot.pages,
        "last_modified": snapshot.last_modified,
        "prefix": snapshot_prefix(bucket, snapshot.region_id, snapshot.last_modified),
    }


def _pin(client: EsiClient, region_id: int, bucket: str, margin: float) -> Snapshot:
    """Page 1 (to S3) pins the snapshot. Never sleeps: a snapshot replaced within ``margin``
    raises SnapshotExpiresSoon, on which the task defers (pipelines.market.operators), so no
    step holds a worker while waiting for ESI's next snapshot."""
    return asyncio.run(client.pin(region_id, _s3_sink(bucket, region_id), margin, wait=False))


def plan_download(
    region_id: int, concurrency: int, pages_per_task: int, bucket: str, margin: float = 0.0
) -> list[dict[str, Any]]:
    """Pin a snapshot (page 1 to S3); the other pages cut into shares of at most
    ``pages_per_task``, one per worker.

    There is always at least one share (possibly empty): a mapped task over an empty list
    would skip everything downstream. A snapshot replaced within ``margin`` raises
    SnapshotExpiresSoon (the task defers on it).
    """
    snapshot = _pin(_esi_client(concurrency), region_id, bucket, margin)
    starts = range(2, snapshot.pages + 1, pages_per_task) or range(2, 3)
    shares = [
        {
            **_downloaded(snapshot, bucket),
            "first": first,
            "last": min(first + pages_per_task - 1, snapshot.pages),
        }
        for first in starts
    ]
    log.info("region %s: %s pages of snapshot %s in %s share(s)", region_id, snapshot.pages,
             snapshot.last_modified, len(shares))  # fmt: skip
    for share in shares:
        share["shares"] = len(shares)
    return shares


class SnapshotRolledOverError(SnapshotChangedError):
    """A share of a split region met the next snapshot: retried, its retry re-pins."""


def download_share(
    share: dict[str, Any], concurrency: int, bucket: str, repin: bool = False, margin: float = 0.0
) -> dict[str, Any]:
    """One share of the pages, of the planned snapshot or, when ``repin`` (a retry after
    ESI replaced it), of the snapshot ESI serves now; ``combine`` completes that one. A
    re-pin on a snapshot replaced within ``margin`` raises SnapshotExpiresSoon before any
    page of the share is fetched (the task defers, then runs this again).

    The sole share of a region restarts the whole download itself when the snapshot
    changes; a share of a split region raises SnapshotRolledOverError, for Airflow to retry.
    """
    client, sink = _esi_client(concurrency), _s3_sink(bucket, share["region_id"])
    if repin:
        snapshot = _pin(client, share["region_id"], bucket, margin)
        log.info("retry: re-pinned region %s to snapshot %s", share["region_id"], snapshot.last_modified)
    else:
        snapshot = Snapshot(share["region_id"], share["pages"], share["last_modified"])
    pages = range(share["first"], min(share["last"], snapshot.pages) + 1)
    try:
        asyncio.run(client.download_pages(snapshot, pages, sink))
    except SnapshotChangedError as changed:
        if share["shares"] > 1:
            raise SnapshotRolledOverError(
                f"region {share['region_id']}, pages {share['first']}-{share['last']}: {changed}. "
                "ESI replaced the snapshot while the region was split across tasks; the retry "
                "downloads these pages of the new snapshot and the other shares' pages are "
                "completed by combine"
            ) from changed
        log.warning("%s; restarting the download", changed)
        snapshot = asyncio.run(client.download(share["region_id"], sink))
    log.info("region %s: pages %s-%s of snapshot %s", snapshot.region_id, share["first"], share["last"],
             snapshot.last_modified)  # fmt: skip
    return _downloaded(snapshot, bucket)


def _stored_pages(prefix: str) -> set[int]:
    bucket, key_prefix = split_uri(prefix)
    keys = s3_hook().list_keys(bucket_name=bucket, prefix=key_prefix) or []
    return {
        int(key.rsplit("page=", 1)[1][:5]) for key in keys if key.endswith(".jsonl.gz") and "page=" in key
    }


def _missing_pages(downloaded: dict[str, Any]) -> list[int]:
    return sorted(set(range(1, downloaded["pages"] + 1)) - _stored_pages(downloaded["prefix"]))


def combine_shares(
    shares: list[dict[str, Any]], concurrency: int = 16, bucket: str | None = None, margin: float = 0.0
) -> dict[str, Any]:
    """The download as a whole: every page, 1 to ``X-Pages``, of one snapshot.

    When every share holds the same snapshot and S3 holds its every page, that is it. When
    ESI replaced the snapshot during the download (some shares were retried on the new
    one), the newest snapshot is completed: its pages not yet in S3 are downloaded here,
    or, when ESI has moved on again, those of the snapshot it serves now. A change during
    that raises SnapshotChangedError, for Airflow to retry (each retry re-pins); a current
    snapshot replaced within ``margin`` raises SnapshotExpiresSoon before any page is
    fetched (the task defers, then runs this again).
    """
    newest = max(shares, key=lambda share: snapshot_time(share["last_modified"]))
    downloaded = {key: newest[key] for key in ("region_id", "pages", "last_modified", "prefix")}
    missing = _missing_pages(downloaded)
    if not missing:
        return downloaded
    if bucket is None:
        raise SnapshotChangedError(f"snapshot {downloaded['last_modified']} lacks pages {missing}")
    region_id = downloaded["region_id"]
    client, sink = _esi_client(concurrency), _s3_sink(bucket, region_id)
    current = _pin(client, region_id, bucket, margin)
    if current.last_modified != downloaded["last_modified"]:
        log.warning(
            "region %s: ESI now serves snapshot %s; completing that one", region_id, current.last_modified
        )
    downloaded = _downloaded(current, bucket)
    missing = _missing_pages(downloaded)
    log.info("region %s: downloading %s page(s) missing from snapshot %s", region_id, len(missing),
             current.last_modified)  # fmt: skip
    asyncio.run(client.download_pages(current, missing, sink))
    return downloaded


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
        "last_modified": downloaded["last_modified"],  # what the aggregate was computed from
    }


def load_mark_uri(bucket: str, region_id: int) -> str:
    """Where the region's last load is recorded: beside its snapshots, so it expires with them
    (an aggregate older than the last load's mark can only be one that still exists)."""
    return f"s3://{bucket}/market/raw/region={region_id}/last-load.json"


def load(
    aggregated: dict[str, Any],
    bucket: str,
    run_id: str,
    run_after: str,
    max_removal_share: float = DEFAULT_MAX_REMOVAL_SHARE,
    allow_large_removal: bool = False,
) -> dict[str, Any]:
    """Write every type of the region, then delete the types no longer on its market.

    Before anything is written: an aggregate of a snapshot older than the one the region's
    last load brought is refused (a cleared ``load`` of an older run), and the deletions
    are planned and held to the shared removal guard. A refused run leaves the table as it was.
    """
    from decimal import Decimal

    region_id = int(aggregated["region_id"])
    mark_uri = load_mark_uri(bucket, region_id)
    snapshot = aggregated["last_modified"]
    refuse_older_data(
        f"market_orders region {region_id}", run_id, snapshot_time(snapshot),
        LoadMark.from_json(read_bytes_if_exists(mark_uri)),
    )  # fmt: skip
    items = json.loads(read_bytes(aggregated["items_uri"]), parse_float=Decimal)
    for item in items:
        for name in ("min_sell_price", "max_buy_price", "sell_avg_price", "buy_avg_price"):
            if name in item:
                item[name] = Decimal(str(item[name]))
    client = dynamodb_client()
    region = str(region_id)
    stored = [k["type_id"] for k in query_keys(client, TABLE, "region_id", region, "type_id")]
    stale = stale_types(stored, (item["type_id"] for item in items))
    limit = RemovalLimit(max_share=max_removal_share, floor=REMOVAL_FLOOR)
    let_through = enforce_removal_limit(
        [removal_problem(removal(region_id, len(stored), stale), limit)], allow_large_removal
    )
    if let_through:
        log.warning("%s", override_note(let_through))
    written = put_items(client, TABLE, items)
    deleted = delete_keys(client, TABLE, [{"region_id": region, "type_id": type_id} for type_id in stale])
    mark = LoadMark(
        run_id=run_id, run_after=run_after, loaded_at=datetime.now(UTC).isoformat(),
        data_as_of=snapshot_time(snapshot).isoformat(),
    )  # fmt: skip
    write_bytes(mark_uri, mark.to_json(), "application/json")
    log.info("region %s: wrote %s types, deleted %s stale; snapshot %s", region, written, deleted, snapshot)
    summary: dict[str, Any] = {"written": written, "deleted": deleted, "snapshot": snapshot}
    if let_through:
        summary["override"] = override_note(let_through)
    return summary
