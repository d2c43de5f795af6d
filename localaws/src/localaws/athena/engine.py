"""Running one Athena statement: DDL on the catalog, or SELECT / INSERT INTO in DuckDB.

Every query gets its own in-memory DuckDB connection (TimeZone UTC, built-in extensions
only) and a temporary folder for the S3 files it reads and the files it writes. Nothing
an INSERT writes reaches S3 or the catalog before the whole result is ready and checked
(partition limit, cancellation), so a failed or cancelled INSERT leaves nothing behind;
only the injected fault ``athena_insert_fail_after_files`` leaves part of its files, as
real Athena can. Trino's type rules are checked first (``athena_types.py``).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import duckdb
from sqlglot import exp

from localaws.athena.catalog import (
    TableData,
    fetch_table,
    load_table,
    partition_predicate,
    quote,
    select_partitions,
    sql_string,
)
from localaws.athena.ddl import run_ddl
from localaws.athena.sql import (
    QueryCancelled,
    QueryFailed,
    athena_type,
    name_result_columns,
    parse,
    result_value_sql,
    to_duckdb,
)
from localaws.athena.trino_types import catalog_schema, check_types, insert_coercible
from localaws.hive_formats import duckdb_type
from localaws.s3io import split_s3_uri

if TYPE_CHECKING:
    from localaws.athena.query import EngineClients, Query

log = logging.getLogger("localaws.athena")

MAX_OPEN_PARTITIONS = 100
TOO_MANY_PARTITIONS = (
    "HIVE_TOO_MANY_OPEN_PARTITIONS: Exceeded limit of 100 open writers for partitions/buckets"
)
UPLOAD_THREADS = 4
INSERT_FAULT_REASON = "GENERIC_INTERNAL_ERROR: Error committing write to Hive"
# Hive's FileUtils.escapePathName: the characters a partition folder name escapes
HIVE_ESCAPED = set("\"#%'*/:=?\\\x7f{[]^") | {chr(c) for c in range(1, 32)}


def strip_leading_comments(sql: str) -> str:
    """Drop the ``-- ...`` and ``/* ... */`` comments before the statement's first keyword."""
    return re.sub(r"\A(\s*(--[^\n]*(\n|\Z)|/\*.*?\*/))*\s*", "", sql, flags=re.S)


def execute(clients: EngineClients, query: Query) -> None:
    """Run the query to its end; raise QueryFailed or QueryCancelled to end it otherwise."""
    sql = strip_leading_comments(query.sql).rstrip().rstrip(";").strip()
    if run_ddl(clients, query, sql):
        query.statement_type = "DDL"
        return
    tree = parse(sql)
    if not isinstance(tree, exp.Insert | exp.Query):
        raise QueryFailed(f"NOT_SUPPORTED: statement {tree.key.upper()} is not supported offline")
    workdir = Path(tempfile.mkdtemp(prefix="localaws-athena-"))
    connection = duckdb.connect(config={"threads": 2})
    try:
        connection.execute("SET TimeZone = 'UTC'")
        query.connection = connection
        if isinstance(tree, exp.Insert):
            _insert(clients, query, tree, connection, workdir)
        else:
            _select(clients, query, tree, connection, workdir)
    except duckdb.InterruptException:
        raise QueryCancelled from None
    except duckdb.Error as error:
        raise QueryFailed(duckdb_failure_reason(error)) from error
    finally:
        query.connection = None
        connection.close()
        shutil.rmtree(workdir, ignore_errors=True)


def duckdb_failure_reason(error: duckdb.Error) -> str:
    """An Athena-style StateChangeReason for a DuckDB error (its first line)."""
    message = str(error).split("\n")[0]
    raised = re.search(r"\b(INVALID_CAST_ARGUMENT: .*)", message)
    if raised:  # raised by a rewritten expression (athena_sql.strict_cast) with Athena's reason
        return raised[1]
    if isinstance(error, duckdb.BinderException):
        if "column" in message.lower() and ("not found" in message.lower() or "does not have" in message):
            return f"COLUMN_NOT_FOUND: {message}"
        if "function" in message.lower():
            return f"FUNCTION_NOT_FOUND: {message}"
        return f"SEMANTIC_ERROR: {message}"
    if isinstance(error, duckdb.CatalogException):
        if "function" in message.lower():
            return f"FUNCTION_NOT_FOUND: {message}"
        return f"TABLE_NOT_FOUND: {message}"
    if isinstance(error, duckdb.ParserException):
        return f"SYNTAX_ERROR: {message}"
    if isinstance(error, duckdb.ConversionException):
        return f"INVALID_CAST_ARGUMENT: {message}"
    if isinstance(error, duckdb.InvalidInputException):
        return f"HIVE_BAD_DATA: {message}"
    if isinstance(error, duckdb.OutOfRangeException):
        return f"NUMERIC_VALUE_OUT_OF_RANGE: {message}"
    return f"GENERIC_USER_ERROR: {message}"


# -- tables -------------------------------------------------------------------------------


def _table_references(tree: exp.Expression) -> list[exp.Table]:
    """The catalog tables a statement reads (not its CTEs)."""
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    return [
        node
        for node in tree.find_all(exp.Table)
        if node.name and not (not node.db and node.name.lower() in cte_names)
    ]


def _bind_tables(
    clients: EngineClients, query: Query, tree: exp.Expression, connection: Any, workdir: Path
) -> None:
    """Load every catalog table the statement reads and point the statement at the copies."""
    references = _table_references(tree)
    tables: dict[tuple[str, str], TableData] = {}
    predicates: dict[tuple[str, str], list[exp.Expression | None]] = {}

    def key_of(node: exp.Table) -> tuple[str, str]:
        return ((node.db or query.database or "default").lower(), node.name.lower())

    for node in references:
        key = key_of(node)
        if key not in tables:
            tables[key] = fetch_table(clients.glue, *key)
        keys = [name for name, _type in tables[key].partition_keys]
        predicates.setdefault(key, []).append(partition_predicate(node, keys))
    # before any byte is read, as Athena's analyzer rejects the statement before it runs
    check_types(tree, catalog_schema(tables), query.database or "default")
    view_names = {}
    for number, (key, table) in enumerate(tables.items()):
        if query.cancel.is_set():
            raise QueryCancelled
        view_names[key] = f"__table_{number}"
        partitions = select_partitions(connection, table, predicates[key])
        query.scanned_bytes += load_table(
            connection, clients.s3, table, partitions, view_names[key], workdir, query.cancel.is_set
        )
    for node in references:
        replacement = exp.Table(this=exp.to_identifier(view_names[key_of(node)], quoted=True))
        replacement.set("alias", exp.TableAlias(this=exp.to_identifier(node.alias_or_name, quoted=True)))
        node.replace(replacement)


# -- SELECT -------------------------------------------------------------------------------


def _select(
    clients: EngineClients, query: Query, tree: exp.Expression, connection: Any, workdir: Path
) -> None:
    """Run the SELECT and write Athena's result file, ``<location>/<id>.csv``."""
    _bind_tables(clients, query, tree, connection, workdir)
    name_result_columns(tree)
    sql = to_duckdb(tree)
    relation = connection.sql(sql)  # binds (unknown columns fail here) without running
    names, types = [name.lower() for name in relation.columns], [str(t) for t in relation.types]
    aliases = ", ".join(f"c{i}" for i in range(len(names)))
    values = ", ".join(result_value_sql(f"c{i}", kind) for i, kind in enumerate(types))
    data_file = workdir / "result.csv"
    connection.execute(
        f"COPY (SELECT {values} FROM ({sql}) AS __result({aliases})) TO {sql_string(str(data_file))} "
        "(FORMAT CSV, HEADER false, FORCE_QUOTE *, NULLSTR '')"
    )
    if query.cancel.is_set():
        raise QueryCancelled
    query.columns = [(name, athena_type(kind)) for name, kind in zip(names, types, strict=True)]
    header = ",".join('"' + name.replace('"', '""') + '"' for name in names) + "\n"
    bucket, key = split_s3_uri(query.output_location or "")
    clients.s3.put_object(Bucket=bucket, Key=key, Body=header.encode() + data_file.read_bytes())


# -- INSERT INTO --------------------------------------------------------------------------


def _trino_type_name(duckdb_type_name: str) -> str:
    """The Trino type a DuckDB result column stands for (``decimal(p,s)`` kept whole, NULL unknown)."""
    if duckdb_type_name.strip('"').upper() == "NULL":
        return "unknown"
    if duckdb_type_name.upper().startswith("DECIMAL"):
        return duckdb_type_name.lower()
    return athena_type(duckdb_type_name)


def _insert(clients: EngineClients, query: Query, tree: exp.Insert, connection: Any, workdir: Path) -> None:
    """INSERT INTO a Parquet Glue table: new files in Hive folders, new partitions registered."""
    target_node = tree.this if isinstance(tree.this, exp.Table) else tree.this.this
    database = (target_node.db or query.database or "default").lower()
    target = fetch_table(clients.glue, database, target_node.name.lower())
    if target.file_format != "parquet":
        raise QueryFailed(
            f"NOT_SUPPORTED: INSERT INTO offline writes Parquet tables only ({database}.{target.name})"
        )
    table_columns = target.columns + target.partition_keys
    explicit = [c.name.lower() for c in tree.this.expressions] if isinstance(tree.this, exp.Schema) else None
    unknown = sorted(set(explicit or []) - {name for name, _type in table_columns})
    if unknown:
        raise QueryFailed(
            f"COLUMN_NOT_FOUND: Insert column name does not exist in target table: {unknown[0]}"
        )
    names = explicit or [name for name, _type in table_columns]

    select = tree.expression
    _bind_tables(clients, query, select, connection, workdir)
    sql = to_duckdb(select)
    query_types = [str(t) for t in connection.sql(sql).types]
    declared = dict(table_columns)
    if len(query_types) != len(names):
        raise QueryFailed(
            f"TYPE_MISMATCH: Insert query has {len(query_types)} columns, "
            f"table {database}.{target.name} expects {len(names)}"
        )
    if not all(
        insert_coercible(_trino_type_name(kind), declared[name])
        for name, kind in zip(names, query_types, strict=True)
    ):
        raise QueryFailed(
            "TYPE_MISMATCH: Insert query has mismatched column types: "
            f"Table: [{', '.join(declared[n] for n in names)}], "
            f"Query: [{', '.join(athena_type(k) for k in query_types)}]"
        )

    position = {name: index for index, name in enumerate(names)}
    typed = ", ".join(
        (f"CAST(c{position[n]} AS {duckdb_type(t)})" if n in position else f"CAST(NULL AS {duckdb_type(t)})")
        + f" AS {quote(n)}"
        for n, t in table_columns
    )
    aliases = ", ".join(f"c{i}" for i in range(len(names)))
    connection.execute(f"CREATE TEMP TABLE __typed AS SELECT {typed} FROM ({sql}) AS __insert({aliases})")

    key_names = [name for name, _type in target.partition_keys]
    if key_names:
        keys = ", ".join(quote(k) for k in key_names)
        count = connection.execute(f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM __typed)").fetchone()[
            0
        ]
        if count > MAX_OPEN_PARTITIONS:
            raise QueryFailed(TOO_MANY_PARTITIONS)
        for name in key_names:
            if connection.execute(f"SELECT count(*) FROM __typed WHERE {quote(name)} IS NULL").fetchone()[0]:
                raise QueryFailed(f"NOT_SUPPORTED: NULL value for partition column {name} (offline)")
    rows = connection.execute("SELECT count(*) FROM __typed").fetchone()[0]
    out = workdir / "out"
    if rows:
        out.mkdir()
        if key_names:
            options = f"FORMAT PARQUET, PARTITION_BY ({keys}), WRITE_PARTITION_COLUMNS false"
            connection.execute(f"COPY __typed TO {sql_string(str(out))} ({options})")
        else:
            connection.execute(f"COPY __typed TO {sql_string(str(out / 'data.parquet'))} (FORMAT PARQUET)")
    if query.cancel.is_set():
        raise QueryCancelled
    _publish(clients, query, target, out)
    query.update_count = rows
    query.columns = [("rows", "bigint")]
    bucket, key = split_s3_uri(query.output_location or "")
    clients.s3.put_object(Bucket=bucket, Key=key, Body=f'"rows"\n"{rows}"\n'.encode())


def hive_folder_value(value: str) -> str:
    """A partition value as Hive writes it in a folder name (``a/b`` -> ``a%2Fb``)."""
    return "".join(f"%{ord(c):02X}" if c in HIVE_ESCAPED else c for c in value)


def _publish(clients: EngineClients, query: Query, target: TableData, out: Path) -> None:
    """Upload the written files under new names, then register the new partitions."""
    query.hold_until_publishable()  # the latency knob: Athena publishes at the end of its run time
    s3, glue = clients.s3, clients.glue
    table_location = target.location.rstrip("/") + "/"
    existing = {tuple(p["Values"]): p["StorageDescriptor"]["Location"] for p in target.partitions}
    key_names = [name for name, _type in target.partition_keys]
    uploads: list[tuple[Path, str]] = []
    new_partitions: dict[tuple[str, ...], str] = {}
    for number, path in enumerate(sorted(out.rglob("*.parquet")) if out.exists() else []):
        folders = path.parent.relative_to(out).parts
        values = tuple(unquote(folder.partition("=")[2]) for folder in folders)
        if values in existing:
            location = existing[values].rstrip("/") + "/"
        else:
            folder = "".join(f"{k}={hive_folder_value(v)}/" for k, v in zip(key_names, values, strict=True))
            location = table_location + folder
            if key_names:
                new_partitions[values] = location
        # never overwrite: INSERT INTO appends, as Athena does
        uploads.append((path, f"{location}{query.query_id}_{number:05d}_{uuid.uuid4().hex[:8]}.parquet"))

    fail_after = clients.faults.take_athena_insert_failure()
    if fail_after is not None:
        _publish_partly(s3, query, uploads[:fail_after], len(uploads))

    def upload(item: tuple[Path, str]) -> str:
        bucket, key = split_s3_uri(item[1])
        s3.put_object(Bucket=bucket, Key=key, Body=item[0].read_bytes())
        return item[1]

    with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
        futures = [pool.submit(upload, item) for item in uploads]
    landed = [f.result() for f in futures if f.exception() is None]
    failed = [f.exception() for f in futures if f.exception() is not None]
    try:
        if failed:
            raise failed[0]
        _register_partitions(glue, target, new_partitions)
    except BaseException:  # all or nothing: take back the files that did land
        for location in landed:
            bucket, key = split_s3_uri(location)
            s3.delete_object(Bucket=bucket, Key=key)
        raise


def _publish_partly(s3: Any, query: Query, uploads: list[tuple[Path, str]], total: int) -> None:
    """The injected fault ``athena_insert_fail_after_files``: fail as Athena can mid-write.

    Real Athena uploads an INSERT's files as its writers finish and does not remove them
    when the query fails later: the files that landed stay. Files in partitions the
    catalog already has are visible to the next query at once; new partitions are not
    registered (a later crawl, MSCK REPAIR or INSERT into that partition exposes them).
    """
    for path, location in uploads:
        bucket, key = split_s3_uri(location)
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    log.warning(
        "injected fault: INSERT %s wrote %s of %s file(s), then failed", query.query_id, len(uploads), total
    )
    raise QueryFailed(
        f"{INSERT_FAULT_REASON} (wrote {len(uploads)} of {total} file(s); "
        "files already written are not removed)"
    )


def _register_partitions(glue: Any, target: TableData, new_partitions: dict[tuple[str, ...], str]) -> None:
    """BatchCreatePartition the new partitions (a partition created meanwhile is fine)."""
    descriptor = target.glue["StorageDescriptor"]
    inputs = [
        {"Values": list(values), "StorageDescriptor": {**descriptor, "Location": location}}
        for values, location in sorted(new_partitions.items())
    ]
    for start in range(0, len(inputs), 100):
        response = glue.batch_create_partition(
            DatabaseName=target.database,
            TableName=target.name,
            PartitionInputList=inputs[start : start + 100],
        )
        errors = [
            e for e in response.get("Errors", []) if e["ErrorDetail"]["ErrorCode"] != "AlreadyExistsException"
        ]
        if errors:
            raise QueryFailed(f"HIVE_METASTORE_ERROR: {errors[0]['ErrorDetail']['ErrorMessage']}")
