"""Hive's names, shared by the crawler, the Athena DDL and the query engine: formats, SerDes, types.

One place for the class names a Glue table's StorageDescriptor carries and for how a
Glue (Hive) column type is read in DuckDB.
"""

from __future__ import annotations

TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
LAZY_SIMPLE_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"

# ``STORED AS <name>`` -> (input format, output format, SerDe)
STORED_AS = {
    "PARQUET": (PARQUET_INPUT, PARQUET_OUTPUT, PARQUET_SERDE),
    "TEXTFILE": (TEXT_INPUT, TEXT_OUTPUT, LAZY_SIMPLE_SERDE),
}

GLUE_TO_DUCKDB = {
    "string": "VARCHAR",
    "varchar": "VARCHAR",
    "char": "VARCHAR",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "integer": "INTEGER",
    "smallint": "SMALLINT",
    "tinyint": "TINYINT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "real": "FLOAT",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
    "binary": "BLOB",
}


def duckdb_type(glue_type: str) -> str:
    """The DuckDB type a Glue column type is read as (complex types stay text)."""
    glue_type = glue_type.strip().lower()
    if glue_type.startswith("decimal"):
        return glue_type.upper()
    if glue_type.startswith(("varchar", "char")):
        return "VARCHAR"
    return GLUE_TO_DUCKDB.get(glue_type, "VARCHAR")
