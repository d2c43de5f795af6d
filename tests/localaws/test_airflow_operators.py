"""The Amazon provider's operators complete for real against the offline stack (dag.test)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, load_dag, run_dag, task_states

TEST_DAGS = REPO / "tests" / "dags"


@pytest.fixture
def raw_files(aws):
    s3 = aws.client("s3")
    for hour in ("00", "01"):
        body = "".join(json.dumps({"id": str(i), "v": i}) + "\n" for i in range(5)).encode()
        s3.put_object(Bucket="pipelines-data-lake", Key=f"check/raw/2024/01/01/{hour}/a.json", Body=body)
    return aws


# tests/dags/localaws_glue_check.py runs the deprecated GlueCrawlerOperator on purpose:
# deployments still run it, so the offline stack must answer it like Glue does.
@pytest.mark.filterwarnings(
    "ignore:GlueCrawlerOperator is deprecated:airflow.exceptions.AirflowProviderDeprecationWarning"
)
def test_glue_crawler_operator_deferrable_and_blocking_complete_and_catalog_the_files(airflow_db, raw_files):
    run = run_dag(load_dag("localaws_glue_check", TEST_DAGS))
    assert run.state == "success", task_states(run)
    glue = raw_files.client("glue")
    for table in ("raw", "again_raw"):
        assert len(glue.get_partitions(DatabaseName="traffic", TableName=table)["Partitions"]) == 2
    assert glue.get_crawler(Name="check_crawler")["Crawler"]["TablePrefix"] == "again_"


# tests/dags/localaws_glue_check.py runs the deprecated GlueCrawlerOperator on purpose:
# deployments still run it, so the offline stack must answer it like Glue does.
@pytest.mark.filterwarnings(
    "ignore:GlueCrawlerOperator is deprecated:airflow.exceptions.AirflowProviderDeprecationWarning"
)
def test_glue_crawler_operator_waits_for_an_already_running_crawler(airflow_db, raw_files, monkeypatch):
    monkeypatch.setenv("LOCALAWS_CRAWL_MIN_SECONDS", "3")
    glue = raw_files.client("glue")
    from tests.dags.localaws_glue_check import CONFIG

    glue.create_crawler(**CONFIG)
    glue.start_crawler(Name=CONFIG["Name"])
    run = run_dag(load_dag("localaws_glue_check", TEST_DAGS))
    assert run.state == "success", task_states(run)
    assert glue.get_crawler(Name=CONFIG["Name"])["Crawler"]["LastCrawl"]["Status"] == "SUCCEEDED"
