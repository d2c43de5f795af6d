"""Pinning ESI's snapshot against the fake ESI (no Airflow): Expires and hostile page 1."""

from __future__ import annotations

import asyncio
import time

import pytest

from devtools.fake_esi import FakeEsi
from pipelines.market.esi import EsiClient, SuspectAnswerError

REGION = 10000002


async def _discard(page: int, body: bytes, last_modified: str) -> None:
    return None


def _pin(esi: FakeEsi, margin: float):
    return asyncio.run(EsiClient(esi.url, concurrency=2).pin(REGION, _discard, margin))


def test_a_snapshot_about_to_be_replaced_is_waited_out():
    with FakeEsi(pages=2, snapshot_seconds=6) as esi:
        # start pinning when the snapshot has 1-1.5 s left: less than the 2 s margin
        while not 1.0 <= esi.current_snapshot()[1] - time.time() <= 1.5:
            time.sleep(0.05)
        doomed, _ = esi.current_snapshot()
        started = time.monotonic()
        snapshot = _pin(esi, margin=2)
        waited = time.monotonic() - started
    assert snapshot.last_modified == esi.last_modified(doomed + 1).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 1.0 <= waited < 4.0
    assert snapshot.seconds_left() > 0


def test_a_snapshot_with_time_left_is_pinned_at_once():
    with FakeEsi(pages=2) as esi:  # 300 s snapshots
        started = time.monotonic()
        snapshot = _pin(esi, margin=60)
    assert time.monotonic() - started < 2
    assert (snapshot.pages, snapshot.last_modified) == (2, "Wed, 01 May 2024 12:00:00 GMT")
    assert 200 < snapshot.seconds_left() <= 301


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pages": 1, "malformed_pages": {1: "[]"}}, "page 1 is an empty array"),
        ({"omit_headers": {"X-Pages"}}, "page 1 came without the X-Pages header"),
        ({"omit_headers": {"Last-Modified"}}, "page 1 came without the Last-Modified header"),
    ],
)
def test_a_hostile_page_1_is_refused(options, message):
    with FakeEsi(**options) as esi, pytest.raises(SuspectAnswerError, match=message):
        _pin(esi, margin=0)
