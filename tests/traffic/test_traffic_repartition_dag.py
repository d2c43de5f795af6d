"""traffic_repartition end to end on the offline stack (real crawls, real SQL), vs pandas."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest

from devtools.traffic_generator import by_arrival_hour, readings, write_raw
from pipelines.traffic.reference import transform
from tests.conftest import load_dag, run_dag

BUCKET = "pipelines-data-lake"
# crosses a month end and a year end
START, END = datetime(2024, 12, 31, 21, tzinfo=UTC), datetime(2025, 1, 1, 3, tzinfo=UTC)
DATA_FROM, DATA_TO = START - timedelta(hours=3), END + timedelta(hours=3)
COLUMNS = {"uniqueid": "uniqueId", "lvenr": "lveNr", "recordtimestamp": "recordTimestamp",
           "currentspeed": "currentSpeed", "vehiclecount": "vehicleCount", "previousspeed": "previousSpeed",
           "trafficintensityclass2": "c2", "trafficintensityclass3": "c3", "trafficintensityclass4": "c4",
           "trafficintensityclass5": "c5", "speeddiffindicator": "speedDiffIndicator",
           "avgspeed3minutes": "avgSpeed3Minutes", "avgspeed20minutes": "avgSpeed20Minutes",
           "trafficjamindicator": "trafficJamIndicator", "trafficjamindicatorlong": "trafficJamIndicatorLong"}  # fmt: skip


@pytest.fixture
def raw(aws, monkeypatch):
    monkeypatch.setenv("LOCALAWS_CRAWL_MIN_SECONDS", "0.3")
    write_raw(aws.client("s3"), BUCKET, DATA_FROM, DATA_TO, locations=2, lanes=2, seed=3)
    return aws


def expected(start=START, end=END) -> pd.DataFrame:
    records = [
        r
        for rows in by_arrival_hour(readings(DATA_FROM, DATA_TO, 2, 2, 3), timedelta(hours=2), 3).values()
        for r in rows
    ]
    frame = pd.DataFrame(records)
    return transform(frame, int(start.timestamp()), int(end.timestamp())).sort_values(
        ["lveNr", "recordTimestamp"]
    )


def written(aws) -> tuple[pd.DataFrame, dict[tuple, int]]:
    s3 = aws.client("s3")
    frames, files = [], {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="traffic/transformed/"):
        for obj in page.get("Contents", []):
            parts = dict(p.split("=") for p in obj["Key"].split("/")[2:-1])
            key = (parts["year"], parts["month"], parts["day"], parts["hour"])
            files[key] = files.get(key, 0) + 1
            frame = pq.read_table(
                io.BytesIO(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
            ).to_pandas()
            frames.append(frame.assign(**parts))
    if not frames:
        return pd.DataFrame(), files
    data = pd.concat(frames).rename(columns=COLUMNS)
    return data.sort_values(["lveNr", "recordTimestamp"]).reset_index(drop=True), files


def run(conf, retries: int = 0):
    dag = load_dag("traffic_repartition")
    for task in dag.tasks:
        task.retry_delay = timedelta(0)
    return run_dag(dag, conf=conf, retries=retries)


def one_copy_per_minute(data: pd.DataFrame) -> bool:
    return not data.duplicated(["lveNr", "recordTimestamp"]).any()


def test_a_retry_after_the_insert_wrote_or_wrote_part_then_failed_leaves_one_copy(
    airflow_db, raw, monkeypatch
):
    """Attempt 1 of each chunk: Athena wrote the chunk (and for one, a stray partial file);
    then the attempt fails (a lost worker, or a failed INSERT). The retry must not add rows."""
    from airflow.providers.amazon.aws.operators.athena import AthenaOperator

    original = AthenaOperator.execute_complete
    failed_once: set[str] = set()

    def fail_first_insert_after_it_wrote(self, context, event=None):
        query_id = (event or {}).get("value")
        query = raw.client("athena").get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Query"]
        if "INSERT INTO traffic.events_by_event_time" in query and self.task_id + str(context["ti"].map_index) not in failed_once:
            failed_once.add(self.task_id + str(context["ti"].map_index))
            s3 = raw.client("s3")
            if len(failed_once) == 1:  # a partial write: one of Athena's files twice
                key = s3.list_objects_v2(Bucket=BUCKET, Prefix="traffic/transformed/")["Contents"][0]["Key"]
                s3.copy_object(Bucket=BUCKET, CopySource={"Bucket": BUCKET, "Key": key}, Key=key + ".partial")
            raise RuntimeError("worker lost after Athena finished the INSERT")
        return original(self, context, event)

    monkeypatch.setattr(AthenaOperator, "execute_complete", fail_first_insert_after_it_wrote)
    assert run(conf(chunk_hours=3), retries=1).state == "success"
    assert len(failed_once) == 2  # both chunks failed once after writing
    data, files = written(raw)
    assert set(files.values()) == {1} and len(files) == 6
    assert one_copy_per_minute(data)
    assert_matches_reference(data, expected())


def test_a_write_left_running_by_a_lost_attempt_is_stopped_before_the_chunk_is_rewritten(
    airflow_db, raw, monkeypatch
):
    """A lost attempt's INSERT still runs in Athena when the next attempt (or another run's
    writer) starts: left alone it would add its rows after the clear."""
    from pipelines.traffic.steps import plan, render_insert_sql

    # the raw partitions and tables, as the DAG sets them up, then a slow leftover INSERT
    assert run(conf(chunk_hours=6)).state == "success"
    athena = raw.client("athena")
    monkeypatch.setenv("LOCALAWS_ATHENA_MIN_SECONDS", "90")
    [chunk] = plan(conf(chunk_hours=6), None, None)["chunks"]
    leftover = athena.start_query_execution(
        QueryString=render_insert_sql(chunk),
        ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/athena-results/"},
    )["QueryExecutionId"]

    def state():
        return athena.get_query_execution(QueryExecutionId=leftover)["QueryExecution"]["Status"]["State"]

    while state() == "QUEUED":
        time.sleep(0.05)
    monkeypatch.setenv("LOCALAWS_ATHENA_MIN_SECONDS", "0")  # only the leftover is slow
    assert run(conf(chunk_hours=6)).state == "success"
    while state() in ("QUEUED", "RUNNING"):  # whatever the DAG did, the leftover has ended now
        time.sleep(0.5)
    assert state() == "CANCELLED"
    data, files = written(raw)
    assert set(files.values()) == {1} and len(files) == 6
    assert_matches_reference(data, expected())


def conf(start=START, end=END, **extra):
    return {"start": start.isoformat(), "end": end.isoformat(), **extra}


def assert_matches_reference(data: pd.DataFrame, reference: pd.DataFrame) -> None:
    got = data[list(COLUMNS.values())].reset_index(drop=True)
    want = reference.reset_index(drop=True)
    assert len(got) == len(want)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=False, rtol=1e-9)


def test_a_range_across_month_and_year_end_writes_every_hour_once_equal_to_pandas(airflow_db, raw):
    assert run(conf(chunk_hours=4)).state == "success"
    data, files = written(raw)
    hours = [START + timedelta(hours=i) for i in range(6)]
    assert sorted(files) == [(f"{h:%Y}", f"{h:%m}", f"{h:%d}", f"{h:%H}") for h in hours]
    assert set(files.values()) == {1}
    assert_matches_reference(data, expected())
    glue = raw.client("glue")
    partitions = glue.get_partitions(DatabaseName="traffic", TableName="events_by_event_time")["Partitions"]
    assert len(partitions) == 6
    # raw: crawl_raw's crawl added every arrival-hour folder that holds objects (the first
    # crawl of an incremental crawler reads all), each inheriting the declared table
    registered = glue.get_partitions(DatabaseName="traffic", TableName="raw")["Partitions"]
    objects = raw.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="traffic/raw/")["Contents"]
    folders = {o["Key"].rsplit("/", 1)[0] + "/" for o in objects}
    assert sorted(p["StorageDescriptor"]["Location"] for p in registered) == sorted(
        f"s3://{BUCKET}/{folder}" for folder in folders
    )
    declared = glue.get_table(DatabaseName="traffic", Name="raw")["Table"]["StorageDescriptor"]["Columns"]
    assert all(p["StorageDescriptor"]["Columns"] == declared for p in registered)
    for crawler in ("traffic_raw_crawler", "traffic_transformed_crawler"):  # one crawl each, both done
        [crawl] = glue.list_crawls(CrawlerName=crawler)["Crawls"]
        assert crawl["State"] == "COMPLETED", (crawler, crawl)


def test_rerun_and_overlapping_backfill_leave_identical_data_and_chunk_edges_match(airflow_db, raw):
    assert run(conf(chunk_hours=96)).state == "success"
    once, _ = written(raw)
    assert run(conf(chunk_hours=1)).state == "success"  # every hour is a chunk edge now
    again, files = written(raw)
    assert set(files.values()) == {1}
    pd.testing.assert_frame_equal(once, again)
    # an overlapping range: its own hours rewritten, the rest untouched, no duplicates
    assert run(conf(START + timedelta(hours=2), END + timedelta(hours=2), chunk_hours=3)).state == "success"
    overlapped, files = written(raw)
    assert set(files.values()) == {1} and len(files) == 8
    assert_matches_reference(overlapped, expected(START, END + timedelta(hours=2)))
    # recrawl_target (S3 event mode): the first crawl lists the table, each later one reads only
    # the event hours its run wrote (6, one file each), not the 8 the table holds by the third
    crawls = raw.client("glue").list_crawls(CrawlerName="traffic_transformed_crawler")["Crawls"]
    summaries = [json.loads(c["Summary"]) for c in reversed(crawls)]
    assert ["EventMessagesConsumed" in s for s in summaries] == [False, True, True]
    assert [s["ObjectsRead"] for s in summaries] == [6, 6, 6]


def test_a_failed_query_fails_its_task_with_athenas_reason_and_leaves_no_partial_partition(
    airflow_db, raw, capfd
):
    bad = json.dumps({"unieke_id": "1000", "lve_nr": "100", "tijd_waarneming": "not-a-time", "defect": "0",
                      "rekendata_bezettingsgraad": "5"})  # fmt: skip
    raw.client("s3").put_object(
        Bucket=BUCKET, Key="traffic/raw/2025/01/01/02/broken.json", Body=bad.encode() + b"\n"
    )
    result = run(conf(chunk_hours=3))
    assert result.state == "failed"
    output = "".join(capfd.readouterr())
    assert "INVALID_CAST_ARGUMENT" in output
    _, files = written(raw)
    assert not any(
        key[3] in ("00", "01", "02") and key[2] == "01" for key in files
    )  # the failed chunk wrote nothing


def test_a_cancelled_query_fails_its_task_promptly(airflow_db, raw, capfd, monkeypatch):
    monkeypatch.setenv("LOCALAWS_ATHENA_MIN_SECONDS", "2")
    athena = raw.client("athena")
    stop = threading.Event()

    def cancel_inserts():
        while not stop.is_set():
            for query_id in athena.list_query_executions(WorkGroup="primary").get("QueryExecutionIds", []):
                execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
                if (
                    execution["Query"].lstrip().startswith("INSERT")
                    or "INSERT INTO" in execution["Query"][:400]
                ):
                    if execution["Status"]["State"] in ("QUEUED", "RUNNING"):
                        athena.stop_query_execution(QueryExecutionId=query_id)
            stop.wait(0.05)

    canceller = threading.Thread(target=cancel_inserts, daemon=True)
    canceller.start()
    try:
        result = run(conf(chunk_hours=96))
    finally:
        stop.set()
        canceller.join()
    assert result.state == "failed"
    assert "CANCELLED" in "".join(capfd.readouterr())
    _, files = written(raw)
    assert files == {}


def test_a_scheduled_or_backfilled_run_owns_its_whole_event_day(airflow_db):
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction

    dag = load_dag("traffic_repartition")
    timetable = coerce_to_core_timetable(dag.timetable)
    day = datetime(2024, 3, 31, tzinfo=UTC)  # a DST change in Europe: UTC days stay 24 hours
    info = timetable.next_dagrun_info(
        last_automated_data_interval=DataInterval(day - timedelta(days=1), day),
        restriction=TimeRestriction(earliest=None, latest=None, catchup=True),
    )
    assert (info.data_interval.start, info.data_interval.end) == (day, day + timedelta(days=1))


def corrections(records: list[dict], points: set[str], minutes: range) -> list[dict]:
    """Re-published readings (a later tijd_laatst_gewijzigd, every class at 7 vehicles and 33 km/h)
    of ``points`` at the given minutes after START: the latest version wins (spec step 0)."""
    from devtools.traffic_generator import publisher_time

    chosen = []
    for record in records:
        offset = (int(record["tijd_waarneming"]) - int(START.timestamp())) // 60
        if record["unieke_id"] in points and offset in minutes:
            corrected = dict(record, defect="0", rekendata_bezettingsgraad="5")
            corrected["tijd_laatst_gewijzigd"] = publisher_time(
                datetime.fromtimestamp(int(record["tijd_waarneming"]) + 300, UTC)
            )
            for klasse in range(2, 6):
                corrected[f"verkeersintensiteit_klasse{klasse}"] = "7"
                corrected[f"voertuigsnelheid_rekenkundig_klasse{klasse}"] = "33"
            chosen.append(corrected)
    return chosen


def test_a_run_with_measuring_points_rewrites_only_those_points_rows(airflow_db, raw):
    """The operators' page example, on a lake that holds every point: the listed points' rows are
    recomputed (a correction published since shows), every other point's rows stay as they were
    (a correction of an unlisted point published since does NOT show: its rows were not rewritten)."""
    assert run(conf(chunk_hours=3)).state == "success"
    before, _ = written(raw)
    records = [
        r
        for rows in by_arrival_hour(readings(DATA_FROM, DATA_TO, 2, 2, 3), timedelta(hours=2), 3).values()
        for r in rows
    ]
    # location 100's lanes are points 1000 and 1001; location 101's are 1010 and 1011
    fixes = corrections(records, {"1000", "1010"}, range(30, 90))
    assert {f["unieke_id"] for f in fixes} == {"1000", "1010"}
    body = "".join(json.dumps(f) + "\n" for f in fixes).encode()
    raw.client("s3").put_object(Bucket=BUCKET, Key="traffic/raw/2025/01/01/01/corrections.json", Body=body)

    assert run(conf(chunk_hours=3, measuring_points=[1000, 1001])).state == "success"
    after, files = written(raw)
    assert set(files.values()) == {1} and len(files) == 6  # still one file per event hour
    assert one_copy_per_minute(after)
    start, end = int(START.timestamp()), int(END.timestamp())
    listed = transform(pd.DataFrame(records + fixes), start, end, [1000, 1001])
    unlisted_as_before = transform(pd.DataFrame(records), start, end)
    unlisted_as_before = unlisted_as_before[unlisted_as_before["lveNr"] == 101]
    want = pd.concat([listed, unlisted_as_before]).sort_values(["lveNr", "recordTimestamp"])
    assert_matches_reference(after, want)
    # the unlisted location's stored rows are the very values written by the first run
    pd.testing.assert_frame_equal(
        after[after["lveNr"] == 101].drop(columns=["year", "month", "day", "hour"]).reset_index(drop=True),
        before[before["lveNr"] == 101].drop(columns=["year", "month", "day", "hour"]).reset_index(drop=True),
    )
    # and the correction of a listed point did change its location's rows
    assert not after[after["lveNr"] == 100].reset_index(drop=True).equals(
        before[before["lveNr"] == 100].reset_index(drop=True)
    )



def set_faults(stack, **values) -> dict:
    """POST /_localaws/faults, the offline stack's control API."""
    import urllib.request

    request = urllib.request.Request(f"{stack.endpoint_url}/_localaws/faults", data=json.dumps(values).encode(),
                                     method="POST")  # fmt: skip
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def test_an_insert_that_fails_half_written_keeps_the_old_rows_and_its_retry_leaves_one_copy(airflow_db, raw):
    """The offline Athena's own fault: the INSERT uploads one of its files, then FAILS (as Athena
    can mid-write). Without a retry the run fails and the chunk's partitions hold their earlier
    rows, not the half; with one, the retry leaves exactly one copy."""
    assert run(conf(chunk_hours=3)).state == "success"
    before, files_before = written(raw)
    try:
        set_faults(raw, athena_insert_fail_after_files=1, athena_insert_failures=1)
        assert run(conf(chunk_hours=3)).state == "failed"
        assert set_faults(raw)["athena_insert_fail_after_files"] is None  # the fault hit an INSERT
        after_failure, files_after_failure = written(raw)
        pd.testing.assert_frame_equal(after_failure, before)
        assert files_after_failure == files_before

        set_faults(raw, athena_insert_fail_after_files=1, athena_insert_failures=1)
        result = run(conf(chunk_hours=3), retries=1)
        assert result.state == "success"
        assert set_faults(raw)["athena_insert_fail_after_files"] is None
        tries = {ti.map_index: ti.try_number for ti in result.get_task_instances() if ti.task_id == "write_chunk"}
        assert sorted(tries.values()) == [1, 2]  # one chunk failed half-written, then its retry
    finally:
        set_faults(raw, athena_insert_fail_after_files=None)
    data, files = written(raw)
    assert set(files.values()) == {1} and len(files) == 6
    assert one_copy_per_minute(data)
    assert_matches_reference(data, expected())
    assert raw.client("dynamodb").scan(TableName="traffic_write_leases")["Count"] == 0
