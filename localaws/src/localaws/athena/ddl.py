"""Athena DDL on the Glue catalog: CREATE EXTERNAL TABLE, DROP TABLE, MSCK REPAIR, ALTER PARTITION.

``athena_ddl_grammar`` reads the statement with sqlglot (Hive's grammar, as Athena reads
DDL); this module turns its syntax tree into Glue calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlglot import exp

from localaws.athena.ddl_grammar import RepairTable, parse_ddl
from localaws.athena.sql import QueryFailed
from localaws.hive_formats import DELIMITED_SERDE_PARAMETERS, STORED_AS, glue_column_type
from localaws.s3io import list_objects, split_s3_uri

if TYPE_CHECKING:
    from localaws.athena.query import EngineClients, Query

PartitionSpec = tuple[exp.Partition, str | None]  # PARTITION (...) and its LOCATION, if given


def run_ddl(clients: EngineClients, query: Query, sql: str) -> bool:
    """Run ``sql`` if it is DDL we emulate; answer False for anything else."""
    statement = parse_ddl(sql)
    if isinstance(statement, exp.Create) and _is_external_table(statement):
        _create_table(clients, query, statement)
    elif isinstance(statement, exp.Drop):
        _drop_table(clients, query, statement)
    elif isinstance(statement, RepairTable):
        _msck_repair(clients, query, statement)
    elif isinstance(statement, exp.Alter):
        _alter_partitions(clients, query, statement)
    else:
        return False
    return True


def _properties(create: exp.Create) -> list[exp.Expression]:
    properties = create.args.get("properties")
    return list(properties.expressions) if properties else []


def _is_external_table(create: exp.Create) -> bool:
    """EXTERNAL, or a table with a LOCATION; any other CREATE TABLE is left to the engine's NOT_SUPPORTED."""
    return any(isinstance(p, exp.ExternalProperty | exp.LocationProperty) for p in _properties(create))


def _table_name(query: Query, table: exp.Table) -> tuple[str, str]:
    return (table.db or query.database or "default").lower(), table.name.lower()


def _columns(schema: exp.Schema) -> list[dict[str, str]]:
    """Glue columns: name, Hive type as Glue spells it, and the COMMENT if any."""
    columns = []
    for definition in schema.expressions:
        if not isinstance(definition, exp.ColumnDef) or definition.kind is None:
            raise QueryFailed(f"SYNTAX_ERROR: column '{definition.sql(dialect='hive')}' needs a type")
        column = {"Name": definition.name.lower(), "Type": glue_column_type(definition.kind)}
        for constraint in definition.constraints:
            if not isinstance(constraint.kind, exp.CommentColumnConstraint):
                raise QueryFailed(f"NOT_SUPPORTED: column constraint {constraint.sql(dialect='hive')}")
            column["Comment"] = constraint.kind.name
        columns.append(column)
    return columns


def _pairs(properties: exp.Expression | None) -> dict[str, str]:
    """The ``'key' = 'value'`` pairs of WITH SERDEPROPERTIES (...)."""
    return {p.name: p.text("value") for p in properties.expressions} if properties else {}


def _stored_as(file_format: exp.FileFormatProperty) -> str:
    if file_format.this is None:  # sqlglot reads a bare STORED
        raise QueryFailed("SYNTAX_ERROR: STORED AS needs a file format")
    name = file_format.name.upper()
    if name not in STORED_AS:  # ORC, AVRO, ..., STORED AS INPUTFORMAT '...' OUTPUTFORMAT '...'
        raise QueryFailed(f"NOT_SUPPORTED: STORED AS {file_format.this.sql(dialect='hive')}")
    return name


def table_input(create: exp.Create) -> dict[str, Any]:
    """Glue's TableInput for a CREATE EXTERNAL TABLE statement."""
    schema = create.this
    if not isinstance(schema, exp.Schema):
        raise QueryFailed("SYNTAX_ERROR: CREATE EXTERNAL TABLE needs a column list")
    stored_as, serde, location = "TEXTFILE", None, None
    partition_keys: list[dict[str, str]] = []
    serde_parameters: dict[str, str] = {}
    table_parameters = {"EXTERNAL": "TRUE"}
    for prop in _properties(create):
        if isinstance(prop, exp.PartitionedByProperty):
            if not isinstance(prop.this, exp.Schema):  # sqlglot also reads PARTITIONED BY a
                raise QueryFailed("SYNTAX_ERROR: PARTITIONED BY needs a column list")
            partition_keys = _columns(prop.this)
        elif isinstance(prop, exp.LocationProperty):
            location = prop.name
        elif isinstance(prop, exp.FileFormatProperty):
            stored_as = _stored_as(prop)
        elif isinstance(prop, exp.RowFormatSerdeProperty):
            serde = prop.name
            serde_parameters.update(_pairs(prop.args.get("serde_properties")))
        elif isinstance(prop, exp.SerdeProperties):  # WITH SERDEPROPERTIES after STORED AS / DELIMITED
            serde_parameters.update(_pairs(prop))
        elif isinstance(prop, exp.RowFormatDelimitedProperty):
            for clause, parameter in DELIMITED_SERDE_PARAMETERS.items():
                if prop.args.get(clause):
                    serde_parameters[parameter] = prop.args[clause].name
        elif isinstance(prop, exp.SchemaCommentProperty):
            table_parameters["comment"] = prop.name  # where Hive's metastore keeps a table COMMENT
        elif type(prop) is exp.Property:  # a TBLPROPERTIES entry (sqlglot lists them one by one)
            table_parameters[prop.name] = prop.text("value")
        elif not isinstance(prop, exp.ExternalProperty):  # CLUSTERED BY, ...
            raise QueryFailed(f"NOT_SUPPORTED: {prop.sql(dialect='hive')} is not emulated offline")
    if location is None:
        raise QueryFailed("SYNTAX_ERROR: CREATE EXTERNAL TABLE needs a LOCATION")
    input_format, output_format, default_serde = STORED_AS[stored_as]
    serde = serde or default_serde
    if "json" in serde.lower():
        table_parameters.setdefault("classification", "json")
    else:
        table_parameters.setdefault("classification", "parquet" if stored_as == "PARQUET" else "csv")
    return {
        "Name": schema.this.name.lower(),
        "TableType": "EXTERNAL_TABLE",
        "Parameters": table_parameters,
        "PartitionKeys": partition_keys,
        "StorageDescriptor": {
            "Columns": _columns(schema),
            "Location": location,
            "InputFormat": input_format,
            "OutputFormat": output_format,
            "SerdeInfo": {"SerializationLibrary": serde, "Parameters": serde_parameters},
        },
    }


def _create_table(clients: EngineClients, query: Query, create: exp.Create) -> None:
    glue, table = clients.glue, table_input(create)
    database, name = _table_name(query, create.this.this)
    try:
        glue.get_database(Name=database)
    except glue.exceptions.EntityNotFoundException as error:
        raise QueryFailed(f"SCHEMA_NOT_FOUND: Schema {database} does not exist") from error
    try:
        glue.create_table(DatabaseName=database, TableInput=table)
    except glue.exceptions.AlreadyExistsException as error:
        if not create.args.get("exists"):  # IF NOT EXISTS: the table stays as it is
            raise QueryFailed(f"ALREADY_EXISTS: Table {database}.{name} already exists") from error


def _drop_table(clients: EngineClients, query: Query, drop: exp.Drop) -> None:
    tables = drop.args.get("tables") or []
    if len(tables) != 1:
        raise QueryFailed("SYNTAX_ERROR: DROP TABLE drops one table")
    glue = clients.glue
    database, name = _table_name(query, tables[0])
    try:
        glue.delete_table(DatabaseName=database, Name=name)
    except glue.exceptions.EntityNotFoundException as error:
        if not drop.args.get("exists"):
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


def _msck_repair(clients: EngineClients, query: Query, repair: RepairTable) -> None:
    database, name = _table_name(query, repair.this)
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


def _partition_values(partition: exp.Partition) -> dict[str, str]:
    """``PARTITION (year='2024', hour=7)`` -> ``{"year": "2024", "hour": "7"}``."""
    values = {}
    for pair in partition.expressions:
        if not (
            isinstance(pair, exp.EQ)
            and isinstance(pair.this, exp.Column)
            and isinstance(pair.expression, exp.Literal)
        ):
            raise QueryFailed(f"SYNTAX_ERROR: partition spec needs key = value: {pair.sql(dialect='hive')}")
        values[pair.this.name.lower()] = pair.expression.name
    return values


def _partition_specs(actions: list[exp.Expression]) -> tuple[str, bool, list[PartitionSpec]]:
    """``ADD`` or ``DROP``, whether IF [NOT] EXISTS guards it, and each partition with its LOCATION."""
    if actions and all(isinstance(a, exp.AddPartition) for a in actions):
        specs = [(a.this, a.args["location"].name if a.args.get("location") else None) for a in actions]
        return "ADD", bool(actions[0].args.get("exists")), specs
    if actions and all(isinstance(a, exp.DropPartition) for a in actions):
        specs = [(partition, None) for a in actions for partition in a.expressions]
        return "DROP", bool(actions[0].args.get("exists")), specs
    raise QueryFailed("NOT_SUPPORTED: only ALTER TABLE ADD/DROP PARTITION is emulated offline")


def _alter_partitions(clients: EngineClients, query: Query, alter: exp.Alter) -> None:
    action, guarded, specs = _partition_specs(alter.args.get("actions") or [])
    database, name = _table_name(query, alter.this)
    table = _table(clients, database, name)
    keys = [k["Name"].lower() for k in table.get("PartitionKeys", [])]
    entries = []
    for partition, location in specs:
        values = _partition_values(partition)
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
