"""Athena DDL on the Glue catalog: CREATE EXTERNAL TABLE, DROP TABLE, MSCK REPAIR, ALTER PARTITION."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from localaws.athena_sql import QueryFailed
from localaws.hive_formats import STORED_AS
from localaws.s3io import list_objects, split_s3_uri

if TYPE_CHECKING:
    from localaws.athena_query import EngineClients, Query

IDENT = r"`?\"?([A-Za-z0-9_]+)\"?`?"
QUALIFIED = rf"(?:{IDENT}\.)?{IDENT}"


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split on separators outside (), <> and quotes (types like decimal(10,2), struct<a:int,b:int>)."""
    parts, depth, current, quote = [], 0, [], ""
    for char in text:
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
            continue
        if char in "'\"`":
            quote = char
        elif char in "(<":
            depth += 1
        elif char in ")>":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def _balanced(text: str, start: int) -> tuple[str, int]:
    """The text inside the parentheses opening at ``start``, and the index after them."""
    assert text[start] == "("
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1 : index], index + 1
    raise QueryFailed("SYNTAX_ERROR: unbalanced parentheses")


def _columns(body: str) -> list[dict[str, str]]:
    columns = []
    for definition in split_top_level(body):
        match = re.match(rf"\s*{IDENT}\s+(.+?)(?:\s+COMMENT\s+'.*')?\s*$", definition, re.I | re.S)
        if not match:
            raise QueryFailed(f"SYNTAX_ERROR: cannot read column definition '{definition}'")
        columns.append({"Name": match.group(1).lower(), "Type": match.group(2).strip().lower()})
    return columns


def _properties(text: str) -> dict[str, str]:
    return dict(re.findall(r"'([^']*)'\s*=\s*'([^']*)'", text))


def _database(query: Query, explicit: str | None) -> str:
    return (explicit or query.database or "default").lower()


def run_ddl(clients: EngineClients, query: Query, sql: str) -> bool:
    """Run ``sql`` if it is DDL we emulate; answer False for anything else."""
    head = re.sub(r"\s+", " ", sql[:60]).upper()
    if (
        head.startswith("CREATE EXTERNAL TABLE")
        or head.startswith("CREATE TABLE")
        and " LOCATION " in sql.upper()
    ):
        _create_table(clients, query, sql)
    elif head.startswith("DROP TABLE"):
        _drop_table(clients, query, sql)
    elif head.startswith("MSCK REPAIR TABLE"):
        _msck_repair(clients, query, sql)
    elif head.startswith("ALTER TABLE"):
        _alter_partitions(clients, query, sql)
    else:
        return False
    return True


def _create_table(clients: EngineClients, query: Query, sql: str) -> None:
    match = re.match(rf"\s*CREATE\s+(?:EXTERNAL\s+)?TABLE\s+(IF\s+NOT\s+EXISTS\s+)?{QUALIFIED}\s*", sql, re.I)
    if not match:
        raise QueryFailed("SYNTAX_ERROR: cannot read the table name of CREATE EXTERNAL TABLE")
    if_not_exists, database, name = match.group(1), _database(query, match.group(2)), match.group(3).lower()
    rest_start = match.end()
    if rest_start >= len(sql) or sql[rest_start] != "(":
        raise QueryFailed("SYNTAX_ERROR: CREATE EXTERNAL TABLE needs a column list")
    body, after = _balanced(sql, rest_start)
    columns = _columns(body)
    tail = sql[after:]
    partition_keys: list[dict[str, str]] = []
    partitioned = re.search(r"PARTITIONED\s+BY\s*\(", tail, re.I)
    if partitioned:
        inner, _end = _balanced(tail, partitioned.end() - 1)
        partition_keys = _columns(inner)
    location = re.search(r"LOCATION\s+'([^']+)'", tail, re.I)
    if not location:
        raise QueryFailed("SYNTAX_ERROR: CREATE EXTERNAL TABLE needs a LOCATION")
    stored = re.search(r"STORED\s+AS\s+(\w+)", tail, re.I)
    fmt = stored.group(1).upper() if stored else "TEXTFILE"
    if fmt not in STORED_AS:
        raise QueryFailed(f"NOT_SUPPORTED: STORED AS {fmt}")
    input_format, output_format, serde = STORED_AS[fmt]
    serde_match = re.search(r"ROW\s+FORMAT\s+SERDE\s+'([^']+)'", tail, re.I)
    if serde_match:
        serde = serde_match.group(1)
    serde_parameters: dict[str, str] = {}
    serde_props = re.search(r"WITH\s+SERDEPROPERTIES\s*\(", tail, re.I)
    if serde_props:
        serde_parameters = _properties(_balanced(tail, serde_props.end() - 1)[0])
    delimited = re.search(r"FIELDS\s+TERMINATED\s+BY\s+'([^']+)'", tail, re.I)
    if delimited:
        serde_parameters["field.delim"] = delimited.group(1)
    table_parameters: dict[str, str] = {"EXTERNAL": "TRUE"}
    tblprops = re.search(r"TBLPROPERTIES\s*\(", tail, re.I)
    if tblprops:
        table_parameters.update(_properties(_balanced(tail, tblprops.end() - 1)[0]))
    if "json" in serde.lower():
        table_parameters.setdefault("classification", "json")
    elif fmt == "PARQUET":
        table_parameters.setdefault("classification", "parquet")
    else:
        table_parameters.setdefault("classification", "csv")
    glue = clients.glue
    table_input = {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": table_parameters,
        "PartitionKeys": partition_keys,
        "StorageDescriptor": {
            "Columns": columns,
            "Location": location.group(1),
            "InputFormat": input_format,
            "OutputFormat": output_format,
            "SerdeInfo": {"SerializationLibrary": serde, "Parameters": serde_parameters},
        },
    }
    try:
        glue.get_database(Name=database)
    except glue.exceptions.EntityNotFoundException as error:
        raise QueryFailed(f"SCHEMA_NOT_FOUND: Schema {database} does not exist") from error
    try:
        glue.create_table(DatabaseName=database, TableInput=table_input)
    except glue.exceptions.AlreadyExistsException as error:
        if not if_not_exists:
            raise QueryFailed(f"ALREADY_EXISTS: Table {database}.{name} already exists") from error


def _drop_table(clients: EngineClients, query: Query, sql: str) -> None:
    match = re.match(rf"\s*DROP\s+TABLE\s+(IF\s+EXISTS\s+)?{QUALIFIED}\s*$", sql, re.I)
    if not match:
        raise QueryFailed("SYNTAX_ERROR: cannot read DROP TABLE")
    glue = clients.glue
    database, name = _database(query, match.group(2)), match.group(3).lower()
    try:
        glue.delete_table(DatabaseName=database, Name=name)
    except glue.exceptions.EntityNotFoundException as error:
        if not match.group(1):
            raise QueryFailed(f"TABLE_NOT_FOUND: Table {database}.{name} does not exist") from error


def _table(clients: EngineClients, database: str, name: str) -> dict[str, Any]:
    glue = clients.glue
    try:
        return glue.get_table(DatabaseName=database, Name=name)["Table"]
    except glue.exceptions.EntityNotFoundException as error:
        raise QueryFailed(f"TABLE_NOT_FOUND: Table {database}.{name} does not exist") from error


def _existing_partitions(clients: EngineClients, database: str, name: str) -> set[tuple[str, ...]]:
    existing: set[tuple[str, ...]] = set()
    for page in clients.glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=name):
        existing.update(tuple(p["Values"]) for p in page["Partitions"])
    return existing


def _add(
    clients: EngineClients, database: str, table: dict[str, Any], entries: list[tuple[list[str], str]]
) -> None:
    descriptor = table["StorageDescriptor"]
    inputs = [
        {"Values": values, "StorageDescriptor": {**descriptor, "Location": location}}
        for values, location in entries
    ]
    for start in range(0, len(inputs), 100):
        clients.glue.batch_create_partition(
            DatabaseName=database, TableName=table["Name"], PartitionInputList=inputs[start : start + 100]
        )


def _msck_repair(clients: EngineClients, query: Query, sql: str) -> None:
    match = re.match(rf"\s*MSCK\s+REPAIR\s+TABLE\s+{QUALIFIED}\s*$", sql, re.I)
    if not match:
        raise QueryFailed("SYNTAX_ERROR: cannot read MSCK REPAIR TABLE")
    database, name = _database(query, match.group(1)), match.group(2).lower()
    table = _table(clients, database, name)
    keys = [k["Name"].lower() for k in table.get("PartitionKeys", [])]
    if not keys:
        return
    location = table["StorageDescriptor"]["Location"].rstrip("/") + "/"
    bucket, prefix = split_s3_uri(location)
    found: dict[tuple[str, ...], str] = {}
    for obj in list_objects(clients.s3, bucket, prefix):
        folders = obj.key[len(prefix) :].split("/")[:-1]
        if len(folders) != len(keys):
            continue
        pairs = [folder.partition("=") for folder in folders]
        if all(k.lower() == key and sep for (k, sep, _v), key in zip(pairs, keys, strict=True)):
            values = tuple(v for _k, _sep, v in pairs)
            found[values] = f"{location}{'/'.join(folders)}/"
    existing = _existing_partitions(clients, database, name)
    _add(clients, database, table, [(list(v), loc) for v, loc in sorted(found.items()) if v not in existing])


def _partition_specs(text: str) -> list[tuple[dict[str, str], str | None]]:
    specs = []
    for match in re.finditer(r"PARTITION\s*\(([^)]*)\)(?:\s*LOCATION\s+'([^']+)')?", text, re.I):
        values = dict(
            (k.lower(), v)
            for k, v in re.findall(r"`?\"?([A-Za-z0-9_]+)\"?`?\s*=\s*'?([^',]*)'?", match.group(1))
        )
        specs.append((values, match.group(2)))
    return specs


def _alter_partitions(clients: EngineClients, query: Query, sql: str) -> None:
    match = re.match(
        rf"\s*ALTER\s+TABLE\s+{QUALIFIED}\s+(ADD|DROP)\s+(IF\s+(?:NOT\s+)?EXISTS\s+)?(.*)$", sql, re.I | re.S
    )
    if not match:
        raise QueryFailed("NOT_SUPPORTED: only ALTER TABLE ADD/DROP PARTITION is emulated offline")
    database, name = _database(query, match.group(1)), match.group(2).lower()
    action, guarded, rest = match.group(3).upper(), bool(match.group(4)), match.group(5)
    table = _table(clients, database, name)
    keys = [k["Name"].lower() for k in table.get("PartitionKeys", [])]
    specs = _partition_specs(rest)
    if not specs:
        raise QueryFailed("SYNTAX_ERROR: no PARTITION (...) given")
    entries = []
    for values, location in specs:
        if sorted(values) != sorted(keys):
            raise QueryFailed(f"SYNTAX_ERROR: partition spec {values} does not match the keys {keys}")
        ordered = [values[k] for k in keys]
        base = table["StorageDescriptor"]["Location"].rstrip("/")
        entries.append((ordered, location or base + "/" + "/".join(f"{k}={values[k]}" for k in keys) + "/"))
    existing = _existing_partitions(clients, database, name)
    if action == "ADD":
        duplicates = [e for e in entries if tuple(e[0]) in existing]
        if duplicates and not guarded:
            raise QueryFailed(f"ALREADY_EXISTS: Partition already exists: {duplicates[0][0]}")
        _add(clients, database, table, [e for e in entries if tuple(e[0]) not in existing])
        return
    missing = [e for e in entries if tuple(e[0]) not in existing]
    if missing and not guarded:
        raise QueryFailed(f"PARTITION_NOT_FOUND: Partition does not exist: {missing[0][0]}")
    to_delete = [{"Values": e[0]} for e in entries if tuple(e[0]) in existing]
    for start in range(0, len(to_delete), 25):
        clients.glue.batch_delete_partition(
            DatabaseName=database, TableName=name, PartitionsToDelete=to_delete[start : start + 25]
        )
