"""The tables a query reads: Glue catalog entries, partition pruning, S3 bytes into DuckDB.

A table's files are fetched through the stack's own S3 endpoint (DuckDB has no httpfs
offline) into a temporary folder and read in bulk with DuckDB's readers. Only the
partitions the query can need are fetched: the WHERE conjuncts that read nothing but
the table's partition columns are evaluated in DuckDB over a small table of partition
values, exactly as Athena prunes. ``DataScannedInBytes`` adds up the stored (possibly
compressed) sizes of the objects actually read.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from localaws.athena.sql import QueryCancelled, QueryFailed, to_duckdb
from localaws.hive_formats import duckdb_type
from localaws.s3io import S3Object, list_objects, read_bytes, split_s3_uri

log = logging.getLogger("localaws.athena")

DOWNLOAD_THREADS = 4


def quote(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class TableData:
    """A Glue table as one query sees it: the catalog entry and its partitions."""

    database: str
    name: str
    glue: dict[str, Any]
    partitions: list[dict[str, Any]]

    @property
    def partition_keys(self) -> list[tuple[str, str]]:
        return [(k["Name"].lower(), k.get("Type", "string")) for k in self.glue.get("PartitionKeys", [])]

    @property
    def columns(self) -> list[tuple[str, str]]:
        return [(c["Name"].lower(), c["Type"]) for c in self.glue["StorageDescriptor"].get("Columns", [])]

    @property
    def location(self) -> str:
        return self.glue["StorageDescriptor"]["Location"]

    @property
    def serde_parameters(self) -> dict[str, str]:
        return (self.glue["StorageDescriptor"].get("SerdeInfo") or {}).get("Parameters") or {}

    @property
    def file_format(self) -> str:
        """``parquet``, ``json`` or ``csv``, from the input format, SerDe and classification."""
        descriptor = self.glue["StorageDescriptor"]
        serde = (descriptor.get("SerdeInfo") or {}).get("SerializationLibrary", "")
        classification = (self.glue.get("Parameters") or {}).get("classification", "")
        described = f"{descriptor.get('InputFormat', '')} {serde} {classification}".lower()
        if "parquet" in described:
            return "parquet"
        if "json" in described:
            return "json"
        return "csv"


def fetch_table(glue: Any, database: str, name: str) -> TableData:
    """The table and all its partitions from the Glue catalog (TABLE_NOT_FOUND if none)."""
    try:
        table = glue.get_table(DatabaseName=database, Name=name)["Table"]
    except glue.exceptions.EntityNotFoundException as error:
        raise QueryFailed(
            f"TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.{database}.{name}' does not exist"
        ) from error
    partitions: list[dict[str, Any]] = []
    if table.get("PartitionKeys"):
        for page in glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=name):
            partitions.extend(page["Partitions"])
    return TableData(database, name, table, partitions)


# -- partition pruning ------------------------------------------------------------------


def partition_predicate(node: exp.Table, keys: list[str]) -> exp.Expression | None:
    """The WHERE conjuncts of ``node``'s SELECT that read only ``node``'s partition columns.

    None means "no usable filter": every partition may be needed.
    """
    select = node.find_ancestor(exp.Select)
    where = select.args.get("where") if select else None
    if where is None or not keys:
        return None
    names = {node.alias_or_name.lower(), node.name.lower()}
    key_set = {k.lower() for k in keys}
    condition = where.this
    conjuncts = list(condition.flatten()) if isinstance(condition, exp.And) else [condition]
    usable = []
    for conjunct in conjuncts:
        columns = list(conjunct.find_all(exp.Column))
        if not columns or conjunct.find(exp.Select) is not None:
            continue
        if all(c.name.lower() in key_set and (not c.table or c.table.lower() in names) for c in columns):
            stripped = conjunct.copy()
            for column in stripped.find_all(exp.Column):
                column.set("table", None)
            usable.append(stripped)
    return exp.and_(*usable) if usable else None


def select_partitions(
    connection: duckdb.DuckDBPyConnection, table: TableData, predicates: list[exp.Expression | None]
) -> list[dict[str, Any]]:
    """The partitions that at least one reference's predicate can match."""
    if not predicates or any(p is None for p in predicates) or not table.partitions:
        return table.partitions
    predicate = exp.or_(*[exp.paren(p) for p in predicates if p is not None])
    keys = table.partition_keys
    columns = ", ".join(f"{quote(name)} VARCHAR" for name, _type in keys)
    typed = ", ".join(
        f"TRY_CAST({quote(name)} AS {duckdb_type(kind)}) AS {quote(name)}" for name, kind in keys
    )
    rows = [(index, *p["Values"]) for index, p in enumerate(table.partitions)]
    connection.execute(f"CREATE OR REPLACE TEMP TABLE __partition_values (__index INTEGER, {columns})")
    connection.executemany(
        f"INSERT INTO __partition_values VALUES ({', '.join('?' for _ in range(len(keys) + 1))})", rows
    )
    try:
        matching = connection.execute(
            f"SELECT __index FROM (SELECT __index, {typed} FROM __partition_values) "
            f"WHERE {to_duckdb(predicate)}"
        ).fetchall()
    except duckdb.Error as error:  # a filter DuckDB cannot evaluate alone: read everything
        log.info("partition pruning skipped for %s.%s: %s", table.database, table.name, error)
        return table.partitions
    return [table.partitions[index] for (index,) in matching]


# -- reading the files --------------------------------------------------------------------


def _is_data_file(obj: S3Object) -> bool:
    name = obj.key.rsplit("/", 1)[-1]
    return obj.size > 0 and not name.startswith(("_", ".")) and not name.endswith("$folder$")


def download_files(
    s3: Any, locations: list[str], workdir: Path, cancelled: Callable[[], bool]
) -> tuple[list[tuple[str, int]], int]:
    """Fetch every data file under the S3 folders (gunzipped); answer ((path, folder index), bytes read)."""
    wanted: list[tuple[S3Object, int]] = []
    for index, location in enumerate(locations):
        bucket, prefix = split_s3_uri(location if location.endswith("/") else location + "/")
        wanted.extend((obj, index) for obj in list_objects(s3, bucket, prefix) if _is_data_file(obj))
    lock = threading.Lock()
    scanned = 0

    def fetch(position: int) -> tuple[str, int]:
        nonlocal scanned
        if cancelled():
            raise QueryCancelled
        obj, index = wanted[position]
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", obj.key.rsplit("/", 1)[-1]).removesuffix(".gz")
        local = workdir / f"f{position:06d}_{name}"
        local.write_bytes(read_bytes(s3, obj.bucket, obj.key))
        with lock:
            scanned += obj.size
        return str(local), index

    with ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS) as pool:
        files = list(pool.map(fetch, range(len(wanted))))
    return files, scanned


def _reader(table: TableData, files: list[str]) -> str:
    """DuckDB's reader for the table's files, every declared column as text (cast later)."""
    file_list = "[" + ", ".join(sql_string(f) for f in files) + "]"
    if table.file_format == "parquet":
        return f"read_parquet({file_list}, filename = true, union_by_name = true)"
    spec = "{" + ", ".join(f"{sql_string(n)}: 'VARCHAR'" for n, _t in table.columns) + "}"
    serde = table.serde_parameters
    if table.file_format == "json":
        # like the JSON SerDes: a malformed line fails the query unless the table says to skip it
        skip_malformed = serde.get("ignore.malformed.json", "false").lower() == "true"
        return (
            f"read_json({file_list}, format = 'newline_delimited', columns = {spec}, "
            f"filename = true, ignore_errors = {str(skip_malformed).lower()})"
        )
    delimiter = serde.get("field.delim", serde.get("separatorChar", ","))
    quote_char = serde.get("quoteChar", '"')
    null_text = serde.get("serialization.null.format", "\\N")
    header = (table.glue.get("Parameters") or {}).get("skip.header.line.count", "0") != "0"
    return (
        f"read_csv({file_list}, header = {str(header).lower()}, delim = {sql_string(delimiter)}, "
        f"quote = {sql_string(quote_char)}, nullstr = {sql_string(null_text)}, columns = {spec}, "
        "filename = true, null_padding = true)"
    )


def load_table(
    connection: duckdb.DuckDBPyConnection,
    s3: Any,
    table: TableData,
    partitions: list[dict[str, Any]],
    view_name: str,
    workdir: Path,
    cancelled: Callable[[], bool],
) -> int:
    """Create view ``view_name`` over the table's files (typed as in Glue); answer bytes read."""
    keys = table.partition_keys
    if keys:
        locations = [p["StorageDescriptor"]["Location"] for p in partitions]
    else:
        locations = [table.location]
    files, scanned = download_files(s3, locations, workdir, cancelled)
    # text files: an unreadable number is NULL (as Hive's text SerDes read it); JSON and
    # Parquet: a value of the wrong type fails the query
    cast = "TRY_CAST" if table.file_format == "csv" else "CAST"
    data = [f"{cast}(d.{quote(n)} AS {duckdb_type(t)}) AS {quote(n)}" for n, t in table.columns]
    key_columns = [f"CAST(f.{quote(n)} AS {duckdb_type(t)}) AS {quote(n)}" for n, t in keys]
    if not files:
        nulls = [f"CAST(NULL AS {duckdb_type(t)}) AS {quote(n)}" for n, t in table.columns + keys]
        connection.execute(f"CREATE TEMP VIEW {quote(view_name)} AS SELECT {', '.join(nulls)} LIMIT 0")
        return 0
    files_table = f"{view_name}__files"
    connection.execute(
        f"CREATE TEMP TABLE {quote(files_table)} (filename VARCHAR"
        + "".join(f", {quote(n)} VARCHAR" for n, _t in keys)
        + ")"
    )
    rows = [(path, *(partitions[index]["Values"] if keys else [])) for path, index in files]
    connection.executemany(
        f"INSERT INTO {quote(files_table)} VALUES ({', '.join('?' for _ in range(len(keys) + 1))})", rows
    )
    reader = _reader(table, [path for path, _index in files])
    if table.file_format == "parquet":
        # Parquet files may lack a column added to the table later: read it as NULL
        present = {name.lower() for name in connection.sql(f"SELECT * FROM {reader} LIMIT 0").columns}
        data = [
            item if name in present else f"CAST(NULL AS {duckdb_type(kind)}) AS {quote(name)}"
            for item, (name, kind) in zip(data, table.columns, strict=True)
        ]
    connection.execute(
        f"CREATE TEMP VIEW {quote(view_name)} AS SELECT {', '.join(data + key_columns)} "
        f"FROM {reader} d JOIN {quote(files_table)} f ON d.filename = f.filename"
    )
    return scanned
