"""covid_daily end to end on the offline stack (dag.test): loads, reruns, revisions, failures,
shrinking sources, a table damaged by hand, a load that dies half-way, hostile sources."""

from __future__ import annotations

import pytest

from tests.clearing import clear_and_resume
from tests.conftest import load_dag, run_dag, task_states
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
    [failure] = messages(aws)
    assert failure["subject"] == "COVID data refresh FAILED (extract)"
    assert "Nothing was written to covid_stats: the failure came before the load." in failure["message"]
    assert "DAG: covid_daily\nTask: extract\n" in failure["message"]
    assert (
        "Error: AirflowFailException: " in failure["message"]
        and "row 41, column 'cases': not a non-negative integer" in failure["message"]
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
    s3.put_object(Bucket=BUCKET, Key="covid/inputs/us.csv", Body=NYT)
    s3.put_object(
        Bucket=BUCKET,
        Key="covid/inputs/jhu.csv",
        Body=(DATA / "jhu_time-series-19-covid-combined_subset_US_KoreaSouth_Afghanistan.csv").read_bytes(),
    )
    conf = {
        "cases_url": f"s3://{BUCKET}/covid/inputs/us.csv",
        "recoveries_url": f"s3://{BUCKET}/covid/inputs/jhu.csv",
    }
    assert run(conf).state == "success"
    assert len(table(aws)) == 420


def test_params_are_validated_at_trigger_time():
    from airflow.sdk.exceptions import ParamValidationError

    params = load_dag("covid_daily").params
    for good in ("https://example.com/us.csv", "s3://bucket/us.csv", "/data/us.csv", "file:///data/us.csv"):
        assert params.get_param("cases_url").resolve(good) == good
    for bad in ("not a url: has spaces", "http://example.com/us.csv", "relative/us.csv", "ftp://h/us.csv"):
        with pytest.raises(ParamValidationError, match="does not match"):
            params.get_param("cases_url").resolve(bad)
    assert params.get_param("allow_large_removal").resolve() is False
    with pytest.raises(ParamValidationError):
        params.get_param("allow_large_removal").resolve("yes")
    assert params.get_param("max_removal_share").resolve() == 0.05
    for bad in (-0.1, 1.5, "a lot"):
        with pytest.raises(ParamValidationError):
            params.get_param("max_removal_share").resolve(bad)


def test_a_truncated_source_is_refused_unless_the_run_allows_a_large_removal(airflow_db, aws, sources):
    assert run(sources()).state == "success"
    loaded = table(aws)
    truncated = join(lines(NYT)[:31])  # the header and 30 days, as a cut-off download gives
    result = run(sources(cases=truncated))
    assert result.state == "failed"
    assert task_states(result)["plan"] == "failed" and task_states(result)["load"] != "success"
    assert table(aws) == loaded
    failure = messages(aws)[-1]
    assert failure["subject"] == "COVID data refresh FAILED (plan)"
    assert "Nothing was written to covid_stats" in failure["message"]
    # 420 - 29 dates left = 391 deleted; limit max(3, floor(5% x 420) = 21) = 21
    assert (
        "covid_stats: this run would remove or lower 391 of the 420 stored rows (93.1%: 391 deleted; "
        "e.g. 2020-02-20, 2020-02-21" in failure["message"]
    )
    assert "the limit is 21 rows (max_removal_share 5.0% of 420, and at least 3)" in failure["message"]
    assert 'trigger the run again with {"allow_large_removal": true}' in failure["message"]

    assert run({**sources(cases=truncated), "allow_large_removal": True}).state == "success"
    assert len(table(aws)) == 29
    body = messages(aws)[-1]["message"]
    assert "Deleted: 391" in body
    assert "Override: allow_large_removal=true let this run through: covid_stats: this run would" in body


def _zeroed(days: range) -> bytes:
    """NYT's file with the cases and deaths of ``days`` (line numbers) rewritten to zero."""
    rows = lines(NYT)
    for index in days:
        rows[index] = rows[index].split(",")[0] + ",0,0"
    return join(rows)


def test_days_rewritten_to_zero_count_against_the_limit_even_without_deletes(airflow_db, aws, sources):
    assert run(sources()).state == "success"
    loaded = table(aws)
    # 29 of the 30 days 2020-04-30 .. 2020-05-29 (lines 102-131 of the file) zeroed; the highest totals untouched
    result = run(sources(cases=_zeroed(range(101, 130))))
    assert result.state == "failed" and task_states(result)["plan"] == "failed"
    assert table(aws) == loaded
    failure = messages(aws)[-1]["message"]
    # 29 lowered of 420 = 6.9% > the limit of 21 rows (5% of 420)
    assert (
        "covid_stats: this run would remove or lower 29 of the 420 stored rows (6.9%: 29 lowered; "
        "e.g. 2020-04-30, 2020-05-01, 2020-05-02, 2020-05-03, 2020-05-04 and 24 more); the limit is "
        "21 rows" in failure
    )
    # 21 days zeroed is within the limit: an upstream correction of that size goes through
    assert run(sources(cases=_zeroed(range(101, 122)))).state == "success"
    assert "Updated: 21\nDeleted: 0" in messages(aws)[-1]["message"]


def test_clearing_the_failed_load_of_an_older_run_refuses_its_stale_plan(airflow_db, aws, sources):
    dag = load_dag("covid_daily")
    older = _run_with_dynamodb_writes_refused_after(aws, 0, sources(), dag=dag)
    assert older.state == "failed" and task_states(older)["load"] == "failed" and table(aws) == {}
    revised = lines(NYT)
    date, cases, deaths = revised[300].split(",")
    revised[300] = f"{date},{int(cases) + 7},{deaths}"
    newer = run_dag(dag, conf=sources(cases=join(revised)))
    assert newer.state == "success"
    loaded = table(aws)
    assert loaded[date][0] == int(cases) + 7

    resumed = clear_and_resume(dag, older, {"load", "notify_success"})  # Clear, with downstream
    assert resumed.state == "failed"
    assert table(aws) == loaded  # the older run's plan was not applied over the newer data
    failure = messages(aws)[-1]
    assert failure["subject"] == "COVID data refresh FAILED (load)"
    assert (
        "Nothing was written to covid_stats: the plan was stale (a newer run has loaded)."
        in failure["message"]
    )
    assert f"covid_stats was loaded by the newer run {newer.run_id!r}" in failure["message"]
    assert (
        f"after run {older.run_id!r} computed this plan against the table before any marked load"
        in (failure["message"])
    )


def test_a_table_damaged_by_hand_is_repaired_by_the_next_run(airflow_db, aws, sources):
    conf = sources()
    assert run(conf).state == "success"
    loaded = table(aws)
    dynamodb = aws.client("dynamodb")
    for date in sorted(loaded)[:10]:  # rows deleted by hand
        dynamodb.delete_item(TableName="covid_stats", Key={"pk": {"S": "CASES"}, "sk": {"S": date}})
    dynamodb.put_item(  # a row edited by hand, one missing an attribute, one that should not exist
        TableName="covid_stats",
        Item={"pk": {"S": "CASES"}, "sk": {"S": "2020-06-01"}, "cases": {"N": "1"}, "deaths": {"N": "0"},
              "recoveries": {"N": "0"}},
    )  # fmt: skip
    dynamodb.put_item(TableName="covid_stats", Item={"pk": {"S": "CASES"}, "sk": {"S": "2020-06-02"}})
    dynamodb.put_item(
        TableName="covid_stats",
        Item={"pk": {"S": "CASES"}, "sk": {"S": "2030-01-01"}, "cases": {"N": "5"}, "deaths": {"N": "0"},
              "recoveries": {"N": "0"}},
    )  # fmt: skip
    assert run(conf).state == "success"
    assert table(aws) == loaded
    assert "Inserted: 10\nUpdated: 2\nDeleted: 1\nUnchanged: 408" in messages(aws)[-1]["message"]


def test_a_table_wiped_by_hand_is_reloaded(airflow_db, aws, sources):
    conf = sources()
    assert run(conf).state == "success"
    loaded = table(aws)
    dynamodb = aws.client("dynamodb")
    for date in loaded:  # every item deleted by hand (a wipe, or a restore that went wrong)
        dynamodb.delete_item(TableName="covid_stats", Key={"pk": {"S": "CASES"}, "sk": {"S": date}})
    assert table(aws) == {}
    assert run(conf).state == "success"
    assert table(aws) == loaded


def _run_with_dynamodb_writes_refused_after(aws, writes: int, conf: dict, dag=None):
    """A run while the offline stack's own fault is on: ``writes`` more write calls succeed,
    then every one is refused; the fault is off again afterwards.

    AccessDeniedException (a role losing its permission mid-run) rather than a 500: botocore
    does not retry it, so the load fails at once instead of after ten backed-off attempts.
    """
    aws.set_faults(dynamodb_fail_after_writes=writes, dynamodb_failure_code="AccessDeniedException")
    try:
        return run_dag(dag, conf=conf) if dag is not None else run(conf)
    finally:
        aws.set_faults(dynamodb_fail_after_writes=None)


def test_a_load_that_dies_half_way_says_what_it_wrote_and_the_rerun_converges(airflow_db, aws, sources):
    conf = sources()
    result = _run_with_dynamodb_writes_refused_after(aws, 2, conf)
    assert result.state == "failed" and task_states(result)["load"] == "failed"
    assert len(table(aws)) == 50
    failure = messages(aws)[-1]
    assert failure["subject"] == "COVID data refresh FAILED (load)"
    assert (
        "The covid_stats refresh failed. 50 of 420 planned writes applied to covid_stats before the "
        "failure; re-run to converge." in failure["message"]
    )
    assert "the table was left as it was" not in failure["message"]

    assert run(conf).state == "success"
    assert len(table(aws)) == 420
    assert "Inserted: 370\nUpdated: 0\nDeleted: 0\nUnchanged: 50" in messages(aws)[-1]["message"]


def test_a_load_that_writes_nothing_says_so(airflow_db, aws, sources):
    result = _run_with_dynamodb_writes_refused_after(aws, 0, sources())
    assert result.state == "failed" and table(aws) == {}
    assert (
        "nothing written to covid_stats by this attempt (0 of 420 planned writes applied)"
        in (messages(aws)[-1]["message"])
    )


SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRETKEY"


@pytest.mark.parametrize(
    "hostile",
    [
        f"PATH=/usr/bin\0AWS_SECRET_ACCESS_KEY={SECRET}\0HOME=/root\0".encode(),  # /proc/self/environ
        f"AWS_SECRET_ACCESS_KEY={SECRET}\nJWT_SECRET={SECRET}\n".encode(),  # an .env file
        f"{SECRET}\n".encode(),  # a one-line token file
        f"date,cases,deaths\n2020-01-21,{SECRET},0\n".encode(),  # the secret in a cell
    ],
)
def test_a_hostile_source_never_reaches_the_log_alert_or_sns(
    airflow_db, aws, sources, mailbox, capfd, caplog, hostile
):
    result = run(sources(cases=hostile))
    assert result.state == "failed" and table(aws) == {}
    [failure] = messages(aws)
    assert "Task: extract" in failure["message"] and SECRET not in failure["message"]
    mails = [mail.subject + mail.text for mail in mailbox.wait_for(1)]
    assert "covid_daily.extract" in mails[0] and all(SECRET not in mail for mail in mails)
    out, err = capfd.readouterr()
    assert "cases.csv" in out + err + caplog.text  # the failure was logged ...
    assert SECRET not in out + err + caplog.text  # ... without the file's contents


def test_local_sources_are_refused_unless_the_offline_setting_is_on(airflow_db, aws, sources, monkeypatch):
    monkeypatch.delenv("PIPELINES_ALLOW_LOCAL_SOURCES", raising=False)
    result = run(sources())
    assert result.state == "failed" and table(aws) == {}
    assert (
        "local files are allowed only offline (PIPELINES_ALLOW_LOCAL_SOURCES=1)"
        in messages(aws)[-1]["message"]
    )
