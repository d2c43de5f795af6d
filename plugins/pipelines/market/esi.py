"""Downloading a region's market orders from ESI: bounded concurrency, retries, one snapshot.

* The first page gives ``X-Pages`` and ``Last-Modified`` (the snapshot); the other pages
  are fetched concurrently (at most ``concurrency`` in flight).
* Timeouts, transport errors, truncated bodies, 5xx, 420 and 429 are retried with
  exponential backoff and jitter, honouring ``Retry-After``.
* ``X-ESI-Error-Limit-Remain``/``-Reset`` are tracked: when few errors are left, requests
  wait for the window to reset instead of burning the budget (ESI bans clients that do).
* Every page must carry the first page's ``Last-Modified``; when ESI replaces the
  snapshot mid-download the download restarts (bounded), else fails clearly.
* Each page goes to the sink as it arrives (the DAG writes it to S3): pages are never
  all held in memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

log = logging.getLogger(__name__)

RETRY_STATUSES = {420, 429, 500, 502, 503, 504}
ERROR_LIMIT_MARGIN = 5
MAX_SNAPSHOT_RESTARTS = 3


class EsiError(RuntimeError):
    pass


class UnknownRegionError(EsiError):
    pass


class SnapshotChangedError(EsiError):
    pass


class RetryableResponse(EsiError):
    def __init__(self, response: httpx.Response):
        super().__init__(f"HTTP {response.status_code} from {response.request.url}")
        self.response = response


@dataclass
class Snapshot:
    region_id: int
    pages: int
    last_modified: str


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
    return wait_exponential_jitter(initial=0.2, max=10)(retry_state)


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

    async def download(self, region_id: int, sink: Callable[[int, bytes, str], Awaitable[None]]) -> Snapshot:
        """Every page of one snapshot through ``sink(page, body, last_modified)``."""
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as client:
            for attempt in range(1, MAX_SNAPSHOT_RESTARTS + 1):
                try:
                    return await self._download_once(client, region_id, sink)
                except SnapshotChangedError as changed:
                    log.warning("attempt %s: %s; restarting the download", attempt, changed)
            raise SnapshotChangedError(
                f"region {region_id}: the market snapshot changed during each of {MAX_SNAPSHOT_RESTARTS} downloads"
            )

    async def _download_once(self, client, region_id: int, sink) -> Snapshot:
        first = await self.get_page(client, region_id, 1)
        pages = int(first.headers.get("X-Pages", "1"))
        snapshot = first.headers.get("Last-Modified", "")
        await sink(1, first.content, snapshot)
        semaphore = asyncio.Semaphore(self.concurrency)

        async def fetch(page: int) -> None:
            async with semaphore:
                response = await self.get_page(client, region_id, page)
            modified = response.headers.get("Last-Modified", "")
            if modified != snapshot:
                raise SnapshotChangedError(
                    f"page {page} is from snapshot {modified!r}, page 1 from {snapshot!r}"
                )
            await sink(page, response.content, snapshot)

        tasks = [asyncio.create_task(fetch(page)) for page in range(2, pages + 1)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return Snapshot(region_id, pages, snapshot)


def base_url_from_connection(conn: Any) -> str:
    host = (conn.host or "").rstrip("/")
    if "://" not in host:
        host = f"{conn.schema or 'https'}://{host}"
    if conn.port:
        host = f"{host}:{conn.port}"
    return host
