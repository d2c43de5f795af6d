"""market_orders' type names: ESI's name for each type, asked once per type new to a region.

Where the names live, and why there: on the region's own ``market_orders`` items, as
``type_name`` (or ``type_name_unknown`` when ESI has no name for the id). The results API
already reads those items, so it serves the name with no further read and no ESI call per
page view; the pipeline's role already queries its region's items, so no table or grant
is added. A run looks up which of its aggregated types have no stored name, asks ESI for
those only (``POST /universe/names/``, up to 1000 ids a request), and stages the items
with every name before ``load`` writes them: a known type is never asked again, and an id
ESI could not name is not asked again either. The price: the name is stored per region,
so a type new to a region is asked once for that region even when another region knows it.

Names are a convenience: when ESI does not answer the names call (after its retries) the
run loads the figures without the new names, says so in the log, and the next run asks again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from pipelines.tables import MARKET_TABLE

log = logging.getLogger(__name__)

NAME_ATTRIBUTE = "type_name"
UNKNOWN_ATTRIBUTE = "type_name_unknown"  # ESI has no name for this id: not asked again


def stored_names(stored: Iterable[Mapping[str, Any]]) -> dict[str, str | None]:
    """type_id -> the name stored for it, or None when ESI was asked and had none.

    Types with neither attribute (loaded before names existed, or when ESI was down) are
    left out: they are still to be resolved.
    """
    known: dict[str, str | None] = {}
    for item in stored:
        if item.get(NAME_ATTRIBUTE):
            known[str(item["type_id"])] = str(item[NAME_ATTRIBUTE])
        elif item.get(UNKNOWN_ATTRIBUTE):
            known[str(item["type_id"])] = None
    return known


def types_to_resolve(items: Iterable[Mapping[str, Any]], known: Mapping[str, str | None]) -> list[int]:
    """The type ids of ``items`` with nothing stored about their name, in id order."""
    return sorted({int(item["type_id"]) for item in items if str(item["type_id"]) not in known})


def with_names(items: Iterable[Mapping[str, Any]], known: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """The items with ``type_name`` (or ``type_name_unknown``) where known; the others as they are."""
    named = []
    for item in items:
        copy = {k: v for k, v in item.items() if k not in (NAME_ATTRIBUTE, UNKNOWN_ATTRIBUTE)}
        type_id = str(item["type_id"])
        if type_id in known:
            name = known[type_id]
            if name is None:
                copy[UNKNOWN_ATTRIBUTE] = True
            else:
                copy[NAME_ATTRIBUTE] = name
        named.append(copy)
    return named


# ---------------------------------------------------------------- the task's I/O


def _stored_names_of_region(region_id: int) -> dict[str, str | None]:
    """What the region's stored items say about names: one paginated Query, names only."""
    from pipelines.aws.dynamodb import dynamodb_client, paginated_items

    items = paginated_items(
        dynamodb_client(),
        "query",
        TableName=MARKET_TABLE,
        KeyConditionExpression="#pk = :region",
        ExpressionAttributeNames={"#pk": "region_id", "#sk": "type_id", "#name": NAME_ATTRIBUTE,
                                  "#unknown": UNKNOWN_ATTRIBUTE},
        ExpressionAttributeValues={":region": {"S": str(region_id)}},
        ProjectionExpression="#sk, #name, #unknown",
    )  # fmt: skip
    return stored_names(items)


def name_types(aggregated: dict[str, Any], concurrency: int = 16) -> dict[str, Any]:
    """Stage the aggregated items with every type's name; ask ESI only for types new here."""
    from pipelines.aws.s3 import read_bytes, write_bytes
    from pipelines.market.esi import EsiError
    from pipelines.market.steps import _esi_client

    items = json.loads(read_bytes(aggregated["items_uri"]))
    known = _stored_names_of_region(aggregated["region_id"])
    missing = types_to_resolve(items, known)
    resolved: dict[int, str] = {}
    unknown: set[int] = set()
    if missing:
        try:
            resolved, unknown = asyncio.run(_esi_client(concurrency).resolve_type_names(missing))
        except (EsiError, httpx.HTTPError) as error:
            log.warning(
                "region %s: ESI did not name %s new type(s) (%s); loading them without names, "
                "the next run asks again", aggregated["region_id"], len(missing), error,
            )  # fmt: skip
        known = {**known, **{str(k): v for k, v in resolved.items()}, **dict.fromkeys(map(str, unknown))}
    named_uri = aggregated["items_uri"].rsplit("/", 1)[0] + "/aggregates-named.json"
    write_bytes(named_uri, json.dumps(with_names(items, known)).encode(), "application/json")
    log.info("region %s: %s type(s) without a stored name, %s named by ESI, %s ESI cannot name",
             aggregated["region_id"], len(missing), len(resolved), len(unknown))  # fmt: skip
    return {
        **aggregated,
        "items_uri": named_uri,
        "names_asked": len(missing),
        "names_resolved": len(resolved),
    }
