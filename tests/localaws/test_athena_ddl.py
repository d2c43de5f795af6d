"""Athena's Hive DDL read with sqlglot: what each clause becomes in Glue, and the errors.

The parsing tests need no stack (``parse_ddl`` and ``table_input`` are pure); the last ones
run the DDL through the offline Athena to see it land in the Glue catalog and be queried.
"""

from __future__ import annotations

import pytest

from localaws.athena.ddl import table_input
from localaws.athena.ddl_grammar import RepairTable, parse_ddl
from localaws.athena.sql import QueryFailed
from localaws.hive_formats import JSON_SERDE, LAZY_SIMPLE_SERDE, PARQUET_INPUT, PARQUET_SERDE
from tests.localaws.conftest import result_rows, run_query


def glue_table(sql: str) -> dict:
    return table_input(parse_ddl(sql))


def failure(sql: str) -> str:
    with pytest.raises(QueryFailed) as failed:
        statement = parse_ddl(sql)
        table_input(statement)
    return str(failed.value)


# -- CREATE EXTERNAL TABLE: each clause in Glue's TableInput -------------------------------


def test_comments_nested_types_serde_and_table_properties():
    table = glue_table(
        """CREATE EXTERNAL TABLE IF NOT EXISTS db.Readings (
          `ID` string COMMENT 'the reading',
          amount decimal(10, 2),
          tags array<string>,
          attributes map<string,int>,
          position struct<Lat:double, lon:double>
        )
        COMMENT 'one row per reading'
        PARTITIONED BY (dt string COMMENT 'day of the reading')
        ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe'
        WITH SERDEPROPERTIES ('field.delim' = '|', 'serialization.null.format' = '')
        STORED AS TEXTFILE
        LOCATION 's3://lake/readings/'
        TBLPROPERTIES ('skip.header.line.count' = '1', 'classification' = 'csv')"""
    )
    descriptor = table["StorageDescriptor"]
    assert table["Name"] == "readings"
    assert descriptor["Columns"] == [
        {"Name": "id", "Type": "string", "Comment": "the reading"},
        {"Name": "amount", "Type": "decimal(10,2)"},
        {"Name": "tags", "Type": "array<string>"},
        {"Name": "attributes", "Type": "map<string,int>"},
        {"Name": "position", "Type": "struct<lat:double,lon:double>"},
    ]
    assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string", "Comment": "day of the reading"}]
    assert descriptor["SerdeInfo"] == {
        "SerializationLibrary": LAZY_SIMPLE_SERDE,
        "Parameters": {"field.delim": "|", "serialization.null.format": ""},
    }
    assert table["Parameters"] == {
        "EXTERNAL": "TRUE",
        "comment": "one row per reading",
        "skip.header.line.count": "1",
        "classification": "csv",
    }


def test_row_format_delimited_sets_lazy_simple_serde_parameters():
    table = glue_table(
        "CREATE EXTERNAL TABLE t (a string, b array<string>, c map<string,string>) "
        "ROW FORMAT DELIMITED FIELDS TERMINATED BY ';' ESCAPED BY '\\\\' "
        "COLLECTION ITEMS TERMINATED BY '|' MAP KEYS TERMINATED BY ':' LINES TERMINATED BY '\\n' "
        "NULL DEFINED AS 'NA' LOCATION 's3://lake/t/'"
    )
    assert table["StorageDescriptor"]["SerdeInfo"] == {
        "SerializationLibrary": LAZY_SIMPLE_SERDE,
        "Parameters": {
            "field.delim": ";",
            "escape.delim": "\\",
            "collection.delim": "|",
            "mapkey.delim": ":",
            "line.delim": "\n",
            "serialization.null.format": "NA",
        },
    }
    assert table["Parameters"]["classification"] == "csv"


def test_stored_as_parquet_and_the_json_serde_set_formats_and_classification():
    parquet = glue_table("CREATE EXTERNAL TABLE t (a int) STORED AS PARQUET LOCATION 's3://lake/t/'")
    assert parquet["StorageDescriptor"]["InputFormat"] == PARQUET_INPUT
    assert parquet["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert parquet["Parameters"]["classification"] == "parquet"
    json = glue_table(
        f"CREATE EXTERNAL TABLE t (a int) PARTITIONED BY (y int) ROW FORMAT SERDE '{JSON_SERDE}' "
        "LOCATION 's3://lake/t/'"
    )
    assert json["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == JSON_SERDE
    assert json["Parameters"]["classification"] == "json"
    assert json["PartitionKeys"] == [{"Name": "y", "Type": "int"}]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("CREATE EXTERNAL TABLE t (a int) STORED AS ORC LOCATION 's3://x/'", "NOT_SUPPORTED: STORED AS ORC"),
        (
            "CREATE EXTERNAL TABLE t (a int) STORED AS INPUTFORMAT 'a.In' OUTPUTFORMAT 'a.Out' LOCATION 's3://x/'",
            "NOT_SUPPORTED: STORED AS INPUTFORMAT 'a.In' OUTPUTFORMAT 'a.Out'",
        ),
        (
            "CREATE EXTERNAL TABLE t (a int) CLUSTERED BY (a) INTO 4 BUCKETS LOCATION 's3://x/'",
            "NOT_SUPPORTED: CLUSTERED BY (a) INTO 4 BUCKETS is not emulated offline",
        ),
        (
            "CREATE EXTERNAL TABLE t (a int NOT NULL) LOCATION 's3://x/'",
            "NOT_SUPPORTED: column constraint NOT NULL",
        ),
        ("CREATE EXTERNAL TABLE t (a int)", "SYNTAX_ERROR: CREATE EXTERNAL TABLE needs a LOCATION"),
        (
            "CREATE EXTERNAL TABLE t LOCATION 's3://x/'",
            "SYNTAX_ERROR: CREATE EXTERNAL TABLE needs a column list",
        ),
        (
            "CREATE EXTERNAL TABLE t (a int) PARTITIONED BY (b) LOCATION 's3://x/'",
            "SYNTAX_ERROR: column 'b' needs a type",
        ),
        (
            "CREATE EXTERNAL TABLE t (a int) PARTITIONED BY b LOCATION 's3://x/'",
            "SYNTAX_ERROR: PARTITIONED BY needs a column list",
        ),
        (
            "CREATE EXTERNAL TABLE t (a strin) LOCATION 's3://x/'",
            "SYNTAX_ERROR: line 1:32: Expecting ) near 'strin'",
        ),
        (
            "CREATE EXTERNAL TABLE t (a int) LOCATION s3://x/",
            "SYNTAX_ERROR: line 1:44: cannot read this CREATE statement near ':'",
        ),
        (
            "CREATE EXTERNAL TABLE t (a int)\nLOCATION 's3://x/' STORED",
            "SYNTAX_ERROR: STORED AS needs a file format",
        ),
        (
            "CREATE EXTERNAL TABLE t (a int) LOCATION 's3://x/'; DROP TABLE t",
            "SYNTAX_ERROR: only one statement per query is allowed",
        ),
    ],
)
def test_what_cannot_be_read_or_emulated_fails_naming_the_problem(sql, reason):
    assert failure(sql) == reason


# -- the other statements ------------------------------------------------------------------


def test_msck_repair_and_multi_partition_add_read_as_syntax_trees():
    repair = parse_ddl("msck repair table db.`Hourly`")
    assert isinstance(repair, RepairTable)
    assert (repair.this.db, repair.this.name) == ("db", "Hourly")
    alter = parse_ddl(
        "ALTER TABLE raw ADD IF NOT EXISTS PARTITION (y=2024, m='01') LOCATION 's3://lake/raw/2024/01/' "
        "PARTITION (y=2024, m='02')"
    )
    added = alter.args["actions"]
    assert [a.args["exists"] for a in added] == [True, True]
    assert [a.this.sql(dialect="hive") for a in added] == [
        "PARTITION(y = 2024, m = '01')",
        "PARTITION(y = 2024, m = '02')",
    ]
    assert [a.args.get("location") and a.args["location"].name for a in added] == [
        "s3://lake/raw/2024/01/",
        None,
    ]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("MSCK REPAIR TABLE", "SYNTAX_ERROR: line 1:17: Expected table name near 'TABLE'"),
        (
            "MSCK REPAIR TABLE t extra",
            "SYNTAX_ERROR: line 1:25: Invalid expression / Unexpected token near 'extra'",
        ),
        ("DROP TABLE", "SYNTAX_ERROR: line 1:10: Expected table name near 'TABLE'"),
        (
            # Hive separates the partitions of a DROP with commas (and those of an ADD without)
            "ALTER TABLE t DROP PARTITION (a='1') PARTITION (a='2')",
            "SYNTAX_ERROR: line 1:46: cannot read this ALTER statement near 'PARTITION'",
        ),
    ],
)
def test_unreadable_statements_fail_with_where_sqlglot_stopped(sql, reason):
    with pytest.raises(QueryFailed, match="^SYNTAX_ERROR") as failed:
        parse_ddl(sql)
    assert str(failed.value) == reason


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "CREATE TABLE t AS SELECT 1 AS a",
        "CREATE VIEW v AS SELECT 1 AS a",
        "DROP VIEW v",
        "INSERT INTO t VALUES (1)",
    ],
)
def test_statements_athena_runs_on_trino_are_left_to_the_query_engine(sql):
    assert parse_ddl(sql) is None


# -- through the offline Athena ------------------------------------------------------------


def succeeded(athena, sql: str) -> dict:
    execution = run_query(athena, sql)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    return execution


def test_if_not_exists_leaves_an_existing_table_as_it_is(lake):
    athena, glue = lake.client("athena"), lake.client("glue")
    succeeded(athena, "CREATE EXTERNAL TABLE t (a string COMMENT 'first') LOCATION 's3://lake/t/'")
    succeeded(
        athena, "CREATE EXTERNAL TABLE IF NOT EXISTS t (b bigint) STORED AS PARQUET LOCATION 's3://lake/u/'"
    )
    table = glue.get_table(DatabaseName="db", Name="t")["Table"]
    assert table["StorageDescriptor"]["Columns"] == [{"Name": "a", "Type": "string", "Comment": "first"}]
    assert table["StorageDescriptor"]["Location"] == "s3://lake/t/"
    again = run_query(athena, "CREATE EXTERNAL TABLE t (b bigint) LOCATION 's3://lake/u/'")
    assert again["Status"]["StateChangeReason"] == "ALREADY_EXISTS: Table db.t already exists"
    metadata = athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="db", TableName="t")
    assert metadata["TableMetadata"]["Columns"] == [{"Name": "a", "Type": "string", "Comment": "first"}]


def test_a_delimited_table_is_queried_with_its_delimiter_and_null_text(lake):
    athena = lake.client("athena")
    lake.client("s3").put_object(Bucket="lake", Key="semi/day=1/a.txt", Body=b"r1;NA;3\nr2;x;4\n")
    succeeded(
        athena,
        "CREATE EXTERNAL TABLE semi (id string, note string, n bigint) PARTITIONED BY (day int) "
        "ROW FORMAT DELIMITED FIELDS TERMINATED BY ';' NULL DEFINED AS 'NA' LOCATION 's3://lake/semi/'",
    )
    succeeded(athena, "MSCK REPAIR TABLE db.semi")
    rows = succeeded(athena, "SELECT id, note, n, day FROM semi ORDER BY id")
    assert result_rows(athena, rows["QueryExecutionId"])[1:] == [
        ["r1", None, "3", "1"],
        ["r2", "x", "4", "1"],
    ]


def test_ddl_errors_are_the_query_state_change_reason(lake):
    athena = lake.client("athena")
    failed = run_query(athena, "CREATE EXTERNAL TABLE t (a int) LOCATION s3://lake/t/")
    assert failed["Status"]["State"] == "FAILED"
    assert (
        failed["Status"]["StateChangeReason"]
        == "SYNTAX_ERROR: line 1:44: cannot read this CREATE statement near ':'"
    )
    renamed = run_query(athena, "ALTER TABLE t RENAME TO u")
    assert renamed["Status"]["StateChangeReason"] == (
        "NOT_SUPPORTED: only ALTER TABLE ADD/DROP PARTITION is emulated offline"
    )
    missing = run_query(athena, "ALTER TABLE nowhere ADD PARTITION (a='1')")
    assert missing["Status"]["StateChangeReason"] == "TABLE_NOT_FOUND: Table db.nowhere does not exist"
