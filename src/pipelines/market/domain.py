"""Validating ESI orders and aggregating them per type, buy and sell apart (pure, streaming).

Memory grows with the number of types, not of orders: ``TypeAggregate`` holds running
sums only, and two partial aggregates combine with ``merge`` (pages are processed in
any order, by any number of workers).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pipelines.errors import BadInput
from pipelines.guard import Removal

REQUIRED_FIELDS = {
    "order_id": int,
    "type_id": int,
    "is_buy_order": bool,
    "price": (int, float),
    "volume_remain": int,
    "volume_total": int,
    "location_id": int,
}


class PageValidationError(BadInput):
    """A page of orders is not what ESI documents; the message names the page and field."""


def validate_order(order: Any, page: int, index: int) -> None:
    where = f"page {page}, order {index}"
    if not isinstance(order, dict):
        raise PageValidationError(f"{where}: not a JSON object")
    for field, kinds in REQUIRED_FIELDS.items():
        if field not in order:
            raise PageValidationError(f"{where} (order_id {order.get('order_id')}): missing field {field!r}")
        value = order[field]
        if isinstance(value, bool) and kinds is not bool:
            raise PageValidationError(f"{where}: field {field!r} is a boolean, expected a number")
        if not isinstance(value, kinds):
            raise PageValidationError(f"{where}: field {field!r} has {type(value).__name__} value {value!r}")
    for field in ("price", "volume_remain", "volume_total"):
        if order[field] < 0:
            raise PageValidationError(
                f"{where} (order_id {order['order_id']}): negative {field!r} {order[field]!r}"
            )


@dataclass
class TypeAggregate:
    sell_volume: int = 0
    buy_volume: int = 0
    sell_orders: int = 0
    buy_orders: int = 0
    min_sell_price: float | None = None
    max_buy_price: float | None = None
    sell_value: float = 0.0  # sum(price * volume): the weighted average's numerator
    buy_value: float = 0.0

    def add(self, order: dict[str, Any]) -> None:
        price, volume = float(order["price"]), int(order["volume_remain"])
        if order["is_buy_order"]:
            self.buy_orders += 1
            self.buy_volume += volume
            self.buy_value += price * volume
            self.max_buy_price = price if self.max_buy_price is None else max(self.max_buy_price, price)
        else:
            self.sell_orders += 1
            self.sell_volume += volume
            self.sell_value += price * volume
            self.min_sell_price = price if self.min_sell_price is None else min(self.min_sell_price, price)

    def merge(self, other: TypeAggregate) -> TypeAggregate:
        return TypeAggregate(
            sell_volume=self.sell_volume + other.sell_volume,
            buy_volume=self.buy_volume + other.buy_volume,
            sell_orders=self.sell_orders + other.sell_orders,
            buy_orders=self.buy_orders + other.buy_orders,
            min_sell_price=_pick(min, self.min_sell_price, other.min_sell_price),
            max_buy_price=_pick(max, self.max_buy_price, other.max_buy_price),
            sell_value=self.sell_value + other.sell_value,
            buy_value=self.buy_value + other.buy_value,
        )


def _pick(choose, left, right):
    if left is None:
        return right
    if right is None:
        return left
    return choose(left, right)


def aggregate(orders: Iterable[dict[str, Any]]) -> dict[int, TypeAggregate]:
    """Per type_id, buy and sell apart. ``orders`` may be a generator over many pages."""
    result: dict[int, TypeAggregate] = {}
    for order in orders:
        result.setdefault(int(order["type_id"]), TypeAggregate()).add(order)
    return result


def merge_all(parts: Iterable[dict[int, TypeAggregate]]) -> dict[int, TypeAggregate]:
    total: dict[int, TypeAggregate] = {}
    for part in parts:
        for type_id, partial in part.items():
            total[type_id] = total[type_id].merge(partial) if type_id in total else partial
    return total


def _money(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(round(value, 2)))


def to_items(
    region_id: int, aggregates: dict[int, TypeAggregate], last_modified: str
) -> list[dict[str, Any]]:
    """DynamoDB items (pk region_id, sk type_id as strings; numbers as Decimals)."""
    items = []
    for type_id, agg in sorted(aggregates.items()):
        item: dict[str, Any] = {
            "region_id": str(region_id),
            "type_id": str(type_id),
            "sell_volume": agg.sell_volume,
            "buy_volume": agg.buy_volume,
            "sell_orders": agg.sell_orders,
            "buy_orders": agg.buy_orders,
            "last_modified": last_modified,
        }
        optional = {
            "min_sell_price": _money(agg.min_sell_price),
            "max_buy_price": _money(agg.max_buy_price),
            "sell_avg_price": _money(agg.sell_value / agg.sell_volume) if agg.sell_volume else None,
            "buy_avg_price": _money(agg.buy_value / agg.buy_volume) if agg.buy_volume else None,
        }
        item.update({k: v for k, v in optional.items() if v is not None})
        items.append(item)
    return items


DEFAULT_MAX_REMOVAL_SHARE = 0.1
# Types a run may delete from a region whatever the share: a region with a handful of types
# (or one stale type while a full snapshot arrives) is not blocked each time one vanishes.
REMOVAL_FLOOR = 10


def stale_types(stored: Iterable[str], current: Iterable[str]) -> list[str]:
    """The region's stored types no longer on its market (numeric order)."""
    return sorted(set(stored) - set(current), key=lambda type_id: (len(type_id), type_id))


def removal(region_id: int, stored: int, stale: list[str]) -> Removal:
    """What deleting ``stale`` removes from the region, for the shared guard (``pipelines.guard``).

    Only deletions count: every stored type of the region is rewritten each run (its volumes
    and prices move hourly); a type that vanishes is what a truncated answer looks like.
    """
    return Removal(
        subject=f"market_orders region {region_id}",
        unit="types",
        stored=stored,
        removed=len(stale),
        parts={"deleted": len(stale)},
        examples=[f"type {type_id}" for type_id in stale],
    )
