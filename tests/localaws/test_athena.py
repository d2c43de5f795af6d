"""Athena on the offline stack runs the SQL for real, on DuckDB, against the Glue catalog.

Plain boto3 against the stack: query life cycle, results, workgroups, partition pruning
with honest bytes scanned, INSERT INTO Parquet partitions, DDL, and the failure paths.
"""

from __future__ import annotations

import gzip
import io
import json
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlglot import exp, parse_one

from localaws.athena.catalog import partition_predicate
from localaws.athena.engine import hive_folder_value
from localaws.athena.sql import QueryFailed, joda_to_strftime, to_duckdb
from tests.localaws.conftest import result_rows, run_query, wait_for_query

RESULTS = "s3://lake/athena-results/"
HOURS = 24
TOO_MANY = "HIVE_TOO_MANY_OPEN_PARTITIONS: Exceeded limit of 100 open writers for partitions/buckets"


def start(athena, sql: str, **extra) -> str:
    return athena.start_query_execution(
        QueryString=sql,
        QueryExecutionContext={"Database": "db"},
        ResultConfiguration={"OutputLocation": RESULTS},
        **extra,
    )["QueryExecutionId"]


def succeeded(athena, sql: str) -> dict:
    execution = run_query(athena, sql)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    return execution


def keys_under(s3, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix=prefix).get("Contents", []))


# -- pure pieces ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("joda", "strftime"),
    [
        ("yyyy-MM-dd", "%Y-%m-%d"),
        ("yyyyMMddHH", "%Y%m%d%H"),
        ("yyyy-MM-dd'T'HH:mm:ss.SSS", "%Y-%m-%dT%H:%M:%S.%g"),
        ("d MMM yy, h:mm a", "%-d %b %y, %-I:%M %p"),
        ("'100%' yyyy", "100%% %Y"),
    ],
)
def test_joda_patterns_become_strftime_patterns(joda, strftime):
    assert joda_to_strftime(joda) == strftime


def test_an_unknown_joda_letter_fails_the_query_with_a_reason():
    with pytest.raises(QueryFailed, match="INVALID_FUNCTION_ARGUMENT: pattern letters 'QQ'"):
        joda_to_strftime("yyyy QQ")


def test_row_comparisons_are_spelled_out_field_by_field():
    sql = to_duckdb(parse_one("SELECT 1 WHERE (a, b) BETWEEN ('1', '2') AND ('3', '4')", read="athena"))
    assert "((a > '1' OR (a = '1' AND (b >= '2'))) AND (a < '3' OR (a = '3' AND (b <= '4'))))" in sql
    assert "(a > 1 OR (a = 1 AND (b > 2)))" in to_duckdb(parse_one("SELECT (a, b) > (1, 2)", read="athena"))


@pytest.mark.parametrize(
    ("where", "usable"),
    [
        ("year = '2024' AND speed > 3", "year = '2024'"),
        ("e.year = '2024' AND e.hour IN ('01', '02')", "year = '2024' AND hour IN ('01', '02')"),
        ("(day = '01' AND hour = '00') OR (day = '02')", "(day = '01' AND hour = '00') OR (day = '02')"),
        ("year = '2024' OR speed > 3", None),
        ("other.year = '2024'", None),
        ("year IN (SELECT y FROM years)", None),
    ],
)
def test_partition_predicate_keeps_the_conjuncts_on_the_tables_own_partition_columns(where, usable):
    tree = parse_one(f"SELECT * FROM db.events AS e WHERE {where}", read="athena")
    predicate = partition_predicate(tree.find(exp.Table), ["year", "month", "day", "hour"])
    assert (predicate.sql() if predicate else None) == usable


def test_partition_folder_names_escape_as_hive_does():
    assert hive_folder_value("2024") == "2024"
    assert hive_folder_value("a/b=c d") == "a%2Fb%3Dc d"


# -- fixtures ---------------------------------------------------------------------------

RAW_DDL = """
CREATE EXTERNAL TABLE events (sensor string, speed string, count bigint)
PARTITIONED BY (partition_0 string, partition_1 string, partition_2 string, partition_3 string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION 's3://lake/events/'
"""

TARGET_DDL = """
CREATE EXTERNAL TABLE speeds (sensor string, speed double, n bigint)
PARTITIONED BY (year string, month string, day string, hour string)
STORED AS PARQUET LOCATION 's3://lake/speeds/'
"""


@pytest.fixture
def events(lake):
    """db.events: 24 arrival-hour folders (not Hive style) of gzip JSON lines; db.speeds: empty Parquet."""
    s3, athena = lake.client("s3"), lake.client("athena")
    for hour in range(HOURS):
        lines = "".join(
            json.dumps({"sensor": str(i % 3), "speed": str(50 + i + hour), "count": i}) + "\n"
            for i in range(50)
        )
        s3.put_object(
            Bucket="lake",
            Key=f"events/2024/02/29/{hour:02d}/part.json.gz",
            Body=gzip.compress(lines.encode()),
        )
    succeeded(athena, RAW_DDL)
    partitions = " ".join(
        f"PARTITION (partition_0='2024', partition_1='02', partition_2='29', partition_3='{h:02d}') "
        f"LOCATION 's3://lake/events/2024/02/29/{h:02d}/'"
        for h in range(HOURS)
    )
    succeeded(athena, f"ALTER TABLE events ADD {partitions}")
    succeeded(athena, TARGET_DDL)
    return lake


DAYS = [("2024", "01", "31"), ("2024", "02", "01")]


@pytest.fixture
def hourly(lake):
    """db.hourly: Parquet in Hive folders year/month/day/hour, 48 hours across a month end,
    10 rows each, found by MSCK REPAIR TABLE. Answers {partition folder: stored bytes}."""
    s3, athena = lake.client("s3"), lake.client("athena")
    sizes = {}
    for year, month, day in DAYS:
        for hour in range(HOURS):
            buffer = io.BytesIO()
            pq.write_table(pa.table({"reading": list(range(hour * 10, hour * 10 + 10))}), buffer)
            folder = f"year={year}/month={month}/day={day}/hour={hour:02d}"
            s3.put_object(Bucket="lake", Key=f"hourly/{folder}/data.parquet", Body=buffer.getvalue())
            sizes[folder] = len(buffer.getvalue())
    succeeded(
        athena,
        "CREATE EXTERNAL TABLE hourly (reading bigint) "
        "PARTITIONED BY (year string, month string, day string, hour string) "
        "STORED AS PARQUET LOCATION 's3://lake/hourly/'",
    )
    succeeded(athena, "MSCK REPAIR TABLE hourly")
    assert len(lake.client("glue").get_partitions(DatabaseName="db", TableName="hourly")["Partitions"]) == 48
    return sizes


# -- SELECT and results -----------------------------------------------------------------


def test_select_gives_rows_csv_and_paginated_results(events):
    athena, s3 = events.client("athena"), events.client("s3")
    execution = succeeded(
        athena,
        "SELECT sensor, count(*) AS n, sum(count) AS total FROM events GROUP BY sensor ORDER BY sensor",
    )
    query_id = execution["QueryExecutionId"]
    assert result_rows(athena, query_id) == [
        ["sensor", "n", "total"],
        ["0", "408", str(sum(i for i in range(50) if i % 3 == 0) * HOURS)],
        ["1", "408", str(sum(i for i in range(50) if i % 3 == 1) * HOURS)],
        ["2", "384", str(sum(i for i in range(50) if i % 3 == 2) * HOURS)],
    ]
    assert execution["ResultConfiguration"]["OutputLocation"] == f"{RESULTS}{query_id}.csv"
    assert execution["StatementType"] == "DML"
    status, statistics = execution["Status"], execution["Statistics"]
    assert status["SubmissionDateTime"] <= status["CompletionDateTime"]
    assert statistics["EngineExecutionTimeInMillis"] >= 0 and statistics["DataScannedInBytes"] > 0
    csv_text = s3.get_object(Bucket="lake", Key=f"athena-results/{query_id}.csv")["Body"].read().decode()
    assert csv_text.splitlines()[:2] == ['"sensor","n","total"', '"0","408","9792"']

    big = succeeded(athena, "SELECT count FROM events")["QueryExecutionId"]
    first = athena.get_query_results(QueryExecutionId=big, MaxResults=500)
    assert first["ResultSet"]["Rows"][0] == {"Data": [{"VarCharValue": "count"}]}
    pages = list(
        athena.get_paginator("get_query_results").paginate(
            QueryExecutionId=big, PaginationConfig={"PageSize": 500}
        )
    )
    assert [len(p["ResultSet"]["Rows"]) for p in pages] == [500, 500, 201]
    assert "NextToken" not in pages[-1]


def test_a_select_that_matches_nothing_gives_only_the_header_row(events):
    athena = events.client("athena")
    query_id = succeeded(athena, "SELECT sensor, count FROM events WHERE count < 0")["QueryExecutionId"]
    assert result_rows(athena, query_id) == [["sensor", "count"]]


def test_results_name_type_and_render_values_like_athena(lake):
    athena = lake.client("athena")
    query_id = succeeded(
        athena,
        "SELECT 1 + 1, 'x' AS Label, CAST(NULL AS varchar) AS nothing, '' AS empty, 2.5E0 AS ratio, "
        "from_unixtime(1709164800) AS at, format_datetime(from_unixtime(1709164800), 'yyyy-MM-dd HH') AS hour, "
        "date_format(from_unixtime(1709164800), '%Y%m%d') AS day, true AS flag",
    )["QueryExecutionId"]
    results = athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]
    header, row = results["Rows"]
    assert [cell["VarCharValue"] for cell in header["Data"]] == [
        "_col0", "label", "nothing", "empty", "ratio", "at", "hour", "day", "flag",
    ]  # fmt: skip
    assert row["Data"] == [
        {"VarCharValue": "2"},
        {"VarCharValue": "x"},
        {},  # NULL has no VarCharValue, an empty string has one
        {"VarCharValue": ""},
        {"VarCharValue": "2.5"},
        {"VarCharValue": "2024-02-29 00:00:00.000 UTC"},
        {"VarCharValue": "2024-02-29 00"},
        {"VarCharValue": "20240229"},
        {"VarCharValue": "true"},
    ]
    types = [c["Type"] for c in results["ResultSetMetadata"]["ColumnInfo"]]
    assert types == [
        "integer", "varchar", "varchar", "varchar", "double", "timestamp with time zone", "varchar", "varchar",
        "boolean",
    ]  # fmt: skip


def test_queries_are_queued_then_running_and_results_wait_for_the_end(lake, monkeypatch):
    monkeypatch.setenv("LOCALAWS_ATHENA_MIN_SECONDS", "0.5")
    athena = lake.client("athena")
    query_id = start(athena, "SELECT 1")
    assert athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"] in (
        "QUEUED",
        "RUNNING",
    )
    with pytest.raises(athena.exceptions.InvalidRequestException, match="has not yet finished"):
        athena.get_query_results(QueryExecutionId=query_id)
    execution = wait_for_query(athena, query_id)
    assert execution["Status"]["State"] == "SUCCEEDED"
    assert execution["Statistics"]["EngineExecutionTimeInMillis"] >= 500


def test_unqualified_and_qualified_names_and_ctes_resolve(events):
    athena = events.client("athena")
    query_id = succeeded(
        athena,
        "WITH fast AS (SELECT * FROM db.events WHERE CAST(speed AS integer) > 90) "
        "SELECT count(*) AS n FROM fast JOIN events e ON fast.sensor = e.sensor AND e.partition_3 = '00' "
        "WHERE fast.partition_3 = '23'",
    )["QueryExecutionId"]
    fast_in_hour_23 = [i for i in range(50) if 50 + i + 23 > 90]
    expected = sum(sum(1 for j in range(50) if j % 3 == i % 3) for i in fast_in_hour_23)
    assert result_rows(athena, query_id)[1] == [str(expected)]


# -- partition pruning and bytes scanned ------------------------------------------------


@pytest.mark.parametrize(
    ("where", "folders"),
    [
        ("year = '2024' AND month = '02'", [f"2024/02/01/{h:02d}" for h in range(24)]),
        (
            "(year, month, day, hour) BETWEEN ('2024', '01', '31', '22') AND ('2024', '02', '01', '01')",
            ["2024/01/31/22", "2024/01/31/23", "2024/02/01/00", "2024/02/01/01"],
        ),
        (
            "concat(year, month, day, hour) BETWEEN '2024013122' AND '2024020101'",
            ["2024/01/31/22", "2024/01/31/23", "2024/02/01/00", "2024/02/01/01"],
        ),
        ("year || month || day || hour >= '2024020122'", ["2024/02/01/22", "2024/02/01/23"]),
        ("day = '31' AND hour IN ('00', '05')", ["2024/01/31/00", "2024/01/31/05"]),
        ("(day = '31' AND hour = '23') OR (day = '01' AND hour = '00')", ["2024/01/31/23", "2024/02/01/00"]),
        ("month = '01' AND CAST(hour AS integer) < 2 AND reading >= 0", ["2024/01/31/00", "2024/01/31/01"]),
    ],
)
def test_partition_filters_read_only_matching_partitions(lake, hourly, where, folders):
    athena = lake.client("athena")
    execution = succeeded(athena, f"SELECT count(*), sum(reading) FROM hourly WHERE {where}")
    hours = [int(folder[-2:]) for folder in folders]
    assert result_rows(athena, execution["QueryExecutionId"])[1] == [
        str(10 * len(folders)),
        str(sum(sum(range(h * 10, h * 10 + 10)) for h in hours)),
    ]
    keys = ["year={}/month={}/day={}/hour={}".format(*folder.split("/")) for folder in folders]
    assert execution["Statistics"]["DataScannedInBytes"] == sum(hourly[key] for key in keys)


def test_one_partition_scans_far_fewer_bytes_than_the_table(events):
    athena = events.client("athena")
    whole = succeeded(athena, "SELECT count(*) FROM events")
    one = succeeded(athena, "SELECT count(*) FROM events WHERE partition_3 = '05'")
    assert result_rows(athena, one["QueryExecutionId"])[1] == ["50"]
    stored = sum(
        o["Size"] for o in events.client("s3").list_objects_v2(Bucket="lake", Prefix="events/")["Contents"]
    )
    assert whole["Statistics"]["DataScannedInBytes"] == stored  # gzip size as stored, not unzipped
    assert 0 < one["Statistics"]["DataScannedInBytes"] * (HOURS - 2) < stored
    # a filter mixing data and partition columns cannot prune
    mixed = succeeded(athena, "SELECT count(*) FROM events WHERE partition_3 = '01' OR speed = '60'")
    assert mixed["Statistics"]["DataScannedInBytes"] == stored
    # each reference prunes by its own SELECT's filter
    sub = succeeded(
        athena,
        "SELECT count(*) FROM (SELECT * FROM events WHERE partition_3 IN ('01', '02')) WHERE speed > '0'",
    )
    assert sub["Statistics"]["DataScannedInBytes"] * (HOURS // 2 - 1) < stored


# -- table formats ----------------------------------------------------------------------


def test_csv_tables_with_header_are_read_and_cast_to_the_declared_types(lake):
    s3, glue, athena = lake.client("s3"), lake.client("glue"), lake.client("athena")
    s3.put_object(
        Bucket="lake", Key="people/a.csv", Body=b'name,age,score\n"Ann",31,1.5\nBob,,2\n"Cy, Jr",x,\n'
    )
    s3.put_object(Bucket="lake", Key="people/b.csv.gz", Body=gzip.compress(b"name,age,score\nDee,40,4.25\n"))
    glue.create_table(
        DatabaseName="db",
        TableInput={
            "Name": "people",
            "Parameters": {"classification": "csv", "skip.header.line.count": "1"},
            "StorageDescriptor": {
                "Columns": [
                    {"Name": "name", "Type": "string"},
                    {"Name": "age", "Type": "bigint"},
                    {"Name": "score", "Type": "double"},
                ],
                "Location": "s3://lake/people/",
                "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
                "SerdeInfo": {
                    "SerializationLibrary": "org.apache.hadoop.hive.serde2.OpenCSVSerde",
                    "Parameters": {"separatorChar": ",", "quoteChar": '"'},
                },
            },
        },
    )
    query_id = succeeded(athena, "SELECT name, age, score FROM people ORDER BY name")["QueryExecutionId"]
    assert result_rows(athena, query_id) == [
        ["name", "age", "score"],
        ["Ann", "31", "1.5"],
        ["Bob", None, "2.0"],
        ["Cy, Jr", None, None],
        ["Dee", "40", "4.25"],
    ]


def test_json_values_are_cast_to_the_declared_types_and_a_bad_one_fails(events):
    athena = events.client("athena")
    execution = succeeded(athena, "SELECT max(CAST(speed AS integer)) + 1, max(count) FROM events")
    assert result_rows(athena, execution["QueryExecutionId"])[1] == ["123", "49"]
    events.client("s3").put_object(
        Bucket="lake", Key="events/2024/02/29/00/bad.json", Body=b'{"count": "many"}\n'
    )
    failed = run_query(athena, "SELECT sum(count) FROM events WHERE partition_3 = '00'")
    assert failed["Status"]["State"] == "FAILED"
    assert "many" in failed["Status"]["StateChangeReason"]


# -- INSERT INTO ------------------------------------------------------------------------


def test_insert_into_writes_parquet_partitions_that_select_reads_back(events):
    athena, s3, glue = events.client("athena"), events.client("s3"), events.client("glue")
    insert = succeeded(
        athena,
        "INSERT INTO speeds SELECT sensor, CAST(speed AS double), count, partition_0, partition_1, partition_2, "
        "partition_3 FROM events WHERE partition_3 IN ('00', '01', '02')",
    )
    assert athena.get_query_results(QueryExecutionId=insert["QueryExecutionId"])["UpdateCount"] == 150
    keys = keys_under(s3, "speeds/")
    assert [k.rsplit("/", 1)[0] for k in keys] == [
        f"speeds/year=2024/month=02/day=29/hour={h}" for h in ("00", "01", "02")
    ]
    assert all(k.endswith(".parquet") for k in keys)
    table = pq.read_table(io.BytesIO(s3.get_object(Bucket="lake", Key=keys[0])["Body"].read()))
    assert table.column_names == ["sensor", "speed", "n"] and table.num_rows == 50
    partitions = glue.get_partitions(DatabaseName="db", TableName="speeds")["Partitions"]
    assert sorted((p["Values"], p["StorageDescriptor"]["Location"]) for p in partitions) == [
        (["2024", "02", "29", h], f"s3://lake/speeds/year=2024/month=02/day=29/hour={h}/")
        for h in ("00", "01", "02")
    ]
    back = succeeded(athena, "SELECT hour, count(*), max(speed) FROM speeds GROUP BY hour ORDER BY hour")
    assert result_rows(athena, back["QueryExecutionId"])[1:] == [
        ["00", "50", "99.0"],
        ["01", "50", "100.0"],
        ["02", "50", "101.0"],
    ]


def test_insert_into_appends_new_files_and_never_overwrites(events):
    athena, s3 = events.client("athena"), events.client("s3")
    sql = (
        "INSERT INTO db.speeds (sensor, n, year, month, day, hour) "
        "SELECT sensor, count, '2024', '02', '29', partition_3 FROM events WHERE partition_3 = '07'"
    )
    succeeded(athena, sql)
    first = keys_under(s3, "speeds/")
    succeeded(athena, sql)
    second = keys_under(s3, "speeds/")
    assert len(first) == 1 and len(second) == 2 and set(first) < set(second)
    count = succeeded(athena, "SELECT count(*), count(speed) FROM speeds WHERE hour = '07'")
    assert result_rows(athena, count["QueryExecutionId"])[1] == ["100", "0"]  # unlisted column: NULL


def test_insert_into_an_existing_partition_writes_to_its_location_and_escapes_new_folders(events):
    athena, s3, glue = events.client("athena"), events.client("s3"), events.client("glue")
    succeeded(
        athena,
        "ALTER TABLE speeds ADD PARTITION (year='2024', month='02', day='29', hour='08') "
        "LOCATION 's3://lake/elsewhere/h08/'",
    )
    succeeded(
        athena,
        "INSERT INTO speeds SELECT sensor, 1.0, count, '2024', '02', '29', "
        "IF(partition_3 = '08', '08', 'odd/hour') FROM events WHERE partition_3 IN ('08', '09')",
    )
    assert [k.rsplit("/", 1)[0] for k in keys_under(s3, "elsewhere/")] == ["elsewhere/h08"]
    assert [k.rsplit("/", 1)[0] for k in keys_under(s3, "speeds/")] == [
        "speeds/year=2024/month=02/day=29/hour=odd%2Fhour"
    ]
    values = sorted(
        p["Values"][3] for p in glue.get_partitions(DatabaseName="db", TableName="speeds")["Partitions"]
    )
    assert values == ["08", "odd/hour"]
    back = succeeded(athena, "SELECT hour, count(*) FROM speeds GROUP BY hour ORDER BY hour")
    assert result_rows(athena, back["QueryExecutionId"])[1:] == [["08", "50"], ["odd/hour", "50"]]


def test_insert_over_120_hourly_partitions_fails_and_writes_nothing(events):
    athena, s3, glue = events.client("athena"), events.client("s3"), events.client("glue")
    execution = run_query(
        athena,
        "INSERT INTO speeds SELECT sensor, 1.0, count, '2024', '03', "
        "lpad(CAST(1 + (count % 5) AS varchar), 2, '0'), lpad(CAST(CAST(partition_3 AS integer) AS varchar), 2, '0') "
        "FROM events",
    )  # 5 days x 24 hours = 120 partitions
    assert execution["Status"]["State"] == "FAILED"
    assert execution["Status"]["StateChangeReason"] == TOO_MANY
    assert keys_under(s3, "speeds/") == []
    assert glue.get_partitions(DatabaseName="db", TableName="speeds")["Partitions"] == []
    # 96 hourly partitions (4 days) are within the limit
    within = run_query(
        athena,
        "INSERT INTO speeds SELECT sensor, 1.0, count, '2024', '03', "
        "lpad(CAST(1 + (count % 4) AS varchar), 2, '0'), partition_3 FROM events",
    )
    assert within["Status"]["State"] == "SUCCEEDED"
    assert len(glue.get_partitions(DatabaseName="db", TableName="speeds")["Partitions"]) == 96


BAD_INSERTS = [
    ("INSERT INTO speeds SELECT sensor, sensor, count, '1', '2', '3', '4' FROM events", "TYPE_MISMATCH"),
    ("INSERT INTO speeds SELECT sensor FROM events", "TYPE_MISMATCH: Insert query has 1 columns"),
    ("INSERT INTO speeds (nope) SELECT 1", "COLUMN_NOT_FOUND"),
    ("INSERT INTO events SELECT * FROM events", "NOT_SUPPORTED"),
    ("INSERT INTO missing SELECT 1", "TABLE_NOT_FOUND"),
]


def test_bad_inserts_fail_with_a_reason_and_write_nothing(events):
    athena = events.client("athena")
    for sql, reason in BAD_INSERTS:  # one table set-up for all the cases
        status = run_query(athena, sql)["Status"]
        assert status["State"] == "FAILED", sql
        assert status["StateChangeReason"].startswith(reason), (sql, status["StateChangeReason"])
    assert keys_under(events.client("s3"), "speeds/") == []
    assert events.client("glue").get_partitions(DatabaseName="db", TableName="speeds")["Partitions"] == []


# -- failures and cancellation ----------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELEC 1", "SYNTAX_ERROR"),
        ("SELECT FROM WHERE", "SYNTAX_ERROR"),
        ("SELECT nope FROM events", "COLUMN_NOT_FOUND"),
        (
            "SELECT * FROM db.missing",
            "TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.db.missing' does not exist",
        ),
        ("SELECT no_such_function(1)", "FUNCTION_NOT_FOUND"),
        ("SELECT CAST('x' AS integer)", "INVALID_CAST_ARGUMENT"),
        ("SELECT 1; SELECT 2", "SYNTAX_ERROR"),
    ],
)
def test_errors_fail_with_a_reason(lake, sql, reason):
    athena = lake.client("athena")
    lake.client("glue").create_table(
        DatabaseName="db",
        TableInput={
            "Name": "events",
            "Parameters": {"classification": "json"},
            "StorageDescriptor": {
                "Columns": [{"Name": "speed", "Type": "string"}],
                "Location": "s3://lake/none/",
            },
        },
    )
    execution = run_query(athena, sql)
    assert execution["Status"]["State"] == "FAILED"
    assert execution["Status"]["StateChangeReason"].startswith(reason), execution["Status"][
        "StateChangeReason"
    ]
    assert execution["Status"]["AthenaError"]["ErrorMessage"] == execution["Status"]["StateChangeReason"]
    with pytest.raises(athena.exceptions.InvalidRequestException, match="Final query state: FAILED"):
        athena.get_query_results(QueryExecutionId=execution["QueryExecutionId"])


def test_stop_query_execution_cancels_a_running_insert_and_leaves_nothing(events):
    athena, s3 = events.client("athena"), events.client("s3")
    query_id = start(
        athena,
        "INSERT INTO speeds SELECT e.sensor, 1.0, e.count, '2024', '01', '01', '01' FROM events e, events f, events g",
    )
    deadline = time.monotonic() + 10
    while (
        athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"] == "QUEUED"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.3)  # well into the join
    athena.stop_query_execution(QueryExecutionId=query_id)
    execution = wait_for_query(athena, query_id)
    assert execution["Status"]["State"] == "CANCELLED"
    assert execution["Status"]["StateChangeReason"] == "Query was cancelled by the user"
    assert keys_under(s3, "speeds/") == []
    assert events.client("glue").get_partitions(DatabaseName="db", TableName="speeds")["Partitions"] == []


def test_stop_before_the_query_runs_cancels_it(lake, monkeypatch):
    monkeypatch.setenv("LOCALAWS_ATHENA_MIN_SECONDS", "5")
    athena = lake.client("athena")
    query_id = start(athena, "SELECT 1")
    athena.stop_query_execution(QueryExecutionId=query_id)
    started = time.monotonic()
    assert wait_for_query(athena, query_id)["Status"]["State"] == "CANCELLED"
    assert time.monotonic() - started < 2
    assert "Contents" not in lake.client("s3").list_objects_v2(Bucket="lake", Prefix="athena-results/")


# -- workgroups, listing, batch get -----------------------------------------------------


def test_workgroups_and_their_output_location(lake):
    athena = lake.client("athena")
    with pytest.raises(athena.exceptions.InvalidRequestException, match="No output location provided"):
        athena.start_query_execution(QueryString="SELECT 1", WorkGroup="primary")
    assert athena.get_work_group(WorkGroup="primary")["WorkGroup"]["State"] == "ENABLED"
    athena.create_work_group(
        Name="wg", Configuration={"ResultConfiguration": {"OutputLocation": "s3://lake/wg-results/"}}
    )
    with pytest.raises(athena.exceptions.InvalidRequestException, match="already created"):
        athena.create_work_group(Name="wg")
    assert sorted(w["Name"] for w in athena.list_work_groups()["WorkGroups"]) == ["primary", "wg"]
    query_id = athena.start_query_execution(QueryString="SELECT 1 AS one", WorkGroup="wg")["QueryExecutionId"]
    execution = wait_for_query(athena, query_id)
    assert execution["WorkGroup"] == "wg"
    assert execution["ResultConfiguration"]["OutputLocation"] == f"s3://lake/wg-results/{query_id}.csv"
    assert keys_under(lake.client("s3"), "wg-results/") == [f"wg-results/{query_id}.csv"]
    # a query's own output location wins unless the workgroup enforces its own
    own = athena.start_query_execution(
        QueryString="SELECT 1", WorkGroup="wg", ResultConfiguration={"OutputLocation": "s3://lake/mine/"}
    )["QueryExecutionId"]
    assert wait_for_query(athena, own)["ResultConfiguration"]["OutputLocation"].startswith("s3://lake/mine/")
    athena.delete_work_group(WorkGroup="wg")
    with pytest.raises(athena.exceptions.InvalidRequestException, match="not found"):
        athena.get_work_group(WorkGroup="wg")
    with pytest.raises(athena.exceptions.InvalidRequestException):
        athena.start_query_execution(QueryString="SELECT 1", WorkGroup="wg")
    with pytest.raises(athena.exceptions.InvalidRequestException):
        athena.delete_work_group(WorkGroup="primary")


def test_batch_get_and_list_query_executions(lake):
    athena = lake.client("athena")
    ids = [start(athena, f"SELECT {n}") for n in range(3)]
    for query_id in ids:
        wait_for_query(athena, query_id)
    batch = athena.batch_get_query_execution(QueryExecutionIds=[*ids, "missing"])
    assert sorted(q["QueryExecutionId"] for q in batch["QueryExecutions"]) == sorted(ids)
    assert {q["Status"]["State"] for q in batch["QueryExecutions"]} == {"SUCCEEDED"}
    assert [u["QueryExecutionId"] for u in batch["UnprocessedQueryExecutionIds"]] == ["missing"]
    first = athena.list_query_executions(MaxResults=2)
    rest = athena.list_query_executions(MaxResults=2, NextToken=first["NextToken"])
    assert first["QueryExecutionIds"] + rest["QueryExecutionIds"] == ids[::-1]  # newest first
    assert "NextToken" not in rest
    with pytest.raises(athena.exceptions.InvalidRequestException):
        athena.get_query_execution(QueryExecutionId="missing")


def test_catalog_metadata_comes_from_glue(events):
    athena = events.client("athena")
    assert [d["Name"] for d in athena.list_databases(CatalogName="AwsDataCatalog")["DatabaseList"]] == ["db"]
    metadata = athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="db", TableName="speeds")
    table = metadata["TableMetadata"]
    assert [c["Name"] for c in table["Columns"]] == ["sensor", "speed", "n"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["year", "month", "day", "hour"]
    assert table["Parameters"]["location"] == "s3://lake/speeds/"
    listed = athena.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="db")["TableMetadataList"]
    assert sorted(t["Name"] for t in listed) == ["events", "speeds"]
    with pytest.raises(athena.exceptions.MetadataException):
        athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="db", TableName="missing")


# -- DDL on the Glue catalog ------------------------------------------------------------


def test_create_external_table_reads_the_whole_ddl(lake):
    athena, glue = lake.client("athena"), lake.client("glue")
    execution = succeeded(
        athena,
        """-- a comment before the statement
        CREATE EXTERNAL TABLE IF NOT EXISTS db.readings (
          `id` string COMMENT 'the reading',
          amount decimal(10,2),
          tags array<string>
        )
        PARTITIONED BY (dt string)
        ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe'
        WITH SERDEPROPERTIES ('field.delim' = '|')
        STORED AS TEXTFILE
        LOCATION 's3://lake/readings/'
        TBLPROPERTIES ('skip.header.line.count' = '1', 'has_encrypted_data' = 'false');""",
    )
    assert execution["StatementType"] == "DDL"
    table = glue.get_table(DatabaseName="db", Name="readings")["Table"]
    descriptor = table["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in descriptor["Columns"]] == [
        ("id", "string"),
        ("amount", "decimal(10,2)"),
        ("tags", "array<string>"),
    ]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["dt"]
    assert descriptor["Location"] == "s3://lake/readings/"
    assert descriptor["SerdeInfo"]["Parameters"] == {"field.delim": "|"}
    assert table["Parameters"]["skip.header.line.count"] == "1"
    lake.client("s3").put_object(
        Bucket="lake", Key="readings/dt=1/a.txt", Body=b"id|amount|tags\nr1|2.50|x\n"
    )
    succeeded(athena, "ALTER TABLE readings ADD IF NOT EXISTS PARTITION (dt='1')")
    rows = succeeded(athena, "SELECT id, amount * 2, dt FROM readings")
    assert result_rows(athena, rows["QueryExecutionId"])[1] == ["r1", "5.00", "1"]
    assert succeeded(athena, "CREATE EXTERNAL TABLE IF NOT EXISTS readings (x int) LOCATION 's3://lake/x/'")
    again = run_query(athena, "CREATE EXTERNAL TABLE readings (x int) LOCATION 's3://lake/x/'")
    assert again["Status"]["StateChangeReason"].startswith("ALREADY_EXISTS")


def test_partition_ddl_msck_repair_and_drop_table(events):
    athena, glue = events.client("athena"), events.client("glue")

    def partitions() -> list[tuple[list[str], str]]:
        found = glue.get_partitions(DatabaseName="db", TableName="speeds")["Partitions"]
        return sorted((p["Values"], p["StorageDescriptor"]["Location"]) for p in found)

    succeeded(
        athena,
        "ALTER TABLE speeds ADD PARTITION (year='2024', month='03', day='01', hour='00') "
        "PARTITION (year='2024', month='03', day='01', hour='01') LOCATION 's3://lake/elsewhere/'",
    )
    assert partitions() == [
        (["2024", "03", "01", "00"], "s3://lake/speeds/year=2024/month=03/day=01/hour=00/"),
        (["2024", "03", "01", "01"], "s3://lake/elsewhere/"),
    ]
    duplicate = run_query(
        athena, "ALTER TABLE speeds ADD PARTITION (year='2024', month='03', day='01', hour='00')"
    )
    assert duplicate["Status"]["StateChangeReason"].startswith("ALREADY_EXISTS")
    succeeded(
        athena,
        "ALTER TABLE speeds ADD IF NOT EXISTS PARTITION (year='2024', month='03', day='01', hour='00')",
    )
    succeeded(athena, "ALTER TABLE speeds DROP PARTITION (year='2024', month='03', day='01', hour='00')")
    assert [values for values, _location in partitions()] == [["2024", "03", "01", "01"]]
    missing = run_query(
        athena, "ALTER TABLE speeds DROP PARTITION (year='2024', month='03', day='01', hour='00')"
    )
    assert missing["Status"]["StateChangeReason"].startswith("PARTITION_NOT_FOUND")
    succeeded(
        athena, "ALTER TABLE speeds DROP IF EXISTS PARTITION (year='2024', month='03', day='01', hour='00')"
    )

    succeeded(
        athena,
        "INSERT INTO speeds SELECT sensor, 1.0, count, '2024', '02', '29', partition_3 FROM events "
        "WHERE partition_3 = '07'",
    )
    glue.batch_delete_partition(
        DatabaseName="db", TableName="speeds", PartitionsToDelete=[{"Values": ["2024", "02", "29", "07"]}]
    )
    succeeded(athena, "MSCK REPAIR TABLE speeds")
    assert ["2024", "02", "29", "07"] in [values for values, _location in partitions()]

    succeeded(athena, "DROP TABLE speeds")
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_table(DatabaseName="db", Name="speeds")
    succeeded(athena, "DROP TABLE IF EXISTS speeds")
    assert run_query(athena, "DROP TABLE speeds")["Status"]["StateChangeReason"].startswith("TABLE_NOT_FOUND")
