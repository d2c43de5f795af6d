"""Downloading a region's market orders from ESI: bounded concurrency, retries, one snapshot.

* The first page gives ``X-Pages`` and ``Last-Modified`` (the snapshot); the other pages
  are fetched concurrently (at most ``concurrency`` in flight).
* Timeouts, transport errors, truncated bodies, 5xx, 420 and 429 are retried with
  exponential backoff and jitter, honouring ``Retry-After``.
* ``X-ESI-Error-Limit-Remain``/``-Reset`` are tracked: when few errors are left, requests
  wait for the window to reset instead of burning the budget (ESI bans clients that do).
* Page 1 must be a non-empty array with ``X-Pages`` and ``Last-Modified``: an empty or
  header-less answer would look like a region whose market vanished (SuspectAnswerError).
* Pinning a snapshot (``pin``) waits for the next one when the current one expires
  (``Expires``) sooner than a margin: a download should not start on a snapshot ESI is
  about to replace.
* Every page must carry the pinned ``Last-Modified``; when ESI replaces the snapshot
  mid-download, SnapshotChangedError (a whole download restarts, bounded; a share of a
  split region is retried by Airflow on the new snapshot).
* Each page goes to the sink as it arrives (the DAG writes it to S3): pages are never
  all held in memory.
* Type names (``resolve_type_names``): ``POST /universe/names/`` with at most
  ``NAMES_PER_REQUEST`` ids, the same retries and error budget. ESI answers 404 for the
  whole request when any id is not valid, so a refused batch is split and its parts asked
  again until the ids it cannot name are isolated; those come back as unknown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from pipelines.errors import BadInput
from pipelines.redaction import redact_httpx_log, redact_url

log = logging.getLogger(__name__)
redact_httpx_log()  # httpx logs each request URL at INFO: no query string in the task log

RETRY_STATUSES = {420, 429, 500, 502, 503, 504}
ERROR_LIMIT_MARGIN = 5
MAX_SNAPSHOT_RESTARTS = 3
MAX_PIN_WAITS = 3
LONGEST_SNAPSHOT_WAIT = 330.0  # ESI replaces its market snapshot every 300 s
NAMES_PER_REQUEST = 1000  # ESI's limit for POST /universe/names/
# A refused batch is asked again in this many parts: few rounds when most ids are invalid,
# few requests when one is (ESI counts every 404 against the error budget).
NAMES_SPLIT = 16
TYPE_CATEGORY = "inventory_type"  # /universe/names/ also resolves characters, stations, ...


class EsiError(RuntimeError):
    pass


class UnknownRegionError(EsiError, BadInput):
    pass


class SnapshotChangedError(EsiError):
    pass


class SnapshotExpiresSoon(EsiError):
    """The pinned snapshot is replaced within the margin: wait (deferred) until ``next_at``, pin again."""

    def __init__(self, snapshot: Snapshot, seconds_left: float, margin: float) -> None:
        super().__init__(
            f"region {snapshot.region_id}: snapshot {snapshot.last_modified} is replaced in "
            f"{seconds_left:.0f}s (< {margin:.0f}s): waiting for the next one"
        )
        self.snapshot = snapshot
        self.next_at = datetime.now(UTC) + timedelta(seconds=min(seconds_left + 1.0, LONGEST_SNAPSHOT_WAIT))


class SuspectAnswerError(EsiError, BadInput):
    """ESI answered without what every real answer carries: taken as a fault, never as data."""


class RetryableResponse(EsiError):
    def __init__(self, response: httpx.Response):
        super().__init__(f"HTTP {response.status_code} from {redact_url(response.request.url)}")
        self.response = response


Sink = Callable[[int, bytes, str], Awaitable[None]]


@dataclass
class Snapshot:
    region_id: int
    pages: int
    last_modified: str
    expires: str = ""

    def seconds_left(self, now: datetime | None = None) -> float | None:
        """Until ESI replaces this snapshot (its ``Expires``); None when it did not say."""
        if not self.expires:
            return None
        try:
            expires = parsedate_to_datetime(self.expires)
        except (TypeError, ValueError):
            return None
        return (expires - (now or datetime.now(UTC))).total_seconds()


def snapshot_time(last_modified: str) -> datetime:
    return parsedate_to_datetime(last_modified)


class ErrorBudget:
    """ESI's error limit as last reported; callers wait when it runs low."""

    def __init__(self) -> None:
        self.remain: int | None = None
        self.reset_at = 0.0

    def update(self, response: httpx.Response) -> None:
        remain = response.headers.get("X-ESI-Error-Limit-Remain")
        reset = response.headers.get("X-ESI-Error-Limit-Reset")
        if remain is not None and reset is not None:
            self.remain, self.reset_at = int(remain), time.monotonic() + int(reset)

    async def wait_if_low(self) -> None:
        if self.remain is not None and self.remain <= ERROR_LIMIT_MARGIN:
            delay = self.reset_at - time.monotonic()
            if delay > 0:
                log.warning("ESI error budget low (%s left): waiting %.0fs for the reset", self.remain, delay)
                await asyncio.sleep(delay)
            self.remain = None


def _retryable(error: BaseException) -> bool:
    return isinstance(error, RetryableResponse | httpx.TimeoutException | httpx.TransportError)


def _wait(retry_state) -> float:
    error = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(error, RetryableResponse):
        retry_after = error.response.headers.get("Retry-After")
        if retry_after and retry_after.isdigit():
            return float(retry_after)
    return wait_exponential_jitter(multiplier=0.2, max=10)(retry_state)


class EsiClient:
    def __init__(
        self, base_url: str, concurrency: int = 16, timeout: float = 10.0, attempts: int = 6
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.concurrency = concurrency
        self.timeout = timeout
        self.attempts = attempts
        self.budget = ErrorBudget()

    async def get_page(self, client: httpx.AsyncClient, region_id: int, page: int) -> httpx.Response:
        url = f"{self.base_url}/latest/markets/{region_id}/orders/"
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_retryable),
            wait=_wait,
            stop=stop_after_attempt(self.attempts),
            reraise=True,
        ):
            with attempt:
                await self.budget.wait_if_low()
                response = await client.get(url, params={"order_type": "all", "page": page})
                self.budget.update(response)
                if response.status_code in RETRY_STATUSES:
                    raise RetryableResponse(response)
                if response.status_code in (400, 404) and page == 1:
                    detail = response.text[:200]
                    raise UnknownRegionError(
                        f"ESI does not know region {region_id} (HTTP {response.status_code}: {detail})"
                    )
                response.raise_for_status()
                _ = response.content  # a truncated body raises here, inside the retry
        return response

    async def _post_names(self, client: httpx.AsyncClient, ids: list[int]) -> list[dict] | None:
        """ESI's answer for one batch of ids; None when ESI refuses it (404: some id invalid)."""
        url = f"{self.base_url}/latest/universe/names/"
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_retryable),
            wait=_wait,
            stop=stop_after_attempt(self.attempts),
            reraise=True,
        ):
            with attempt:
                await self.budget.wait_if_low()
                response = await client.post(url, json=ids)
                self.budget.update(response)
                if response.status_code in RETRY_STATUSES:
                    raise RetryableResponse(response)
                if response.status_code == 404:
                    return None
                response.raise_for_status()
                answer = response.json()
        if not isinstance(answer, list):
            raise SuspectAnswerError(f"/universe/names/ answered {type(answer).__name__}, expected a list")
        return answer

    async def resolve_type_names(self, type_ids: Iterable[int]) -> tuple[dict[int, str], set[int]]:
        """The names ESI gives the type ids, and the ids it cannot name (invalid, or not a type).

        Batches of at most NAMES_PER_REQUEST, at most ``concurrency`` requests in flight.
        """
        wanted = sorted(set(type_ids))
        names: dict[int, str] = {}
        unknown: set[int] = set()
        semaphore = asyncio.Semaphore(self.concurrency)

        async def resolve(client: httpx.AsyncClient, batch: list[int]) -> None:
            async with semaphore:
                answer = await self._post_names(client, batch)
            if answer is None:
                if len(batch) == 1:
                    unknown.add(batch[0])
                    return
                size = -(-len(batch) // NAMES_SPLIT)  # ceil: at most NAMES_SPLIT parts
                await asyncio.gather(
                    *(resolve(client, batch[i : i + size]) for i in range(0, len(batch), size))
                )
                return
            asked = set(batch)
            for entry in answer:
                if (
                    isinstance(entry, dict)
                    and entry.get("id") in asked
                    and entry.get("category") == TYPE_CATEGORY
                ):
                    names[int(entry["id"])] = str(entry["name"])
            unknown.update(asked - names.keys())  # left out of the answer, or not a type

        async with self._http() as client:
            await asyncio.gather(
                *(
                    resolve(client, wanted[i : i + NAMES_PER_REQUEST])
                    for i in range(0, len(wanted), NAMES_PER_REQUEST)
                )
            )
        return names, unknown

    def _http(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        return httpx.AsyncClient(timeout=self.timeout, limits=limits)

    async def download(self, region_id: int, sink: Sink) -> Snapshot:
        """Every page of one snapshot through ``sink(page, body, last_modified)``."""
        async with self._http() as client:
            for attempt in range(1, MAX_SNAPSHOT_RESTARTS + 1):
                try:
                    snapshot = await self._first_page(client, region_id, sink)
                    await self._fetch_pages(client, region_id, range(2, snapshot.pages + 1), snapshot, sink)
                    return snapshot
                except SnapshotChangedError as changed:
                    log.warning("attempt %s: %s; restarting the download", attempt, changed)
            raise SnapshotChangedError(
                f"region {region_id}: the market snapshot changed during each of {MAX_SNAPSHOT_RESTARTS} downloads"
            )

    async def pin(self, region_id: int, sink: Sink, margin: float = 0.0, wait: bool = True) -> Snapshot:
        """Page 1 through the sink; its headers pin the snapshot and give the page count.

        When ESI replaces the snapshot in less than ``margin`` seconds (``Expires``), wait
        for the next one first: pages would otherwise change under the download. An
        ``Expires`` already past (a clock apart from ESI's) cannot be waited for: used as is.
        With ``wait=False`` nothing sleeps here: SnapshotExpiresSoon says until when to wait
        (every task that pins defers on it, freeing its worker slot: pipelines.market.operators).
        """
        async with self._http() as client:
            for _ in range(MAX_PIN_WAITS):
                snapshot = await self._first_page(client, region_id, sink)
                left = snapshot.seconds_left()
                if left is None or left <= 0 or left >= margin:
                    return snapshot
                if not wait:
                    raise SnapshotExpiresSoon(snapshot, left, margin)
                wait = min(left + 1.0, LONGEST_SNAPSHOT_WAIT)
                log.info("region %s: snapshot %s is replaced in %.0fs (< %ss): waiting for the next one",
                         region_id, snapshot.last_modified, left, margin)  # fmt: skip
                await asyncio.sleep(wait)
            return snapshot

    async def first_page(self, region_id: int, sink: Sink) -> Snapshot:
        return await self.pin(region_id, sink)

    async def download_pages(self, snapshot: Snapshot, pages: Iterable[int], sink: Sink) -> None:
        """The given pages of a pinned snapshot (one worker's share of a split region).

        A page from another snapshot raises SnapshotChangedError: the other shares hold the
        pinned one, so this share cannot restart on its own.
        """
        async with self._http() as client:
            await self._fetch_pages(client, snapshot.region_id, pages, snapshot, sink)

    async def download_range(self, snapshot: Snapshot, first: int, last: int, sink: Sink) -> None:
        await self.download_pages(snapshot, range(first, last + 1), sink)

    async def _first_page(self, client: httpx.AsyncClient, region_id: int, sink: Sink) -> Snapshot:
        first = await self.get_page(client, region_id, 1)
        snapshot = Snapshot(
            region_id,
            _page_count(first, region_id),
            _required_header(first, "Last-Modified", region_id),
            first.headers.get("Expires", ""),
        )
        _require_orders(first, region_id)
        await sink(1, first.content, snapshot.last_modified)
        return snapshot

    async def _fetch_pages(
        self,
        client: httpx.AsyncClient,
        region_id: int,
        pages: Iterable[int],
        snapshot: Snapshot,
        sink: Sink,
    ) -> None:
        semaphore = asyncio.Semaphore(self.concurrency)

        async def fetch(page: int) -> None:
            async with semaphore:
                response = await self.get_page(client, region_id, page)
            modified = response.headers.get("Last-Modified", "")
            if modified != snapshot.last_modified:
                raise SnapshotChangedError(
                    f"page {page} is from snapshot {modified!r}, page 1 from {snapshot.last_modified!r}"
                )
            await sink(page, response.content, snapshot.last_modified)

        tasks = [asyncio.create_task(fetch(page)) for page in pages]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise


def _required_header(response: httpx.Response, name: str, region_id: int) -> str:
    value = response.headers.get(name, "").strip()
    if not value:
        raise SuspectAnswerError(
            f"region {region_id}: page 1 came without the {name} header; refusing to plan from it "
            "(nothing was changed)"
        )
    return value


def _page_count(response: httpx.Response, region_id: int) -> int:
    raw = _required_header(response, "X-Pages", region_id)
    if not raw.isdigit() or int(raw) < 1:
        raise SuspectAnswerError(
            f"region {region_id}: page 1 has X-Pages {raw!r}, expected a positive integer"
        )
    return int(raw)


def _require_orders(response: httpx.Response, region_id: int) -> None:
    """Page 1 with no order at all: a fault on ESI's side far more often than a dead market.

    Loading it would delete every type of the region. A body that is not JSON is left to
    the page validation, which names the page.
    """
    try:
        orders = json.loads(response.content)
    except ValueError:
        return
    if orders == []:
        raise SuspectAnswerError(
            f"region {region_id}: page 1 is an empty array; refusing to take it as a region without "
            "orders (that would delete every type of the region; nothing was changed)"
        )


def base_url_from_connection(conn: Any) -> str:
    host = (conn.host or "").rstrip("/")
    if "://" not in host:
        host = f"{conn.schema or 'https'}://{host}"
    if conn.port:
        host = f"{host}:{conn.port}"
    return host
