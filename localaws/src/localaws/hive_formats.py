"""Hive's names, shared by the crawler, the Athena DDL and the query engine: formats, SerDes, types.

One place for the class names a Glue table's StorageDescriptor carries, the SerDe
parameters a DDL clause sets, how a column type is spelled in Glue and how a Glue (Hive)
column type is read in DuckDB.
"""

from __future__ import annotations

from sqlglot import exp

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

# ``ROW FORMAT DELIMITED`` clause (its argument in sqlglot's RowFormatDelimitedProperty)
# -> the LazySimpleSerDe parameter Hive stores it as
DELIMITED_SERDE_PARAMETERS = {
    "fields": "field.delim",  # FIELDS TERMINATED BY
    "escaped": "escape.delim",  # ESCAPED BY
    "collection_items": "collection.delim",  # COLLECTION ITEMS TERMINATED BY
    "map_keys": "mapkey.delim",  # MAP KEYS TERMINATED BY
    "lines": "line.delim",  # LINES TERMINATED BY
    "null": "serialization.null.format",  # NULL DEFINED AS
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


NESTED = {exp.DataType.Type.ARRAY: "array", exp.DataType.Type.MAP: "map", exp.DataType.Type.STRUCT: "struct"}


def glue_column_type(data_type: exp.DataType) -> str:
    """A DDL column type as Glue stores it: Hive's lower-case name, no spaces.

    ``decimal(10,2)``, ``array<string>``, ``struct<a:int,b:string>`` (sqlglot's Hive writer
    spaces them out: ``DECIMAL(10, 2)``, ``STRUCT<a: INT, ...>``).
    """
    kind, inner = data_type.this, data_type.expressions
    if kind == exp.DataType.Type.STRUCT:
        fields = (f"{field.name.lower()}:{glue_column_type(field.args['kind'])}" for field in inner)
        return f"struct<{','.join(fields)}>"
    if kind in NESTED:
        return f"{NESTED[kind]}<{','.join(glue_column_type(item) for item in inner)}>"
    return data_type.sql(dialect="hive").lower().replace(", ", ",")  # decimal(10, 2)
