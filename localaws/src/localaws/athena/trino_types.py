"""Trino's typing rules, where DuckDB is more lenient than Athena's engine.

DuckDB coerces freely where Trino (Athena engine version 3) refuses, so a query can pass
offline and fail on Athena. The rules enforced here are the ones the project's queries
could trip over:

* no implicit varchar <-> number coercion: ``day = 2`` on a string column, ``n = '3'``
  on a number, ``'3' + 1``, ``day BETWEEN 1 AND 3`` and ``day IN (1, 2)`` fail with
  ``TYPE_MISMATCH`` as in Trino (DuckDB would cast the string);
* nor varchar <-> date/timestamp: ``DATE '2024-02-02' > '2024-02-01'`` fails (Trino wants
  ``DATE '2024-02-01'``; DuckDB would cast the string);
* ``CAST(varchar AS tinyint|smallint|integer|bigint)`` accepts only an optionally signed
  run of digits, as Trino's ``Long.parseLong``; ``CAST('12.5' AS integer)`` fails with
  ``INVALID_CAST_ARGUMENT`` (DuckDB rounds it to 13) and ``TRY_CAST`` gives NULL;
* ``CAST(double AS integer)`` rounds half away from zero, as Trino (DuckDB rounds half
  to even);
* INSERT coerces a query column to the table's column type only where Trino's
  ``TypeCoercion.canCoerce`` does (integer -> bigint -> double, decimal -> double, ...);
  varchar into bigint, double into bigint, ... fail with ``TYPE_MISMATCH``.

Types come from sqlglot's ``annotate_types`` over the statement qualified with the Glue
catalog's schema. An operand whose type sqlglot cannot tell is left to DuckDB.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

from localaws.athena.sql import STRICT_CAST, QueryFailed

if TYPE_CHECKING:
    from localaws.athena.catalog import TableData

DT = exp.DataType.Type
TEXT = {DT.VARCHAR, DT.CHAR, DT.TEXT, DT.NCHAR, DT.NVARCHAR}
NUMBERS = {DT.TINYINT, DT.SMALLINT, DT.INT, DT.BIGINT, DT.FLOAT, DT.DOUBLE, DT.DECIMAL}
INTEGRAL = {DT.TINYINT, DT.SMALLINT, DT.INT, DT.BIGINT}
TEMPORAL = {DT.DATE, DT.DATETIME, DT.TIMESTAMP, DT.TIMESTAMPTZ, DT.TIMESTAMPLTZ, DT.TIME}
# what a varchar never meets without an explicit CAST in Trino
NOT_FROM_TEXT = NUMBERS | TEMPORAL

COMPARISONS = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.NullSafeEQ: "IS NOT DISTINCT FROM",
    exp.NullSafeNEQ: "IS DISTINCT FROM",
}
ARITHMETIC = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/", exp.Mod: "%"}


def _known(node: exp.Expression) -> exp.DataType | None:
    kind = node.type
    if kind is None or kind.this in (DT.UNKNOWN, DT.NULL):
        return None
    return kind


def _trino_name(node: exp.Expression, kind: exp.DataType) -> str:
    """The type as Trino names it in messages (a string literal is ``varchar(<length>)``)."""
    if kind.this in TEXT and isinstance(node, exp.Literal) and node.is_string:
        return f"varchar({len(node.this)})"
    return kind.sql(dialect="trino").lower()


def _text_vs_number(left: exp.Expression, right: exp.Expression) -> bool:
    """A varchar beside a number, date or timestamp: Trino coerces neither way."""
    a, b = _known(left), _known(right)
    if a is None or b is None:
        return False
    return (a.this in TEXT and b.this in NOT_FROM_TEXT) or (a.this in NOT_FROM_TEXT and b.this in TEXT)


def _mismatch(node: exp.Expression) -> str | None:
    """Trino's message for an operation on a varchar and a number (or date), or None."""
    for kind, symbol in COMPARISONS.items():
        if type(node) is kind and _text_vs_number(node.this, node.expression):
            left, right = node.this, node.expression
            return f"Cannot apply operator: {_trino_name(left, left.type)} {symbol} {_trino_name(right, right.type)}"
    for kind, symbol in ARITHMETIC.items():
        if type(node) is kind:
            left, right = node.this, node.expression
            a, b = _known(left), _known(right)
            if a is not None and b is not None and (a.this in TEXT or b.this in TEXT):
                return f"Cannot apply operator: {_trino_name(left, a)} {symbol} {_trino_name(right, b)}"
    if isinstance(node, exp.Between):
        value, low, high = node.this, node.args["low"], node.args["high"]
        if _text_vs_number(value, low) or _text_vs_number(value, high):
            names = [_trino_name(n, n.type) for n in (value, low, high)]
            return f"Cannot check if {names[0]} is BETWEEN {names[1]} and {names[2]}"
    if isinstance(node, exp.In) and not node.args.get("query"):
        if any(_text_vs_number(node.this, item) for item in node.expressions):
            return f"IN value and list items must be the same type: {_trino_name(node.this, node.this.type)}"
    return None


def _glue_type_sql(glue_type: str) -> str:
    """A Glue (Hive) column type as sqlglot reads it; a type it cannot read is unknown."""
    try:
        return exp.DataType.build(glue_type, dialect="hive").sql(dialect="athena")
    except SqlglotError:
        return "UNKNOWN"


def catalog_schema(tables: dict[tuple[str, str], TableData]) -> dict[str, dict[str, dict[str, str]]]:
    """``{database: {table: {column: type}}}`` for sqlglot, partition keys included."""
    schema: dict[str, dict[str, dict[str, str]]] = {}
    for (database, name), table in tables.items():
        columns = {column: _glue_type_sql(kind) for column, kind in table.columns + table.partition_keys}
        schema.setdefault(database, {})[name] = columns
    return schema


def check_types(tree: exp.Expression, schema: dict, database: str | None) -> None:
    """Fail the query where Trino's type rules reject it; mark the casts Trino does differently.

    ``tree`` itself is only annotated through ``meta`` (its Cast nodes get ``STRICT_CAST``);
    the analysis runs on a qualified copy.
    """
    casts = list(tree.find_all(exp.Cast))
    for number, cast in enumerate(casts):
        cast.meta["cast_number"] = number
    try:
        typed = annotate_types(
            qualify(
                tree.copy(), schema=schema, db=database, dialect="athena", validate_qualify_columns=False
            ),
            schema=schema,
            dialect="athena",
        )
    except SqlglotError:
        return  # a statement sqlglot cannot qualify: DuckDB's binder reports what is wrong
    for node in typed.walk():
        message = _mismatch(node)
        if message:
            raise QueryFailed(f"TYPE_MISMATCH: {message}")
        if isinstance(node, exp.Cast) and "cast_number" in node.meta:
            target, operand = node.to.this, _known(node.this)
            if target in INTEGRAL and operand is not None:
                if operand.this in TEXT:
                    casts[node.meta["cast_number"]].meta[STRICT_CAST] = "text"
                elif operand.this in (DT.DOUBLE, DT.FLOAT):
                    casts[node.meta["cast_number"]].meta[STRICT_CAST] = "round"


# -- INSERT: Trino's TypeCoercion.canCoerce on the query's and the table's column types ----

INTEGER_WIDTH = {"tinyint": 3, "smallint": 5, "integer": 10, "bigint": 19}
WIDER = {
    "tinyint": {"smallint", "integer", "bigint", "real", "double"},
    "smallint": {"integer", "bigint", "real", "double"},
    "integer": {"bigint", "real", "double"},
    "bigint": {"real", "double"},
    "real": {"double"},
    "decimal": {"real", "double"},
    "date": {"timestamp", "timestamp with time zone"},
    "timestamp": {"timestamp with time zone"},
    "char": {"varchar"},
}
DECIMAL = re.compile(r"decimal\((\d+),\s*(\d+)\)")


def _base(type_name: str) -> str:
    name = type_name.strip().lower()
    if name.startswith("decimal"):
        return "decimal"
    if name.startswith(("varchar", "string")):
        return "varchar"
    if name.startswith("char"):
        return "char"
    return {"int": "integer", "float": "real", "hugeint": "bigint"}.get(name, name)


def insert_coercible(query_type: str, table_type: str) -> bool:
    """Whether Trino stores a value of ``query_type`` in a ``table_type`` column without a CAST.

    Both are type names as Trino/Glue spell them (``bigint``, ``decimal(10,2)``, ...);
    ``unknown`` (a bare NULL) goes anywhere, as do nested types (left to the write).
    """
    source, target = _base(query_type), _base(table_type)
    if source in ("unknown", "null") or source.startswith(("array", "map", "row", "struct")):
        return True
    if target == "decimal" and source in (*INTEGER_WIDTH, "decimal"):
        wanted = DECIMAL.match(table_type.strip().lower())
        if not wanted:
            return True
        precision, scale = int(wanted[1]), int(wanted[2])
        if source in INTEGER_WIDTH:
            return precision - scale >= INTEGER_WIDTH[source]
        given = DECIMAL.match(query_type.strip().lower())
        return not given or (scale >= int(given[2]) and precision - scale >= int(given[1]) - int(given[2]))
    return source == target or target in WIDER.get(source, set())
