"""covid_daily end to end on the offline stack (dag.test): loads, reruns, revisions, failures."""

from __future__ import annotations

import pytest

from tests.conftest import load_dag, run_dag
from tests.covid.test_domain import DATA, JHU, NYT, join, lines

BUCKET = "pipelines-data-lake"


@pytest.fixture
def sources(tmp_path):
    def write(cases: bytes = NYT, recoveries: bytes = JHU) -> dict:
        (tmp_path / "cases.csv").write_bytes(cases)
        (tmp_path / "recoveries.csv").write_bytes(recoveries)
        return {
            "cases_url": str(tmp_path / "cases.csv"),
            "recoveries_url": f"file://{tmp_path / 'recoveries.csv'}",
        }

    return write


def table(aws) -> dict[str, tuple[int, int, int]]:
    items = {}
    for page in (
        aws.client("dynamodb")
        .get_paginator("query")
        .paginate(
            TableName="covid_stats",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "CASES"}},
        )
    ):
        for item in page["Items"]:
            items[item["sk"]["S"]] = (
                int(item["cases"]["N"]),
                int(item["deaths"]["N"]),
                int(item["recoveries"]["N"]),
            )
    return items


def messages(aws) -> list[dict]:
    return [m for m in aws.sent()["sns"] if m["topic_arn"].endswith(":covid-refresh")]


def run(conf):
    return run_dag(load_dag("covid_daily"), conf=conf)


def test_first_load_then_unchanged_rerun_writes_nothing(airflow_db, aws, sources):
    conf = sources()
    assert run(conf).state == "success"
    loaded = table(aws)
    assert len(loaded) == 420
    assert loaded["2021-03-16"] == (29_569_140, 536_491, 0)
    first = messages(aws)[-1]
    assert first["subject"] == "COVID data refresh succeeded"
    assert "Inserted: 420\nUpdated: 0\nDeleted: 0\nUnchanged: 0" in first["message"]
    assert "Dates: 2020-01-22 to 2021-03-16 (420 days)" in first["message"]
    assert aws.client("s3").head_object(Bucket=BUCKET, Key="covid/snapshot/covid_stats.csv")

    assert run(conf).state == "success"
    assert "Inserted: 0\nUpdated: 0\nDeleted: 0\nUnchanged: 420" in messages(aws)[-1]["message"]
    assert table(aws) == loaded


def test_revised_history_updates_exactly_those_rows_and_vanished_rows_are_deleted(airflow_db, aws, sources):
    assert run(sources()).state == "success"
    revised = lines(NYT)
    for index in (50, 150):
        date, cases, deaths = revised[index].split(",")
        revised[index] = f"{date},{int(cases) + 11},{int(deaths) + 1}"
    vanished = [line for line in lines(JHU) if not line.startswith(("2021-03-15", "2021-03-16"))]
    assert run(sources(join(revised), join(vanished))).state == "success"
    body = messages(aws)[-1]["message"]
    assert "Inserted: 0\nUpdated: 2\nDeleted: 2\nUnchanged: 416" in body
    after = table(aws)
    assert len(after) == 418 and "2021-03-16" not in after
    date, cases, deaths = revised[50].split(",")
    assert after[date][:2] == (int(cases), int(deaths))


def test_malformed_input_fails_clearly_writes_nothing_and_notifies_failure(airflow_db, aws, sources, capfd):
    bad = lines(NYT)
    bad[40] = bad[40].split(",")[0] + ",-5,0"
    result = run(sources(join(bad)))
    assert result.state == "failed"
    assert table(aws) == {}
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="covid/snapshot/")
    [failure] = messages(aws)
    assert failure["subject"] == "COVID data refresh FAILED (extract)"
    assert "DAG: covid_daily\nTask: extract\n" in failure["message"]
    assert (
        "Error: AirflowFailException: " in failure["message"]
        and "row 41, column 'cases', value '-5'" in failure["message"]
    )
    assert "Log: http" in failure["message"]
    assert not failure["message"].startswith('"')  # plain text, not a JSON-quoted string


def test_throttling_and_unprocessed_items_give_the_same_final_table(airflow_db, aws, sources):
    aws.set_faults(dynamodb_unprocessed_rate=0.3, dynamodb_throttle_rate=0.1, seed=5)
    try:
        assert run(sources()).state == "success"
    finally:
        aws.set_faults(dynamodb_unprocessed_rate=0, dynamodb_throttle_rate=0)
    faulty = table(aws)
    aws.reset()
    from infra.provision import provision

    provision(aws.endpoint_url)
    assert run(sources()).state == "success"
    assert table(aws) == faulty and len(faulty) == 420


def test_sources_from_s3(airflow_db, aws):
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key="inputs/us.csv", Body=NYT)
    s3.put_object(
        Bucket=BUCKET,
        Key="inputs/jhu.csv",
        Body=(DATA / "jhu_time-series-19-covid-combined_subset_US_KoreaSouth_Afghanistan.csv").read_bytes(),
    )
    conf = {"cases_url": f"s3://{BUCKET}/inputs/us.csv", "recoveries_url": f"s3://{BUCKET}/inputs/jhu.csv"}
    assert run(conf).state == "success"
    assert len(table(aws)) == 420


def test_params_are_validated_at_trigger_time():
    from airflow.sdk.exceptions import ParamValidationError

    params = load_dag("covid_daily").params
    for good in ("https://example.com/us.csv", "s3://bucket/us.csv", "/data/us.csv", "file:///data/us.csv"):
        assert params.get_param("cases_url").resolve(good) == good
    with pytest.raises(ParamValidationError, match="does not match"):
        params.get_param("cases_url").resolve("not a url: has spaces")
