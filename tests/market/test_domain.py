"""Aggregation and validation of ESI orders (pure)."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from devtools.fake_esi import FakeEsi
from pipelines.market.domain import (
    DeletionGuardError,
    PageValidationError,
    aggregate,
    merge_all,
    stale_types,
    to_items,
    validate_order,
)
from tests.conftest import REPO

REAL = json.loads(
    (REPO / "sample_data" / "market" / "esi_market_orders_sample_heimatar_type34_2019-08.json").read_text()
)


def test_real_orders_aggregate_buy_and_sell_apart():
    for index, order in enumerate(REAL):
        validate_order(order, 1, index)
    [item] = to_items(10000030, aggregate(REAL), "Mon, 12 Aug 2019 04:00:00 GMT")
    sells = [o for o in REAL if not o["is_buy_order"]]
    buys = [o for o in REAL if o["is_buy_order"]]
    assert (item["sell_orders"], item["buy_orders"]) == (5, 2)
    assert item["sell_volume"] == sum(o["volume_remain"] for o in sells)
    assert item["buy_volume"] == sum(o["volume_remain"] for o in buys)
    assert item["min_sell_price"] == Decimal(str(min(o["price"] for o in sells)))
    assert item["max_buy_price"] == Decimal(str(max(o["price"] for o in buys)))
    weighted = sum(o["price"] * o["volume_remain"] for o in sells) / item["sell_volume"]
    assert item["sell_avg_price"] == Decimal(str(round(weighted, 2)))
    assert (item["region_id"], item["type_id"]) == ("10000030", "34")


def _independent(orders):
    result = {}
    for order in orders:
        side = "buy" if order["is_buy_order"] else "sell"
        entry = result.setdefault(order["type_id"], {"buy": [], "sell": []})
        entry[side].append((order["price"], order["volume_remain"]))
    return result


def test_generated_orders_match_an_independent_computation_and_partials_combine():
    esi = FakeEsi(seed=4)
    pages = [esi.orders(10000002, page, 0) for page in range(1, 6)]
    everything = [o for page in pages for o in page]
    combined = merge_all(aggregate(page) for page in random.Random(1).sample(pages, len(pages)))
    # floating-point sums differ in the last bits with the order of pages; the items (cents) do not
    assert to_items(1, combined, "") == to_items(1, aggregate(everything), "")
    expected = _independent(everything)
    assert len(combined) > 500  # thousands of types, skewed popularity
    for type_id, agg in combined.items():
        buy, sell = expected[type_id]["buy"], expected[type_id]["sell"]
        assert agg.buy_volume == sum(v for _p, v in buy) and agg.sell_volume == sum(v for _p, v in sell)
        assert agg.buy_orders == len(buy) and agg.sell_orders == len(sell)
        assert agg.max_buy_price == (max(p for p, _v in buy) if buy else None)
        assert agg.min_sell_price == (min(p for p, _v in sell) if sell else None)


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (
            {**REAL[0], "volume_remain": -5},
            "page 3, order 7 (order_id 5482713865): negative 'volume_remain' -5",
        ),
        (
            {k: v for k, v in REAL[0].items() if k != "price"},
            "page 3, order 7 (order_id 5482713865): missing field 'price'",
        ),
        ({**REAL[0], "type_id": "34"}, "page 3, order 7: field 'type_id' has str value '34'"),
        ("oops", "page 3, order 7: not a JSON object"),
    ],
)
def test_bad_orders_name_page_and_field(order, message):
    with pytest.raises(PageValidationError) as error:
        validate_order(order, 3, 7)
    assert str(error.value) == message


def test_stale_types_are_those_gone_from_the_market():
    stored = [str(t) for t in range(100)]
    assert stale_types(1, stored, [str(t) for t in range(5, 100)], max_share=0.1) == ["0", "1", "2", "3", "4"]
    assert stale_types(1, [], ["1"], max_share=0.0) == []  # a first run deletes nothing


def test_deleting_more_than_the_allowed_share_is_refused_unless_overridden():
    stored = [str(t) for t in range(100)]
    current = [str(t) for t in range(11, 100)]  # 11 of 100 gone: over 10%
    with pytest.raises(DeletionGuardError) as refused:
        stale_types(10000002, stored, current, max_share=0.1)
    assert str(refused.value).startswith(
        "region 10000002: this run would delete 11 of the 100 stored types (11.0%), more than the 10%"
    )
    assert len(stale_types(10000002, stored, current, max_share=0.1, allow_large_delete=True)) == 11
    assert len(stale_types(10000002, stored, current, max_share=0.11)) == 11
    with pytest.raises(DeletionGuardError):
        stale_types(10000002, stored, [], max_share=0.1)  # an empty market would wipe the region
