"""The offline Athena types as strictly as Athena's engine (Trino) where the DAGs could trip.

Each rule has a query Athena rejects (it must fail offline with Athena's reason) and its
valid counterpart (it must still run). DuckDB alone accepts every rejected query here.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from sqlglot import exp

from localaws.athena.sql import STRICT_CAST, QueryFailed
from localaws.athena.trino_types import check_types, insert_coercible
from tests.localaws.conftest import result_rows, run_query

READINGS_DDL = """
CREATE EXTERNAL TABLE readings (sensor string, speed string, n bigint, ratio double)
PARTITIONED BY (day string)
STORED AS PARQUET LOCATION 's3://lake/readings/'
"""
TARGET_DDL = """
CREATE EXTERNAL TABLE totals (sensor string, n bigint, ratio double)
PARTITIONED BY (day string)
STORED AS PARQUET LOCATION 's3://lake/totals/'
"""
SCHEMA = {
    "db": {
        "readings": {
            "sensor": "VARCHAR",
            "speed": "VARCHAR",
            "n": "BIGINT",
            "ratio": "DOUBLE",
            "day": "VARCHAR",
        }
    }
}


@pytest.fixture
def readings(lake):
    """db.readings: partition day='02', speeds as text ('12', '7', '12.5' on sensor c)."""
    s3, athena = lake.client("s3"), lake.client("athena")
    buffer = io.BytesIO()
    table = {
        "sensor": ["a", "b", "c"],
        "speed": ["12", "7", "12.5"],
        "n": [3, 4, 5],
        "ratio": [2.5, -2.5, 0.5],
    }
    pq.write_table(pa.table(table), buffer)
    s3.put_object(Bucket="lake", Key="readings/day=02/data.parquet", Body=buffer.getvalue())
    for ddl in (READINGS_DDL, TARGET_DDL, "MSCK REPAIR TABLE readings"):
        assert run_query(athena, ddl)["Status"]["State"] == "SUCCEEDED"
    return lake


def failed_reason(aws, sql: str) -> str:
    execution = run_query(aws.client("athena"), sql)
    assert execution["Status"]["State"] == "FAILED", f"Athena rejects this query, offline ran it: {sql}"
    return execution["Status"]["StateChangeReason"]


def rows(aws, sql: str) -> list[list[str | None]]:
    athena = aws.client("athena")
    execution = run_query(athena, sql)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    return result_rows(athena, execution["QueryExecutionId"])[1:]


# -- no implicit varchar <-> number coercion -----------------------------------------------


@pytest.mark.parametrize(
    ("rejected", "reason", "valid", "answer"),
    [
        (
            "SELECT count(*) FROM readings WHERE day = 2",
            "TYPE_MISMATCH: Cannot apply operator: varchar = integer",
            "SELECT count(*) FROM readings WHERE day = '02'",
            [["3"]],
        ),
        (
            "SELECT sensor FROM readings WHERE n = '3'",
            "TYPE_MISMATCH: Cannot apply operator: bigint = varchar(1)",
            "SELECT sensor FROM readings WHERE n = 3",
            [["a"]],
        ),
        (
            "SELECT sensor FROM readings WHERE speed + 1 > 10 AND sensor <> 'c'",
            "TYPE_MISMATCH: Cannot apply operator: varchar + integer",
            "SELECT sensor FROM readings WHERE CAST(speed AS double) + 1 > 10 ORDER BY sensor",
            [["a"], ["c"]],
        ),
        (
            "SELECT count(*) FROM readings WHERE day BETWEEN 1 AND 3",
            "TYPE_MISMATCH: Cannot check if varchar is BETWEEN integer and integer",
            "SELECT count(*) FROM readings WHERE CAST(day AS integer) BETWEEN 1 AND 3",
            [["3"]],
        ),
        (
            "SELECT count(*) FROM readings WHERE DATE '2024-02-02' > '2024-02-01'",
            "TYPE_MISMATCH: Cannot apply operator: date > varchar(10)",
            "SELECT count(*) FROM readings WHERE DATE '2024-02-02' > DATE '2024-02-01'",
            [["3"]],
        ),
        (
            "SELECT count(*) FROM readings WHERE TIMESTAMP '2024-02-02 00:00:00' BETWEEN '2024-02-01' AND '2024-02-03'",
            # a literal without fractional seconds is timestamp(0) in Trino
            "TYPE_MISMATCH: Cannot check if timestamp(0) is BETWEEN varchar(10) and varchar(10)",
            "SELECT count(*) FROM readings WHERE TIMESTAMP '2024-02-02 00:00:00' "
            "BETWEEN TIMESTAMP '2024-02-01 00:00:00' AND TIMESTAMP '2024-02-03 00:00:00'",
            [["3"]],
        ),
        (
            "SELECT count(*) FROM readings WHERE day IN (1, 2)",
            "TYPE_MISMATCH: IN value and list items must be the same type: varchar",
            "SELECT count(*) FROM readings WHERE day IN ('01', '02')",
            [["3"]],
        ),
    ],
)
def test_varchar_and_numbers_or_dates_never_coerce_implicitly(readings, rejected, reason, valid, answer):
    assert failed_reason(readings, rejected) == reason
    assert rows(readings, valid) == answer


def test_a_rejected_comparison_on_a_partition_column_reads_nothing(readings):
    execution = run_query(readings.client("athena"), "SELECT * FROM readings WHERE day = 2")
    assert execution["Status"]["State"] == "FAILED"
    assert execution["Statistics"]["DataScannedInBytes"] == 0


# -- CAST ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rejected", "reason"),
    [
        ("SELECT CAST('12.5' AS integer)", "INVALID_CAST_ARGUMENT: Cannot cast '12.5' to INT"),
        ("SELECT CAST(' 12' AS bigint)", "INVALID_CAST_ARGUMENT: Cannot cast ' 12' to BIGINT"),
        ("SELECT CAST('1e3' AS smallint)", "INVALID_CAST_ARGUMENT: Cannot cast '1e3' to SMALLINT"),
        (
            "SELECT sum(CAST(speed AS integer)) FROM readings",
            "INVALID_CAST_ARGUMENT: Cannot cast '12.5' to INT",
        ),
    ],
)
def test_a_non_integer_string_cast_to_an_integer_fails(readings, rejected, reason):
    assert failed_reason(readings, rejected) == reason


def test_integer_strings_cast_and_try_cast_gives_null_where_cast_fails(readings):
    assert rows(readings, "SELECT CAST('12' AS integer), CAST('-7' AS bigint), CAST('+3' AS tinyint)") == [
        ["12", "-7", "3"]
    ]
    assert rows(
        readings,
        "SELECT sensor, TRY_CAST(speed AS integer), CAST(speed AS double) FROM readings ORDER BY sensor",
    ) == [["a", "12", "12.0"], ["b", "7", "7.0"], ["c", None, "12.5"]]
    assert rows(readings, "SELECT CAST(NULL AS varchar) IS NULL, CAST(CAST(NULL AS varchar) AS integer)") == [
        ["true", None]
    ]


def test_a_double_cast_to_an_integer_rounds_half_away_from_zero(readings):
    assert rows(readings, "SELECT sensor, CAST(ratio AS integer) FROM readings ORDER BY sensor") == [
        ["a", "3"],
        ["b", "-3"],
        ["c", "1"],
    ]


# -- INSERT --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("select", "query_types"),
    [
        ("SELECT sensor, speed, ratio, day FROM readings", "varchar, varchar, double, varchar"),
        ("SELECT sensor, ratio, ratio, day FROM readings", "varchar, double, double, varchar"),
        ("SELECT sensor, n, ratio, 2 FROM readings", "varchar, bigint, double, integer"),
    ],
)
def test_insert_coerces_only_where_trino_does(readings, select, query_types):
    reason = failed_reason(readings, f"INSERT INTO totals {select}")
    assert reason == (
        "TYPE_MISMATCH: Insert query has mismatched column types: "
        f"Table: [string, bigint, double, string], Query: [{query_types}]"
    )
    assert readings.client("s3").list_objects_v2(Bucket="lake", Prefix="totals/").get("KeyCount", 0) == 0


def test_insert_widens_integers_and_decimals_as_trino_does(readings):
    # integer -> bigint, bigint -> double; then NULL -> bigint, decimal(2,1) -> double
    assert rows(readings, "INSERT INTO totals SELECT sensor, CAST(n AS integer), n, day FROM readings") == [
        ["3"]
    ]
    assert rows(readings, "INSERT INTO totals SELECT 'z', NULL, 1.5, '03'") == [["1"]]
    assert rows(readings, "SELECT sensor, n, ratio, day FROM totals ORDER BY sensor") == [
        ["a", "3", "3.0", "02"],
        ["b", "4", "4.0", "02"],
        ["c", "5", "5.0", "02"],
        ["z", None, "1.5", "03"],
    ]


# -- pure pieces -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query_type", "table_type", "coercible"),
    [
        ("integer", "bigint", True),
        ("tinyint", "integer", True),
        ("bigint", "double", True),
        ("real", "double", True),
        ("decimal(2,1)", "double", True),
        ("decimal(5,2)", "decimal(10,2)", True),
        ("integer", "decimal(10,0)", True),
        ("date", "timestamp", True),
        ("unknown", "bigint", True),
        ("varchar", "string", True),
        ("bigint", "integer", False),
        ("double", "bigint", False),
        ("varchar", "bigint", False),
        ("bigint", "string", False),
        ("decimal(10,2)", "decimal(5,2)", False),
        ("decimal(5,2)", "decimal(10,1)", False),
        ("integer", "decimal(9,0)", False),
        ("double", "decimal(10,2)", False),
        ("boolean", "integer", False),
        ("timestamp", "date", False),
    ],
)
def test_insert_coercion_follows_trinos_can_coerce(query_type, table_type, coercible):
    assert insert_coercible(query_type, table_type) is coercible


def test_casts_from_text_to_integers_are_marked_and_others_are_left_alone():
    tree = sqlglot.parse_one(
        "SELECT CAST(speed AS integer), CAST(n AS integer), CAST(ratio AS bigint), CAST(speed AS double), "
        "TRY_CAST(day AS smallint) FROM readings",
        read="athena",
    )
    check_types(tree, SCHEMA, "db")
    assert [cast.meta.get(STRICT_CAST) for cast in tree.find_all(exp.Cast)] == [
        "text",
        None,
        "round",
        None,
        "text",
    ]


def test_operands_of_unknown_type_are_left_to_duckdb():
    tree = sqlglot.parse_one("SELECT mystery(speed) = 2 FROM readings", read="athena")
    check_types(tree, SCHEMA, "db")  # no verdict without a type: DuckDB's binder decides
    with pytest.raises(QueryFailed, match="varchar = integer"):
        check_types(sqlglot.parse_one("SELECT upper(speed) = 2 FROM readings", read="athena"), SCHEMA, "db")
