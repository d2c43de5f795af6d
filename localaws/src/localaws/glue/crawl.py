"""One crawl: list a target's S3 objects, infer the table's schema, write the Glue catalog.

``glue_crawler.py`` (the API state machine) runs a ``CrawlRun`` in a background thread;
the pure pieces (schema inference, partition folders, storage descriptors) are in
``glue_schema.py``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from typing import Any

from localaws.glue.events import ObjectEvent, changed_folders
from localaws.glue.schema import (
    CrawlFailed,
    csv_schema,
    detect_format,
    env_float,
    is_excluded,
    json_lines_schema,
    merge_schemas,
    parquet_schema,
    partition_keys,
    partition_levels,
    storage_descriptor,
    table_name_for,
)
from localaws.s3io import S3Object, list_objects, read_bytes, split_s3_uri

log = logging.getLogger("localaws.glue")


class CrawlRun:
    """A crawl of one crawler's definition, with the clients it writes through."""

    def __init__(
        self,
        glue: Any,
        s3: Any,
        name: str,
        definition: dict[str, Any],
        cancel: threading.Event,
        skip_folders: set[str] | None = None,
        events: list[ObjectEvent] | None = None,
    ) -> None:
        self.glue, self.s3 = glue, s3
        self.name, self.definition, self.cancel = name, definition, cancel
        # an incremental crawl (CRAWL_NEW_FOLDERS_ONLY): folders earlier crawls read, not read again
        self.skip_folders = skip_folders
        # an S3 event mode crawl (CRAWL_EVENT_MODE): only the folders these events name are
        # listed and read (glue/events.py); None: the whole target is listed
        self.events = events
        self.partitions_deleted = 0
        self.partitions_gone_logged = 0
        self.folders_read: set[str] = set()
        self.objects_read = 0
        self.schema_changes: list[str] = []

    def run(self) -> dict[str, int]:
        """Crawl every target; answer the summary (TablesCreated, TablesUpdated, PartitionsAdded)."""
        definition = self.definition
        database = definition.get("DatabaseName")
        if not database:
            raise CrawlFailed("the crawler has no DatabaseName")
        glue = self.glue
        try:
            glue.get_database(Name=database)
        except glue.exceptions.EntityNotFoundException as error:
            raise CrawlFailed(f"Database {database} not found") from error
        summary = {"TablesCreated": 0, "TablesUpdated": 0, "PartitionsAdded": 0, "ObjectsRead": 0}
        for target in definition["Targets"].get("S3Targets", []):
            if self.cancel.is_set():
                break
            created, partitions = self._crawl_target(target, database)
            if created is not None:
                summary["TablesCreated" if created else "TablesUpdated"] += 1
            summary["PartitionsAdded"] += partitions
        # CatalogTargets: crawl the S3 location of existing catalog tables, keeping their names
        buckets: set[str] = set()
        for catalog_target in definition["Targets"].get("CatalogTargets", []):
            target_database = catalog_target["DatabaseName"]
            for table_name in catalog_target.get("Tables", []):
                if self.cancel.is_set():
                    break
                try:
                    table = glue.get_table(DatabaseName=target_database, Name=table_name)["Table"]
                except glue.exceptions.EntityNotFoundException as error:
                    raise CrawlFailed(f"Table {target_database}.{table_name} not found") from error
                target = {"Path": table["StorageDescriptor"]["Location"], "Exclusions": []}
                buckets.add(split_s3_uri(target["Path"])[0])
                if self.events is not None and len(buckets) > 1:
                    raise CrawlFailed("S3 event mode: all catalog tables of a Data Catalog target must point "
                                      f"to the same Amazon S3 bucket, not {sorted(buckets)}")  # fmt: skip
                depth = len(table.get("PartitionKeys", []))
                created, partitions = self._crawl_target(target, target_database, table_name, depth)
                if created is not None:
                    summary["TablesUpdated"] += 1
                summary["PartitionsAdded"] += partitions
        summary["ObjectsRead"] = self.objects_read
        if self.events is not None:
            summary["PartitionsDeleted"] = self.partitions_deleted
            summary["PartitionsGoneLogged"] = self.partitions_gone_logged
        if self.schema_changes:  # UpdateBehavior LOG: logged, the table left as it is
            summary["SchemaChangesLogged"] = len(self.schema_changes)
            for change in self.schema_changes:
                log.warning("crawler %s: %s", self.name, change)
        return summary

    def _crawl_target(
        self, target: dict[str, Any], database: str, table_name: str | None = None, depth: int | None = None
    ) -> tuple[bool | None, int]:
        """(table created?, partitions added); None for a location with no data files.

        ``depth``: a catalog target's number of partition keys (its folders' depth)."""
        s3 = self.s3
        path = target["Path"] if target["Path"].endswith("/") else target["Path"] + "/"
        bucket, prefix = split_s3_uri(path)
        exclusions = target.get("Exclusions", [])
        # event mode: list only the folders the events name, never the whole target
        listed = [prefix] if self.events is None else sorted(changed_folders(self.events, path, depth))
        objects = [
            obj
            for folder in listed
            for obj in list_objects(s3, bucket, folder)
            if not is_excluded(obj.key[len(prefix) :], exclusions) and obj.size > 0
        ]
        if self.events is not None:
            present = {f"{prefix}{'/'.join(obj.key[len(prefix) :].split('/')[:-1])}/" for obj in objects}
            gone = [folder for folder in listed if folder not in present and folder != prefix]
            if gone and table_name is not None:
                self._partitions_gone(database, table_name, prefix, gone)
        if self.events is not None and not listed:
            return None, 0  # no event names a folder of this target: nothing listed, nothing read
        if not objects:
            # As Glue: a crawl of an empty location SUCCEEDS and changes nothing ("Crawler
            # completed and made no changes"); a day that wrote no rows must not fail a recrawl.
            log.info("crawler %s: no data files under %s, nothing to catalog", self.name, path)
            return None, 0
        depth = max(len(partition_levels(o.key[len(prefix) :])) for o in objects)
        objects = [o for o in objects if len(partition_levels(o.key[len(prefix) :])) == depth]
        if self.skip_folders is not None:
            objects = [o for o in objects if _folder(o) not in self.skip_folders]
            if not objects:
                return False, 0  # nothing new since the last crawl: nothing read, nothing changed
        self.folders_read |= {_folder(o) for o in objects}

        partitions: dict[tuple[str, ...], list[S3Object]] = {}
        keys: list[str] = []
        for obj in objects:
            levels = partition_levels(obj.key[len(prefix) :])
            keys = partition_keys(levels)
            partitions.setdefault(tuple(value for _key, value in levels), []).append(obj)

        sample_files = int(env_float("LOCALAWS_CRAWL_SAMPLE_FILES", 2))
        sample_lines = int(env_float("LOCALAWS_CRAWL_SAMPLE_LINES", 2000))
        schema: OrderedDict[str, str | None] = OrderedDict()
        formats, compressed = set(), False
        for files in partitions.values():
            if self.cancel.is_set():
                return False, 0
            for obj in files[:sample_files]:
                raw = s3.get_object(Bucket=obj.bucket, Key=obj.key)["Body"].read()
                self.objects_read += 1
                compressed = compressed or raw[:2] == b"\x1f\x8b"
                try:
                    data = read_bytes(s3, obj.bucket, obj.key) if raw[:2] == b"\x1f\x8b" else raw
                except OSError as error:
                    raise CrawlFailed(f"{obj.uri}: unreadable file ({error})") from error
                fmt = detect_format(obj.key, data)
                formats.add(fmt)
                try:
                    if fmt == "parquet":
                        file_schema = parquet_schema(data, obj.uri)
                    elif fmt == "json":
                        file_schema = json_lines_schema(data, sample_lines, obj.uri)
                    else:
                        file_schema = csv_schema(data, sample_lines, obj.uri)
                except UnicodeDecodeError as error:
                    raise CrawlFailed(
                        f"{obj.uri}: unreadable file (not UTF-8 text: {error.reason})"
                    ) from error
                merge_schemas(schema, file_schema)
        if len(formats) > 1:
            raise CrawlFailed(f"{path}: mixed file formats {sorted(formats)} under one table")
        fmt = formats.pop()
        for key in keys:
            schema.pop(key, None)  # a partition key is not also a data column
        columns = [{"Name": name, "Type": kind or "string"} for name, kind in schema.items()]
        table = table_name or table_name_for(path, self.definition.get("TablePrefix", ""))
        created = self._upsert_table(database, table, fmt, path, columns, keys, compressed)
        added = self._add_partitions(database, table, fmt, path, columns, keys, partitions)
        return created, added

    def _upsert_table(
        self,
        database: str,
        table: str,
        fmt: str,
        location: str,
        columns: list[dict[str, str]],
        keys: list[str],
        compressed: bool,
    ) -> bool:
        glue = self.glue
        parameters = {
            "classification": fmt,
            "compressionType": "gzip" if compressed else "none",
            "typeOfData": "file",
            "UPDATED_BY_CRAWLER": self.name,
            "CrawlerSchemaSerializerVersion": "1.0",
        }
        if fmt == "csv":
            parameters.update({"skip.header.line.count": "1", "delimiter": ","})
        table_input = {
            "Name": table,
            "StorageDescriptor": storage_descriptor(fmt, location, columns),
            "PartitionKeys": [{"Name": k, "Type": "string"} for k in keys],
            "TableType": "EXTERNAL_TABLE",
            "Parameters": parameters,
        }
        try:
            existing = glue.get_table(DatabaseName=database, Name=table)["Table"]
        except glue.exceptions.EntityNotFoundException:
            glue.create_table(DatabaseName=database, TableInput=table_input)
            return True
        policy = self.definition.get("SchemaChangePolicy", {}).get("UpdateBehavior", "UPDATE_IN_DATABASE")
        if policy == "LOG":
            declared = {
                c["Name"]: c["Type"] for c in existing.get("StorageDescriptor", {}).get("Columns", [])
            }
            for column in columns:
                if column["Name"] not in declared:
                    self.schema_changes.append(
                        f"{database}.{table}: new column {column['Name']} {column['Type']}"
                    )
                elif declared[column["Name"]] != column["Type"]:
                    self.schema_changes.append(f"{database}.{table}: column {column['Name']} is "
                                               f"{declared[column['Name']]}, the data has {column['Type']}")  # fmt: skip
            return False
        # keep columns the catalog already has (a column missing from today's files is not dropped)
        merged: OrderedDict[str, str | None] = OrderedDict(
            (c["Name"], c["Type"]) for c in existing.get("StorageDescriptor", {}).get("Columns", [])
        )
        merge_schemas(merged, {c["Name"]: c["Type"] for c in columns})
        table_input["StorageDescriptor"]["Columns"] = [
            {"Name": n, "Type": t or "string"} for n, t in merged.items()
        ]
        if fmt == "json":
            table_input["StorageDescriptor"]["SerdeInfo"]["Parameters"]["paths"] = ",".join(merged)
        glue.update_table(DatabaseName=database, TableInput=table_input)
        return False

    def _add_partitions(
        self,
        database: str,
        table: str,
        fmt: str,
        location: str,
        columns: list[dict[str, str]],
        keys: list[str],
        partitions: dict[tuple[str, ...], list[S3Object]],
    ) -> int:
        if not keys:
            return 0
        glue = self.glue
        existing = set()
        for page in glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table):
            existing.update(tuple(p["Values"]) for p in page["Partitions"])
        new = []
        inherit = _inherits_from_table(self.definition)
        table_storage = glue.get_table(DatabaseName=database, Name=table)["Table"]["StorageDescriptor"]
        for values in sorted(partitions):
            if values in existing:
                continue
            # the folder as it really is in S3 (hive or plain), from one of its files
            sample_key = partitions[values][0].key
            prefix_len = len(split_s3_uri(location)[1])
            folder = "/".join(sample_key[prefix_len:].split("/")[:-1])
            storage = (
                {
                    **{k: v for k, v in table_storage.items() if k != "Location"},
                    "Location": f"{location}{folder}/",
                }
                if inherit
                else storage_descriptor(fmt, f"{location}{folder}/", columns)
            )
            new.append(
                {
                    "Values": list(values),
                    "StorageDescriptor": storage,
                    "Parameters": {"classification": fmt},
                }
            )
        for start in range(0, len(new), 100):
            response = glue.batch_create_partition(
                DatabaseName=database, TableName=table, PartitionInputList=new[start : start + 100]
            )
            errors = [
                e
                for e in response.get("Errors", [])
                if e["ErrorDetail"]["ErrorCode"] != "AlreadyExistsException"
            ]
            if errors:
                raise CrawlFailed(
                    f"registering partitions of {database}.{table} failed: {errors[0]['ErrorDetail']}"
                )
        return len(new)

    def _partitions_gone(self, database: str, table: str, prefix: str, folders: list[str]) -> None:
        """Folders an ObjectRemoved event named that hold no object now: their partitions are
        gone. DeleteBehavior LOG logs it, DELETE_FROM_DATABASE deletes the partition."""
        glue = self.glue
        delete = self.definition.get("SchemaChangePolicy", {}).get("DeleteBehavior") == "DELETE_FROM_DATABASE"
        for folder in folders:
            values = [value for _key, value in partition_levels(folder[len(prefix) :])]
            try:
                glue.get_partition(DatabaseName=database, TableName=table, PartitionValues=values)
            except glue.exceptions.EntityNotFoundException:
                continue  # never cataloged: nothing to log or delete
            if delete:
                glue.batch_delete_partition(
                    DatabaseName=database, TableName=table, PartitionsToDelete=[{"Values": values}]
                )
                self.partitions_deleted += 1
            else:
                self.partitions_gone_logged += 1
                log.warning("crawler %s: %s.%s partition %s no longer exists (DeleteBehavior LOG: kept)",
                            self.name, database, table, values)  # fmt: skip


def _folder(obj: S3Object) -> str:
    return f"s3://{obj.bucket}/{obj.key.rsplit('/', 1)[0]}/"


def _inherits_from_table(definition: dict[str, Any]) -> bool:
    """Configuration CrawlerOutput.Partitions.AddOrUpdateBehavior = InheritFromTable."""
    try:
        configuration = json.loads(definition.get("Configuration") or "{}")
    except ValueError:
        return False
    behavior = configuration.get("CrawlerOutput", {}).get("Partitions", {}).get("AddOrUpdateBehavior")
    return behavior == "InheritFromTable"
