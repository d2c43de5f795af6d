"""market_orders end to end on the offline stack and the fake ESI, with faults."""

from __future__ import annotations

import json
import os

import pytest

from devtools.fake_esi import FakeEsi
from pipelines.aws.dynamodb import deserialize_item
from tests.clearing import clear_and_resume
from tests.conftest import load_dag, run_dag, task_instances

REGION = 10000002


@pytest.fixture
def esi(monkeypatch):
    servers = []

    def start(**options):
        server = FakeEsi(**{"pages": 6, "seed": 3, **options}).start()
        servers.append(server)
        monkeypatch.setenv("AIRFLOW_CONN_ESI_DEFAULT", json.dumps({"conn_type": "http", "host": server.url}))
        return server

    yield start
    for server in servers:
        server.stop()


def items(aws, region=REGION) -> dict[str, dict]:
    found = {}
    for page in aws.client("dynamodb").get_paginator("query").paginate(
        TableName="market_orders", KeyConditionExpression="region_id = :r",
        ExpressionAttributeValues={":r": {"S": str(region)}},
    ):  # fmt: skip
        for item in page["Items"]:
            found[item["type_id"]["S"]] = deserialize_item(item)
    return found


def run(conf=None):
    return run_dag(load_dag("market_orders"), conf={"region_id": REGION, "concurrency": 8, **(conf or {})})


def test_a_run_with_http_and_dynamodb_faults_gives_exactly_the_fault_free_result(airflow_db, aws, esi):
    clean = esi()
    assert run().state == "success"
    expected = items(aws)
    assert len(expected) > 500
    sample = next(iter(expected.values()))
    raw = aws.client("dynamodb").get_item(
        TableName="market_orders", Key={"region_id": {"S": str(REGION)}, "type_id": {"S": sample["type_id"]}}
    )["Item"]
    assert set(raw["sell_volume"]) == {"N"} and set(raw.get("min_sell_price", {"N": 0})) == {"N"}
    pages = aws.client("s3").list_objects_v2(
        Bucket="pipelines-data-lake", Prefix=f"market/raw/region={REGION}/"
    )
    assert sum(k["Key"].endswith(".jsonl.gz") for k in pages["Contents"]) == 6
    clean.stop()

    aws.reset()
    from infra.provision import provision

    provision(aws.endpoint_url)
    faulty = esi(fault_rate=0.3, timeout_seconds=1.0)
    aws.set_faults(dynamodb_unprocessed_rate=0.3, dynamodb_throttle_rate=0.1, seed=2)
    try:
        result = run_dag(load_dag("market_orders"), conf={"region_id": REGION, "concurrency": 4})
    finally:
        aws.set_faults(dynamodb_unprocessed_rate=0, dynamodb_throttle_rate=0)
    assert result.state == "success"
    assert faulty.faults_served > 0
    assert items(aws) == expected


def test_a_snapshot_rollover_mid_download_restarts_on_one_snapshot(airflow_db, aws, esi):
    server = esi(rollover_after=3)
    assert run().state == "success"
    got = items(aws)
    assert {item["last_modified"] for item in got.values()} == {"Wed, 01 May 2024 12:05:00 GMT"}
    reference = FakeEsi(pages=6, seed=3)
    reference.snapshot = 1
    from pipelines.market.domain import aggregate, to_items

    orders = [o for page in range(1, 7) for o in reference.orders(REGION, page, 1)]
    assert len(got) == len(to_items(REGION, aggregate(orders), ""))
    assert server.requests > 6


def test_a_large_region_is_shared_by_mapped_download_tasks_with_the_same_result(airflow_db, aws, esi):
    esi(pages=25)
    result = run({"pages_per_task": 10})
    assert result.state == "success"
    shares = sorted(ti.map_index for ti in task_instances(result) if ti.task_id == "download_pages")
    assert shares == [0, 1, 2]  # pages 2-11, 12-21, 22-25
    from pipelines.market.domain import aggregate, to_items

    reference = FakeEsi(pages=25, seed=3)
    orders = [o for page in range(1, 26) for o in reference.orders(REGION, page, 0)]
    expected = {i["type_id"]: i for i in to_items(REGION, aggregate(orders), "")}
    got = items(aws)
    assert got.keys() == expected.keys()
    for type_id, item in expected.items():
        for name in ("sell_volume", "buy_volume", "sell_orders", "buy_orders", "min_sell_price"):
            assert got[type_id].get(name) == item.get(name), (type_id, name)


def _reference_items(pages: int, snapshot: int) -> dict[str, dict]:
    from pipelines.market.domain import aggregate, to_items

    reference = FakeEsi(pages=pages, seed=3)
    orders = [o for page in range(1, pages + 1) for o in reference.orders(REGION, page, snapshot)]
    return {i["type_id"]: i for i in to_items(REGION, aggregate(orders), "")}


# A snapshot rollover in a split region (a share retried, re-pinning; combine completing one
# snapshot): tests/market/test_plan_download_defers.py, where those re-pins also wait deferred.


def _populated(aws, esi) -> dict[str, dict]:
    """The table after a clean run: what a hostile answer must leave untouched."""
    clean = esi()
    assert run().state == "success"
    clean.stop()
    before = items(aws)
    assert len(before) > 500
    return before


@pytest.mark.parametrize(
    ("hostile", "message"),
    [
        ({"pages": 1, "malformed_pages": {1: "[]"}}, f"region {REGION}: page 1 is an empty array"),
        ({"omit_headers": {"X-Pages"}}, f"region {REGION}: page 1 came without the X-Pages header"),
        (
            {"omit_headers": {"Last-Modified"}},
            f"region {REGION}: page 1 came without the Last-Modified header",
        ),
    ],
    ids=["empty-page-1", "no-x-pages", "no-last-modified"],
)
def test_an_empty_or_headerless_answer_fails_fast_and_deletes_nothing(
    airflow_db, aws, esi, capfd, hostile, message
):
    before = _populated(aws, esi)
    capfd.readouterr()
    esi(**hostile)
    result = run({"allow_large_removal": True})  # even overridden: this is a fault, not a smaller market
    assert result.state == "failed"
    assert message in "".join(capfd.readouterr())
    states = {ti.task_id: ti.state for ti in task_instances(result)}
    assert states["plan_download"] == "failed" and states["load"] != "success"
    assert items(aws) == before


def test_a_run_deleting_too_many_types_is_refused_unless_overridden(airflow_db, aws, esi, capfd):
    before = _populated(aws, esi)
    capfd.readouterr()
    esi(pages=1)  # a truncated market: one page where there were six
    expected = _reference_items(1, snapshot=0)
    assert len(before) - len(expected) > 0.1 * len(before)
    assert run().state == "failed"
    output = "".join(capfd.readouterr())
    gone = len(before.keys() - expected.keys())
    assert (
        f"market_orders region {REGION}: this run would remove or lower {gone:,} of the {len(before):,} "
        f"stored types ({gone / len(before):.1%}: {gone:,} deleted; e.g. type " in output
    )
    assert f"the limit is {len(before) // 10:,} types (max_removal_share 10.0% of {len(before):,}" in output
    assert '{"allow_large_removal": true}' in output
    assert items(aws) == before  # nothing written, nothing deleted

    assert run({"max_removal_share": 0.9}).state == "success"  # the share is a parameter
    assert items(aws).keys() == expected.keys()


def test_the_override_param_lets_a_large_deletion_through(airflow_db, aws, esi, capfd):
    _populated(aws, esi)
    esi(pages=1)
    capfd.readouterr()
    result = run({"allow_large_removal": True})
    assert result.state == "success"
    assert items(aws).keys() == _reference_items(1, snapshot=0).keys()
    assert "allow_large_removal=true let this run through: market_orders region" in "".join(
        capfd.readouterr()
    )
    [load] = [ti for ti in task_instances(result) if ti.task_id == "load"]
    assert "allow_large_removal=true let this run through" in _xcom(load)["override"]


def _xcom(ti) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(
            run_id=ti.run_id, dag_ids=ti.dag_id, task_ids=ti.task_id, key="return_value"
        )
        return XComModel.deserialize_value(session.scalars(query).first())


def test_one_stale_type_in_a_region_is_deleted_while_a_fresh_snapshot_arrives(airflow_db, aws, esi):
    """The issue's probe: the region holds 1 type, gone from its market; the snapshot brings
    hundreds. 1 of 1 stored is 100%, but within the guard's floor of 10 types."""
    esi()
    aws.client("dynamodb").put_item(
        TableName="market_orders", Item={"region_id": {"S": str(REGION)}, "type_id": {"S": "999999"}}
    )
    assert run().state == "success"
    got = items(aws)
    assert "999999" not in got and got.keys() == _reference_items(6, snapshot=0).keys()


def test_clearing_the_failed_load_of_an_older_run_refuses_its_older_snapshot(airflow_db, aws, esi, capfd):
    dag = load_dag("market_orders")
    conf = {"region_id": REGION, "concurrency": 8}
    server = esi()
    aws.set_faults(dynamodb_fail_after_writes=0, dynamodb_failure_code="AccessDeniedException")
    try:
        older = run_dag(dag, conf=conf)  # snapshot 0 aggregated, its load refused by DynamoDB
    finally:
        aws.set_faults(dynamodb_fail_after_writes=None)
    assert older.state == "failed" and items(aws) == {}
    server.snapshot = 1  # ESI moves on; the next run loads the newer snapshot
    newer = run_dag(dag, conf=conf)
    assert newer.state == "success"
    loaded = items(aws)
    assert {item["last_modified"] for item in loaded.values()} == {"Wed, 01 May 2024 12:05:00 GMT"}

    capfd.readouterr()
    resumed = clear_and_resume(dag, older, {"load"})
    assert resumed.state == "failed"
    assert items(aws) == loaded  # snapshot 0 was not written over snapshot 1
    output = "".join(capfd.readouterr())
    assert (
        f"refusing a stale plan: market_orders region {REGION} already holds data as of "
        f"2024-05-01T12:05:00+00:00, loaded by the newer run {newer.run_id!r}" in output
    )
    assert f"run {older.run_id!r} has data as of 2024-05-01T12:00:00+00:00" in output


def test_types_gone_from_the_market_are_deleted(airflow_db, aws, esi):
    esi()
    assert run().state == "success"  # a region's types stored; one more will vanish from its market
    aws.client("dynamodb").put_item(
        TableName="market_orders", Item={"region_id": {"S": str(REGION)}, "type_id": {"S": "999999"}}
    )
    aws.client("dynamodb").put_item(
        TableName="market_orders", Item={"region_id": {"S": "10000043"}, "type_id": {"S": "1"}}
    )
    assert run().state == "success"
    assert "999999" not in items(aws)
    assert items(aws, 10000043) != {}  # another region is untouched


def test_a_bad_page_fails_naming_page_and_field_and_writes_nothing(airflow_db, aws, esi, capfd):
    order = {"order_id": 1, "type_id": 34, "is_buy_order": False, "price": 5.0, "volume_remain": -1,
             "volume_total": 10, "location_id": 1}  # fmt: skip
    esi(malformed_pages={4: json.dumps([order])})
    assert run().state == "failed"
    assert "page 4, order 0 (order_id 1): negative 'volume_remain' -1" in "".join(capfd.readouterr())
    assert items(aws) == {}


def test_malformed_json_fails_clearly(airflow_db, aws, esi, capfd):
    esi(malformed_pages={2: '[{"order_id": 1,'})
    assert run().state == "failed"
    assert "page 2: not JSON" in "".join(capfd.readouterr())
    assert items(aws) == {}


def test_an_unknown_region_fails_with_a_clear_message(airflow_db, aws, esi, capfd):
    esi()
    assert run({"region_id": 10999999}).state == "failed"
    assert "ESI does not know region 10999999 (HTTP 404" in "".join(capfd.readouterr())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("region_id", 5),
        ("region_id", "abc"),
        ("concurrency", 0),
        ("concurrency", 65),
        ("max_removal_share", 1.5),
        ("max_removal_share", -0.1),
        ("allow_large_removal", "yes"),
        ("snapshot_margin_seconds", 600),
    ],  # fmt: skip
)
def test_invalid_params_are_refused_naming_the_param(name, value):
    from airflow.sdk.exceptions import ParamValidationError

    params = load_dag("market_orders").params
    with pytest.raises(ParamValidationError):
        params.get_param(name).resolve(value)
    assert os.environ  # the DAG was parsed without any AWS or network access
