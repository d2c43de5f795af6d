"""Aggregation and validation of ESI orders (pure)."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from devtools.fake_esi import FakeEsi
from pipelines.guard import LargeRemovalRefused, RemovalLimit, enforce_removal_limit, removal_problem
from pipelines.market.domain import (
    REMOVAL_FLOOR,
    PageValidationError,
    aggregate,
    merge_all,
    removal,
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
    assert stale_types(stored, [str(t) for t in range(5, 100)]) == ["0", "1", "2", "3", "4"]
    assert stale_types([], ["1"]) == []  # a first run deletes nothing
    assert stale_types(["10", "9", "100"], []) == ["9", "10", "100"]  # numeric order


def _problem(region: int, stored: list[str], current: list[str], max_share: float = 0.1) -> str | None:
    stale = stale_types(stored, current)
    return removal_problem(removal(region, len(stored), stale), RemovalLimit(max_share, REMOVAL_FLOOR))


def test_deleting_more_than_the_allowed_share_is_refused_unless_overridden():
    stored = [str(t) for t in range(200)]
    current = [str(t) for t in range(21, 200)]  # 21 of 200 gone: limit max(10, floor(0.1 x 200) = 20) = 20
    problem = _problem(10000002, stored, current)
    assert problem == (
        "market_orders region 10000002: this run would remove or lower 21 of the 200 stored types "
        "(10.5%: 21 deleted; e.g. type 0, type 1, type 2, type 3, type 4 and 16 more); the limit is 20 "
        "types (max_removal_share 10.0% of 200, and at least 10)"
    )
    with pytest.raises(LargeRemovalRefused, match='"allow_large_removal": true'):
        enforce_removal_limit([problem], allow_large_removal=False)
    assert enforce_removal_limit([problem], allow_large_removal=True) == [problem]
    assert _problem(10000002, stored, [str(t) for t in range(20, 200)]) is None  # 20: at the limit
    assert _problem(10000002, stored, current, max_share=0.11) is None  # limit floor(22.0) = 22
    assert "200 of the 200" in _problem(10000002, stored, [])  # an empty market would wipe the region


def test_a_small_region_may_lose_up_to_the_floor_of_types():
    """The issue's probe: one stale type stored, a fresh snapshot of 1,431 types arriving."""
    fresh = [str(t) for t in range(1, 1432)]
    assert stale_types(["999999"], fresh) == ["999999"]
    assert _problem(10000043, ["999999"], fresh) is None  # 1 of 1 = 100%, but within the floor of 10
    handful = [str(t) for t in range(12)]
    assert _problem(10000043, handful, handful[10:]) is None  # 10 of 12 gone: the floor
    assert "11 of the 12 stored types" in _problem(10000043, handful, handful[11:])
