"""Athena's SQL (Trino dialect) as DuckDB runs it: parsing, the rewrites sqlglot lacks, types.

sqlglot's ``athena`` reader translates most of Trino to DuckDB. What it leaves alone and
DuckDB cannot run is rewritten here on the syntax tree:

* ``format_datetime(ts, 'yyyy-MM-dd')`` / ``parse_datetime(s, ...)`` take Joda-time
  patterns: translated to ``strftime`` / ``strptime`` patterns;
* ``(a, b) BETWEEN (x, y) AND (z, w)`` and ``(a, b) >= (x, y)`` (row values, a common
  partition filter): DuckDB has no row BETWEEN, so they are spelled out field by field;
* result columns are named as Athena names them: ``_col<N>`` for an expression
  without an alias.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

STRICT_CAST = "trino_strict_cast"  # meta key on a Cast node: "text" (from varchar) or "round"
INTEGER_TEXT = r"[+-]?[0-9]+"  # what Java's Long.parseLong accepts (Trino's varchar -> integer cast)


class QueryFailed(Exception):
    """Ends a query FAILED with this message as its StateChangeReason."""


class QueryCancelled(Exception):
    """Ends a query CANCELLED (StopQueryExecution was called while it ran)."""


DUCKDB_TO_ATHENA = {
    "varchar": "varchar",
    "bigint": "bigint",
    "integer": "integer",
    "smallint": "smallint",
    "tinyint": "tinyint",
    "hugeint": "bigint",
    "ubigint": "bigint",
    "uinteger": "bigint",
    "double": "double",
    "float": "real",
    "boolean": "boolean",
    "timestamp": "timestamp",
    "timestamp with time zone": "timestamp with time zone",
    "date": "date",
    "time": "time",
    "blob": "varbinary",
    "interval": "interval day to second",
}


def athena_type(duckdb_type_name: str) -> str:
    """The type name Athena's ResultSetMetadata gives for a DuckDB result column."""
    name = duckdb_type_name.lower()
    if name.startswith("decimal"):
        return "decimal"
    if name.endswith("[]"):
        return "array"
    if name.startswith("struct"):
        return "row"
    if name.startswith("map"):
        return "map"
    return DUCKDB_TO_ATHENA.get(name, "varchar")


def result_value_sql(column: str, duckdb_type_name: str) -> str:
    """SQL rendering one result value as Athena's CSV does (timestamps with milliseconds)."""
    name = duckdb_type_name.lower()
    if name == "timestamp":
        return f"strftime({column}, '%Y-%m-%d %H:%M:%S.%g')"
    if name == "timestamp with time zone":
        return f"strftime({column}, '%Y-%m-%d %H:%M:%S.%g') || ' UTC'"
    return column


# -- Joda-time patterns (format_datetime, parse_datetime) -> strftime patterns ------------

JODA_TO_STRFTIME = {
    "yyyy": "%Y",
    "YYYY": "%Y",
    "yy": "%y",
    "MMMM": "%B",
    "MMM": "%b",
    "MM": "%m",
    "M": "%-m",
    "dd": "%d",
    "d": "%-d",
    "HH": "%H",
    "H": "%-H",
    "hh": "%I",
    "h": "%-I",
    "mm": "%M",
    "m": "%-M",
    "ss": "%S",
    "s": "%-S",
    "SSS": "%g",
    "SSSSSS": "%f",
    "a": "%p",
    "EEEE": "%A",
    "EEE": "%a",
    "E": "%a",
    "DDD": "%j",
    "D": "%-j",
    "Z": "%z",
    "ZZ": "%z",
    "z": "%Z",
}


def joda_to_strftime(pattern: str) -> str:
    """``yyyy-MM-dd'T'HH`` -> ``%Y-%m-%dT%H``; fails on a letter run it cannot translate."""
    result, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if char == "'":
            end = pattern.find("'", index + 1)
            if end == -1:
                raise QueryFailed(f"INVALID_FUNCTION_ARGUMENT: unterminated quote in pattern {pattern!r}")
            literal = pattern[index + 1 : end]
            result.append("'" if not literal else literal.replace("%", "%%"))
            index = end + 1
        elif char.isalpha():
            end = index
            while end < len(pattern) and pattern[end] == char:
                end += 1
            run = pattern[index:end]
            if run not in JODA_TO_STRFTIME:
                raise QueryFailed(
                    f"INVALID_FUNCTION_ARGUMENT: pattern letters {run!r} of {pattern!r} are not supported"
                )
            result.append(JODA_TO_STRFTIME[run])
            index = end
        else:
            result.append("%%" if char == "%" else char)
            index += 1
    return "".join(result)


def _joda_format(node: exp.Expression) -> exp.Expression:
    if not isinstance(node, exp.Literal) or not node.is_string:
        raise QueryFailed("NOT_SUPPORTED: only constant Joda-time patterns are supported offline")
    return exp.Literal.string(joda_to_strftime(node.this))


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Cast) and node.meta.get(STRICT_CAST):
        return strict_cast(node)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "format_datetime":
        value, pattern = node.expressions
        return exp.Anonymous(this="strftime", expressions=[value, _joda_format(pattern)])
    if isinstance(node, exp.ParseDatetime):
        return exp.Anonymous(this="strptime", expressions=[node.this, _joda_format(node.args["format"])])
    if isinstance(node, exp.Between) and isinstance(node.this, exp.Tuple):
        low, high = node.args["low"], node.args["high"]
        return exp.paren(
            exp.and_(_row_order(node.this, low, exp.GT, True), _row_order(node.this, high, exp.LT, True))
        )
    for comparison, strict_kind, inclusive in ROW_ORDERINGS:
        if isinstance(node, comparison) and isinstance(node.this, exp.Tuple):
            return _row_order(node.this, node.expression, strict_kind, inclusive)
    return node


ROW_ORDERINGS = (
    (exp.GTE, exp.GT, True),
    (exp.GT, exp.GT, False),
    (exp.LTE, exp.LT, True),
    (exp.LT, exp.LT, False),
)


def _row_order(
    left: exp.Expression, right: exp.Expression, strict_kind: type[exp.Expression], inclusive: bool
) -> exp.Expression:
    """``(a, b) >= (x, y)`` spelled out field by field: ``a > x OR (a = x AND b >= y)``.

    DuckDB compares rows, but folds ``row >= x AND row <= y`` into a BETWEEN it then
    rejects for rows, so row orderings never reach it as such.
    """
    if not isinstance(right, exp.Tuple) or len(right.expressions) != len(left.expressions):
        raise QueryFailed("TYPE_MISMATCH: a row value can only be compared with a row of the same size")
    pairs = list(zip(left.expressions, right.expressions, strict=True))
    last_left, last_right = pairs[-1]
    last_kind = {(exp.GT, True): exp.GTE, (exp.LT, True): exp.LTE}.get((strict_kind, inclusive), strict_kind)
    result: exp.Expression = last_kind(this=last_left.copy(), expression=last_right.copy())
    for field, bound in reversed(pairs[:-1]):
        result = exp.or_(
            strict_kind(this=field.copy(), expression=bound.copy()),
            exp.and_(exp.EQ(this=field.copy(), expression=bound.copy()), exp.paren(result)),
        )
    return exp.paren(result)


def strict_cast(node: exp.Cast) -> exp.Expression:
    """The DuckDB form of a cast ``athena_types.check_types`` marked: Trino's rules (see there)."""
    target = node.to
    if node.meta.get(STRICT_CAST) == "round":
        return exp.Cast(
            this=exp.Anonymous(this="round", expressions=[node.this.transform(_rewrite)]), to=target.copy()
        )
    value = node.this.transform(_rewrite)
    trying = isinstance(node, exp.TryCast)
    matches = exp.Anonymous(
        this="regexp_full_match", expressions=[value.copy(), exp.Literal.string(INTEGER_TEXT)]
    )
    converted = (exp.TryCast if trying else exp.Cast)(this=value.copy(), to=target.copy())
    if trying:
        otherwise: exp.Expression = exp.null()
    else:
        text = "INVALID_CAST_ARGUMENT: Cannot cast '"
        message = exp.DPipe(
            this=exp.DPipe(this=exp.Literal.string(text), expression=value.copy()),
            expression=exp.Literal.string(f"' to {target.this.name}"),
        )
        otherwise = exp.Anonymous(this="error", expressions=[message])
    return exp.Case(
        ifs=[
            exp.If(this=exp.Is(this=value.copy(), expression=exp.null()), true=exp.null()),
            exp.If(this=matches, true=converted),
        ],
        default=otherwise,
    )


def parse(sql: str) -> exp.Expression:
    """The statement's syntax tree; a parse error fails the query with SYNTAX_ERROR."""
    try:
        statements = sqlglot.parse(sql, read="athena")
    except sqlglot.errors.ParseError as error:
        first = error.errors[0] if error.errors else {}
        where = f"line {first.get('line', 1)}:{first.get('col', 1)}: " if first else ""
        raise QueryFailed(f"SYNTAX_ERROR: {where}{first.get('description', str(error))}") from error
    statements = [s for s in statements if s is not None]
    if len(statements) != 1:
        raise QueryFailed("SYNTAX_ERROR: only one statement per query is allowed")
    return statements[0]


def to_duckdb(tree: exp.Expression) -> str:
    """DuckDB SQL for an Athena syntax tree (the tree is not modified)."""
    return tree.copy().transform(_rewrite).sql(dialect="duckdb")


def name_result_columns(query: exp.Expression) -> None:
    """Alias the outermost projection's unnamed expressions ``_col<N>``, as Athena names them.

    Columns and aliased expressions keep their names (lower-cased with the result).
    """
    select = query
    while isinstance(select, exp.SetOperation):
        select = select.this
    if isinstance(select, exp.Subquery):
        select = select.unnest()
    if not isinstance(select, exp.Select):
        return
    for position, projection in enumerate(list(select.expressions)):
        if not isinstance(projection, exp.Star | exp.Column | exp.Alias | exp.Dot):
            projection.replace(exp.alias_(projection.copy(), f"_col{position}", quoted=True))
