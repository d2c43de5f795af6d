"""market_orders' type names (issue 22 item 6): ESI names each type once, the items keep it.

Expected names are the real ones, written here by hand (EVE's static data, as
sample_data/market/PROVENANCE.md says): 18 Plagioclase, 19 Spodumain, 20 Kernite,
34 Tritanium. Requests are counted on the fake ESI.
"""

from __future__ import annotations

import asyncio

import pytest

from devtools.fake_esi import FakeEsi
from pipelines.market.esi import EsiClient
from pipelines.market.names import stored_names, types_to_resolve, with_names
from tests.conftest import load_dag, run_dag
from tests.market.test_market_orders_dag import REGION, esi, items  # noqa: F401  (esi: fixture)

HAND_CHECKED = {18: "Plagioclase", 19: "Spodumain", 20: "Kernite", 34: "Tritanium"}

# ---------------------------------------------------------------- pure


def test_only_types_with_nothing_stored_about_their_name_are_to_resolve():
    stored = [
        {"type_id": "18", "type_name": "Plagioclase"},
        {"type_id": "23", "type_name_unknown": True},  # asked before: ESI had no name
        {"type_id": "34"},  # loaded before names existed, or while ESI was down
    ]
    known = stored_names(stored)
    assert known == {"18": "Plagioclase", "23": None}
    aggregated = [{"type_id": t} for t in ("18", "20", "23", "34", "19")]
    assert types_to_resolve(aggregated, known) == [19, 20, 34]


def test_items_carry_the_known_name_or_the_unknown_mark_and_nothing_stale():
    known = {"18": "Plagioclase", "23": None}
    aggregated = [
        {"region_id": "1", "type_id": "18", "sell_volume": 5, "type_name": "old name"},
        {"region_id": "1", "type_id": "23", "sell_volume": 1},
        {"region_id": "1", "type_id": "34", "sell_volume": 2},
    ]
    assert with_names(aggregated, known) == [
        {"region_id": "1", "type_id": "18", "sell_volume": 5, "type_name": "Plagioclase"},
        {"region_id": "1", "type_id": "23", "sell_volume": 1, "type_name_unknown": True},
        {"region_id": "1", "type_id": "34", "sell_volume": 2},
    ]


# ---------------------------------------------------------------- the ESI call, on the fake ESI


def test_names_come_from_esi_in_requests_of_at_most_1000_ids():
    with FakeEsi() as fake:
        wanted = [*HAND_CHECKED, *range(100, 2600)]  # 2504 ids, 2500 without a real name
        names, unknown = asyncio.run(EsiClient(fake.url).resolve_type_names(wanted))
    assert names == HAND_CHECKED
    assert unknown == set(range(100, 2600))
    assert sorted(len(r) for r in fake.names_requests) == [504, 1000, 1000]
    assert sorted(i for r in fake.names_requests for i in r) == sorted(wanted)


def test_a_batch_esi_refuses_for_an_invalid_id_is_split_until_that_id_is_isolated():
    with FakeEsi(strict_names=True) as fake:  # ESI: 404 for the whole request when any id is invalid
        names, unknown = asyncio.run(EsiClient(fake.url).resolve_type_names([18, 19, 20, 23, 34]))
    assert names == HAND_CHECKED
    assert unknown == {23}
    # the whole batch, refused; then its five ids one by one (16 parts at most)
    assert fake.names_requests[0] == [18, 19, 20, 23, 34]
    assert sorted(map(tuple, fake.names_requests[1:])) == [(18,), (19,), (20,), (23,), (34,)]


def test_the_fake_esi_refuses_what_esi_refuses():
    import httpx

    with FakeEsi() as fake:
        too_many = httpx.post(f"{fake.url}/latest/universe/names/", json=list(range(1, 1002)))
        not_ids = httpx.post(f"{fake.url}/latest/universe/names/", json=["18"])
        empty = httpx.post(f"{fake.url}/latest/universe/names/", json=[])
        named = httpx.post(f"{fake.url}/latest/universe/names/", json=[20, 20])
    assert (too_many.status_code, not_ids.status_code, empty.status_code) == (400, 400, 400)
    assert named.json() == [{"category": "inventory_type", "id": 20, "name": "Kernite"}]


# ---------------------------------------------------------------- the DAG, twice


@pytest.mark.timeout(600)
def test_a_run_names_new_types_once_and_the_next_run_asks_only_for_types_new_to_the_region(
    airflow_db,
    aws,
    esi,  # noqa: F811
):
    fake = esi(pages=3)
    assert run_dag(load_dag("market_orders"), conf={"region_id": REGION, "concurrency": 8}).state == "success"
    first = items(aws)
    for type_id, name in HAND_CHECKED.items():
        assert first[str(type_id)]["type_name"] == name
    assert first["23"].get("type_name") is None and first["23"]["type_name_unknown"] is True
    asked_first = sorted(i for r in fake.names_requests for i in r)
    assert asked_first == sorted(int(t) for t in first)  # every type, each once
    assert len(fake.names_requests) == -(-len(first) // 1000)

    # two types leave the region's table (as if new to it again); every other type is named
    dynamodb = aws.client("dynamodb")
    for type_id in ("19", "23"):
        dynamodb.delete_item(
            TableName="market_orders", Key={"region_id": {"S": str(REGION)}, "type_id": {"S": type_id}}
        )
    fake.names_requests.clear()
    pages_before = fake.requests
    assert run_dag(load_dag("market_orders"), conf={"region_id": REGION, "concurrency": 8}).state == "success"
    assert fake.requests > pages_before  # the market was downloaded again
    assert fake.names_requests == [[19, 23]]  # the known types: no names call
    assert items(aws) == first  # the same names, the unknown mark kept

    fake.names_requests.clear()
    assert run_dag(load_dag("market_orders"), conf={"region_id": REGION, "concurrency": 8}).state == "success"
    assert fake.names_requests == []  # every type known: no names call at all
    assert items(aws) == first


def test_when_esi_does_not_answer_the_names_call_the_figures_load_without_names(airflow_db, aws, esi):  # noqa: F811
    fake = esi(pages=2)
    fake.names_status = 503  # the names endpoint is down: every names request (and its retries) a 503
    assert run_dag(load_dag("market_orders"), conf={"region_id": REGION, "concurrency": 8}).state == "success"
    loaded = items(aws)
    assert len(loaded) > 100
    assert not any("type_name" in i or "type_name_unknown" in i for i in loaded.values())
    assert len(fake.names_requests) >= 2  # asked, and retried, before giving up

    fake.names_status = None  # ESI is back: the next run names every type
    assert run_dag(load_dag("market_orders"), conf={"region_id": REGION, "concurrency": 8}).state == "success"
    assert items(aws)["18"]["type_name"] == "Plagioclase"
