"""Glue crawlers that really crawl: S3 files in, Glue Data Catalog tables and partitions out.

moto's crawler crawls nothing, only advances on ListCrawls and answers UpdateCrawler
with a 500. Here every crawler action behaves like AWS, and StartCrawler runs a crawl
in a background thread:

1. list the objects under each S3 target (honouring ``Exclusions`` globs, skipping
   ``_``/``.`` files as Glue does);
2. read the schema of each file (JSON lines, optionally gzip; CSV with a header;
   Parquet) and merge the schemas (int + double -> double, anything else that
   disagrees -> string, as Glue does);
3. turn the folder levels under the target into partition keys: ``key=value`` folders
   keep their key, plain folders become ``partition_0``, ``partition_1``, ...;
4. create or update the table (``TablePrefix`` + the target's last folder name) in the
   crawler's database and register every partition not yet in the catalog.

To keep a crawl of thousands of files quick, the schema is read from at most
``LOCALAWS_CRAWL_SAMPLE_FILES`` files per partition (default 2) and the first
``LOCALAWS_CRAWL_SAMPLE_LINES`` lines of a text file (default 2000); every partition is
still listed and registered. A crawl lasts at least ``LOCALAWS_CRAWL_MIN_SECONDS``
(default 1) so that code waiting for a crawler is really exercised.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import logging
import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from localaws.errors import AwsError
from localaws.s3io import S3Object, list_objects, read_bytes, split_s3_uri
from localaws.server import Extension, JsonHandler

log = logging.getLogger("localaws.glue")

JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
CSV_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"

_NUMERIC_RANK = {"int": 0, "bigint": 1, "double": 2}


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


class CrawlFailed(Exception):
    """A crawl that ends FAILED; the message becomes LastCrawl.ErrorMessage."""


# --- schema inference (pure) -----------------------------------------------------------


def merge_types(left: str | None, right: str | None) -> str | None:
    """Glue's merge of two column types seen in different files or rows."""
    if left is None:
        return right
    if right is None or left == right:
        return left
    if left in _NUMERIC_RANK and right in _NUMERIC_RANK:
        return max(left, right, key=_NUMERIC_RANK.__getitem__)
    return "string"


def python_value_type(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double"
    return "string"  # str, and nested objects/arrays (kept as JSON text)


def text_value_type(text: str) -> str | None:
    """The type of a CSV cell."""
    if text == "":
        return None
    if text.lower() in ("true", "false"):
        return "boolean"
    if re.fullmatch(r"[+-]?\d+", text):
        return "bigint"
    try:
        float(text)
    except ValueError:
        return "string"
    return "double"


Schema = "OrderedDict[str, str | None]"


def merge_schemas(into: OrderedDict[str, str | None], other: dict[str, str | None]) -> None:
    for name, kind in other.items():
        into[name] = merge_types(into.get(name), kind) if name in into else kind


def json_lines_schema(data: bytes, max_lines: int, where: str) -> OrderedDict[str, str | None]:
    schema: OrderedDict[str, str | None] = OrderedDict()
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if number > max_lines:
            break
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise CrawlFailed(f"{where}: line {number} is not JSON ({error.msg})") from error
        if not isinstance(record, dict):
            raise CrawlFailed(f"{where}: line {number} is not a JSON object")
        merge_schemas(schema, {k: python_value_type(v) for k, v in record.items()})
    return schema


def csv_schema(data: bytes, max_lines: int, where: str) -> OrderedDict[str, str | None]:
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    try:
        header = next(reader)
    except StopIteration as error:
        raise CrawlFailed(f"{where}: empty CSV file") from error
    schema: OrderedDict[str, str | None] = OrderedDict((name.strip(), None) for name in header)
    for number, row in enumerate(reader, start=2):
        if number > max_lines:
            break
        if len(row) != len(header):
            raise CrawlFailed(f"{where}: line {number} has {len(row)} fields, the header {len(header)}")
        merge_schemas(schema, {name.strip(): text_value_type(v) for name, v in zip(header, row, strict=True)})
    return schema


def _arrow_to_glue(arrow_type: Any) -> str:
    import pyarrow.types as pt

    if pt.is_boolean(arrow_type):
        return "boolean"
    if pt.is_int8(arrow_type) or pt.is_int16(arrow_type) or pt.is_int32(arrow_type):
        return "int"
    if pt.is_integer(arrow_type):
        return "bigint"
    if pt.is_float32(arrow_type):
        return "float"
    if pt.is_floating(arrow_type):
        return "double"
    if pt.is_timestamp(arrow_type):
        return "timestamp"
    if pt.is_date(arrow_type):
        return "date"
    if pt.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    return "string"


def parquet_schema(data: bytes, where: str) -> OrderedDict[str, str | None]:
    try:
        schema = pq.read_schema(io.BytesIO(data))
    except Exception as error:
        raise CrawlFailed(f"{where}: unreadable Parquet file ({error})") from error
    return OrderedDict((f.name, _arrow_to_glue(f.type)) for f in schema)


def detect_format(key: str, data: bytes) -> str:
    """``json``, ``csv`` or ``parquet``, by content first (as Glue's classifiers do)."""
    if data[:4] == b"PAR1":
        return "parquet"
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        return "json"
    lowered = key.lower().removesuffix(".gz")
    if lowered.endswith((".json", ".jsonl", ".ndjson")):
        return "json"
    return "csv"


# --- partitions (pure) ------------------------------------------------------------------


def partition_levels(relative_key: str) -> list[tuple[str | None, str]]:
    """Folder levels between the target and the file: (hive key or None, value)."""
    levels = []
    for folder in relative_key.split("/")[:-1]:
        key, sep, value = folder.partition("=")
        levels.append((key, value) if sep else (None, folder))
    return levels


def partition_keys(levels: list[tuple[str | None, str]]) -> list[str]:
    return [key if key else f"partition_{i}" for i, (key, _value) in enumerate(levels)]


def table_name_for(path: str, prefix: str) -> str:
    _bucket, key_prefix = split_s3_uri(path)
    folder = key_prefix.rstrip("/").rsplit("/", 1)[-1] or _bucket
    return re.sub(r"[^a-z0-9_]", "_", (prefix + folder).lower())


def is_excluded(relative_key: str, exclusions: list[str]) -> bool:
    name = relative_key.rsplit("/", 1)[-1]
    if name.startswith(("_", ".")) or name.endswith("$folder$") or relative_key.endswith("/"):
        return True
    for pattern in exclusions:
        # Glue globs: ** crosses folders, * does not; fnmatch's * crosses, close enough
        # once ** is reduced to *.
        if fnmatch.fnmatch(relative_key, pattern.replace("**", "*")):
            return True
    return False


def storage_descriptor(fmt: str, location: str, columns: list[dict[str, str]], csv_delim: str = ",") -> dict:
    if fmt == "parquet":
        return {
            "Columns": columns,
            "Location": location,
            "InputFormat": PARQUET_INPUT,
            "OutputFormat": PARQUET_OUTPUT,
            "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}},
        }
    if fmt == "csv":
        return {
            "Columns": columns,
            "Location": location,
            "InputFormat": TEXT_INPUT,
            "OutputFormat": TEXT_OUTPUT,
            "SerdeInfo": {"SerializationLibrary": CSV_SERDE, "Parameters": {"field.delim": csv_delim}},
        }
    return {
        "Columns": columns,
        "Location": location,
        "InputFormat": TEXT_INPUT,
        "OutputFormat": TEXT_OUTPUT,
        "SerdeInfo": {
            "SerializationLibrary": JSON_SERDE,
            "Parameters": {"paths": ",".join(c["Name"] for c in columns)},
        },
    }


# --- the crawler service ----------------------------------------------------------------


@dataclass
class Crawl:
    crawl_id: str
    start_time: float
    state: str = "RUNNING"
    end_time: float | None = None
    error_message: str | None = None
    summary: dict[str, int] = field(default_factory=dict)


@dataclass
class Crawler:
    definition: dict[str, Any]
    creation_time: float
    last_updated: float
    version: int = 1
    state: str = "READY"
    crawls: list[Crawl] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    tables_created: int = 0
    tables_updated: int = 0

    @property
    def name(self) -> str:
        return self.definition["Name"]

    def describe(self) -> dict[str, Any]:
        out = {k: v for k, v in self.definition.items() if k != "Tags"}
        out.setdefault(
            "SchemaChangePolicy",
            {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "DEPRECATE_IN_DATABASE"},
        )
        out.setdefault("RecrawlPolicy", {"RecrawlBehavior": "CRAWL_EVERYTHING"})
        out.setdefault("LineageConfiguration", {"CrawlerLineageSettings": "DISABLE"})
        out.setdefault("Classifiers", [])
        out.update(
            State=self.state,
            CreationTime=self.creation_time,
            LastUpdated=self.last_updated,
            Version=self.version,
            CrawlElapsedTime=0,
        )
        finished = [c for c in self.crawls if c.end_time is not None]
        if self.state == "RUNNING" and self.crawls:
            out["CrawlElapsedTime"] = int((time.time() - self.crawls[-1].start_time) * 1000)
        if finished:
            last = finished[-1]
            out["LastCrawl"] = {
                "Status": last.state,
                "StartTime": last.start_time,
                "LogGroup": "/aws-glue/crawlers",
                "LogStream": self.name,
                "MessagePrefix": last.crawl_id,
            }
            if last.error_message:
                out["LastCrawl"]["ErrorMessage"] = last.error_message
        return out


CRAWLER_FIELDS = {
    "Name", "Role", "DatabaseName", "Description", "Targets", "Schedule", "Classifiers",
    "TablePrefix", "SchemaChangePolicy", "RecrawlPolicy", "LineageConfiguration",
    "LakeFormationConfiguration", "Configuration", "CrawlerSecurityConfiguration", "Tags",
}  # fmt: skip


class GlueCrawlerExtension(Extension):
    def __init__(self, stack: Any) -> None:
        super().__init__(stack)
        self.crawlers: dict[str, Crawler] = {}
        self.lock = threading.RLock()
        self.threads: list[threading.Thread] = []

    def handlers(self) -> dict[str, JsonHandler]:
        actions = {
            "CreateCrawler": self.create_crawler,
            "GetCrawler": self.get_crawler,
            "GetCrawlers": self.get_crawlers,
            "BatchGetCrawlers": self.batch_get_crawlers,
            "ListCrawlers": self.list_crawlers,
            "UpdateCrawler": self.update_crawler,
            "DeleteCrawler": self.delete_crawler,
            "StartCrawler": self.start_crawler,
            "StopCrawler": self.stop_crawler,
            "ListCrawls": self.list_crawls,
            "GetCrawlerMetrics": self.get_crawler_metrics,
        }
        return {f"AWSGlue.{action}": handler for action, handler in actions.items()}

    def reset(self) -> None:
        self.shutdown()
        with self.lock:
            self.crawlers.clear()

    def shutdown(self) -> None:
        with self.lock:
            for crawler in self.crawlers.values():
                crawler.cancel.set()
        for thread in self.threads:
            thread.join(timeout=10)
        self.threads = []

    # -- definitions --------------------------------------------------------------------

    def _crawler(self, name: str) -> Crawler:
        crawler = self.crawlers.get(name)
        if crawler is None:
            raise AwsError("EntityNotFoundException", f"Crawler entry with name {name} does not exist")
        return crawler

    @staticmethod
    def _definition(request: dict[str, Any]) -> dict[str, Any]:
        definition = {k: v for k, v in request.items() if k in CRAWLER_FIELDS}
        targets = definition.get("Targets") or {}
        if not any(
            targets.get(kind) for kind in ("S3Targets", "JdbcTargets", "CatalogTargets", "DynamoDBTargets")
        ):
            raise AwsError("InvalidInputException", "Crawler targets must not be empty")
        return definition

    def create_crawler(self, request: dict[str, Any]) -> dict[str, Any]:
        definition = self._definition(request)
        if not definition.get("Name") or not definition.get("Role"):
            raise AwsError("InvalidInputException", "Name and Role are required")
        with self.lock:
            if definition["Name"] in self.crawlers:
                raise AwsError("AlreadyExistsException", f"{definition['Name']} already exists")
            now = time.time()
            self.crawlers[definition["Name"]] = Crawler(definition, creation_time=now, last_updated=now)
        return {}

    def update_crawler(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            crawler = self._crawler(request.get("Name", ""))
            if crawler.state != "READY":
                raise AwsError(
                    "CrawlerRunningException", f"Crawler with name {crawler.name} has already started"
                )
            changes = {k: v for k, v in request.items() if k in CRAWLER_FIELDS and k != "Name"}
            crawler.definition.update(changes)
            crawler.version += 1
            crawler.last_updated = time.time()
        return {}

    def delete_crawler(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            crawler = self._crawler(request.get("Name", ""))
            if crawler.state != "READY":
                raise AwsError("CrawlerRunningException", f"Crawler with name {crawler.name} is running")
            del self.crawlers[crawler.name]
        return {}

    def get_crawler(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {"Crawler": self._crawler(request.get("Name", "")).describe()}

    def get_crawlers(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {"Crawlers": [c.describe() for c in self.crawlers.values()]}

    def batch_get_crawlers(self, request: dict[str, Any]) -> dict[str, Any]:
        names = request.get("CrawlerNames", [])
        with self.lock:
            return {
                "Crawlers": [self.crawlers[n].describe() for n in names if n in self.crawlers],
                "CrawlersNotFound": [n for n in names if n not in self.crawlers],
            }

    def list_crawlers(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {"CrawlerNames": sorted(self.crawlers)}

    def list_crawls(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            crawler = self._crawler(request.get("CrawlerName", ""))
            crawls = []
            for crawl in reversed(crawler.crawls):
                state = {"SUCCEEDED": "COMPLETED", "CANCELLED": "STOPPED"}.get(crawl.state, crawl.state)
                item = {"CrawlId": crawl.crawl_id, "State": state, "StartTime": crawl.start_time}
                if crawl.end_time:
                    item["EndTime"] = crawl.end_time
                    item["Summary"] = json.dumps(crawl.summary)
                if crawl.error_message:
                    item["ErrorMessage"] = crawl.error_message
                crawls.append(item)
            return {"Crawls": crawls[: int(request.get("MaxResults", 1000))]}

    def get_crawler_metrics(self, request: dict[str, Any]) -> dict[str, Any]:
        names = request.get("CrawlerNameList") or list(self.crawlers)
        metrics = []
        with self.lock:
            for name in names:
                crawler = self.crawlers.get(name)
                if crawler is None:
                    continue
                finished = [c for c in crawler.crawls if c.end_time]
                metrics.append(
                    {
                        "CrawlerName": name,
                        "StillEstimating": False,
                        "TimeLeftSeconds": 0.0,
                        "LastRuntimeSeconds": (finished[-1].end_time - finished[-1].start_time)
                        if finished
                        else 0.0,
                        "MedianRuntimeSeconds": (finished[-1].end_time - finished[-1].start_time)
                        if finished
                        else 0.0,
                        "TablesCreated": crawler.tables_created,
                        "TablesUpdated": crawler.tables_updated,
                        "TablesDeleted": 0,
                    }
                )
        return {"CrawlerMetricsList": metrics}

    # -- running --------------------------------------------------------------------------

    def start_crawler(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            crawler = self._crawler(request.get("Name", ""))
            if crawler.state != "READY":
                raise AwsError(
                    "CrawlerRunningException", f"Crawler with name {crawler.name} has already started"
                )
            crawler.state = "RUNNING"
            crawler.cancel.clear()
            crawl = Crawl(crawl_id=str(uuid.uuid4()), start_time=time.time())
            crawler.crawls.append(crawl)
            thread = threading.Thread(
                target=self._run, args=(crawler, crawl), name=f"crawl-{crawler.name}", daemon=True
            )
            self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()
        return {}

    def stop_crawler(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            crawler = self._crawler(request.get("Name", ""))
            if crawler.state == "READY":
                raise AwsError(
                    "CrawlerNotRunningException", f"Crawler with name {crawler.name} isn't running"
                )
            if crawler.state == "STOPPING":
                raise AwsError("CrawlerStoppingException", f"Crawler with name {crawler.name} is stopping")
            crawler.state = "STOPPING"
            crawler.cancel.set()
        return {}

    def _run(self, crawler: Crawler, crawl: Crawl) -> None:
        min_seconds = _env_float("LOCALAWS_CRAWL_MIN_SECONDS", 1.0)
        status, error = "SUCCEEDED", None
        try:
            crawl.summary = self._crawl(crawler)
        except CrawlFailed as failure:
            status, error = "FAILED", str(failure)
        except AwsError as failure:
            status, error = "FAILED", f"{failure.code}: {failure.message}"
        except Exception as failure:  # an unexpected error is a failed crawl, not a dead thread
            log.exception("crawler %s failed", crawler.name)
            status, error = "FAILED", f"Internal Service Exception: {failure}"
        remaining = min_seconds - (time.time() - crawl.start_time)
        if remaining > 0:
            crawler.cancel.wait(remaining)
        with self.lock:
            if crawler.cancel.is_set() and status == "SUCCEEDED":
                status = "CANCELLED"
            crawler.state = "STOPPING"
        time.sleep(min(0.2, min_seconds / 5))
        with self.lock:
            crawl.state, crawl.error_message, crawl.end_time = status, error, time.time()
            crawler.state = "READY"
        log.info("crawler %s finished: %s %s", crawler.name, status, error or "")

    def _crawl(self, crawler: Crawler) -> dict[str, int]:
        definition = crawler.definition
        database = definition.get("DatabaseName")
        if not database:
            raise CrawlFailed("the crawler has no DatabaseName")
        glue = self.stack.internal_client("glue")
        try:
            glue.get_database(Name=database)
        except glue.exceptions.EntityNotFoundException as error:
            raise CrawlFailed(f"Database {database} not found") from error
        summary = {"TablesCreated": 0, "TablesUpdated": 0, "PartitionsAdded": 0}
        for target in definition["Targets"].get("S3Targets", []):
            if crawler.cancel.is_set():
                break
            created, partitions = self._crawl_target(crawler, target, database)
            summary["TablesCreated" if created else "TablesUpdated"] += 1
            summary["PartitionsAdded"] += partitions
        # CatalogTargets: crawl the S3 location of existing catalog tables, keeping their names
        for catalog_target in definition["Targets"].get("CatalogTargets", []):
            target_database = catalog_target["DatabaseName"]
            for table_name in catalog_target.get("Tables", []):
                if crawler.cancel.is_set():
                    break
                try:
                    table = glue.get_table(DatabaseName=target_database, Name=table_name)["Table"]
                except glue.exceptions.EntityNotFoundException as error:
                    raise CrawlFailed(f"Table {target_database}.{table_name} not found") from error
                target = {"Path": table["StorageDescriptor"]["Location"], "Exclusions": []}
                _created, partitions = self._crawl_target(crawler, target, target_database, table_name)
                summary["TablesUpdated"] += 1
                summary["PartitionsAdded"] += partitions
        with self.lock:
            crawler.tables_created += summary["TablesCreated"]
            crawler.tables_updated += summary["TablesUpdated"]
        return summary

    def _crawl_target(
        self, crawler: Crawler, target: dict[str, Any], database: str, table_name: str | None = None
    ) -> tuple[bool, int]:
        s3 = self.stack.internal_client("s3")
        path = target["Path"] if target["Path"].endswith("/") else target["Path"] + "/"
        bucket, prefix = split_s3_uri(path)
        exclusions = target.get("Exclusions", [])
        objects = [
            obj
            for obj in list_objects(s3, bucket, prefix)
            if not is_excluded(obj.key[len(prefix) :], exclusions) and obj.size > 0
        ]
        if not objects:
            raise CrawlFailed(f"no data files found under {path}")
        depth = max(len(partition_levels(o.key[len(prefix) :])) for o in objects)
        objects = [o for o in objects if len(partition_levels(o.key[len(prefix) :])) == depth]

        partitions: dict[tuple[str, ...], list[S3Object]] = {}
        keys: list[str] = []
        for obj in objects:
            levels = partition_levels(obj.key[len(prefix) :])
            keys = partition_keys(levels)
            partitions.setdefault(tuple(value for _key, value in levels), []).append(obj)

        sample_files = int(_env_float("LOCALAWS_CRAWL_SAMPLE_FILES", 2))
        sample_lines = int(_env_float("LOCALAWS_CRAWL_SAMPLE_LINES", 2000))
        schema: OrderedDict[str, str | None] = OrderedDict()
        formats, compressed = set(), False
        for files in partitions.values():
            if crawler.cancel.is_set():
                return False, 0
            for obj in files[:sample_files]:
                raw = s3.get_object(Bucket=obj.bucket, Key=obj.key)["Body"].read()
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
        table = table_name or table_name_for(path, crawler.definition.get("TablePrefix", ""))
        created = self._upsert_table(crawler, database, table, fmt, path, columns, keys, compressed)
        added = self._add_partitions(database, table, fmt, path, columns, keys, partitions)
        return created, added

    def _upsert_table(
        self,
        crawler: Crawler,
        database: str,
        table: str,
        fmt: str,
        location: str,
        columns: list[dict[str, str]],
        keys: list[str],
        compressed: bool,
    ) -> bool:
        glue = self.stack.internal_client("glue")
        parameters = {
            "classification": fmt,
            "compressionType": "gzip" if compressed else "none",
            "typeOfData": "file",
            "UPDATED_BY_CRAWLER": crawler.name,
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
        policy = crawler.definition.get("SchemaChangePolicy", {}).get("UpdateBehavior", "UPDATE_IN_DATABASE")
        if policy == "LOG":
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
        glue = self.stack.internal_client("glue")
        existing = set()
        for page in glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table):
            existing.update(tuple(p["Values"]) for p in page["Partitions"])
        new = []
        for values in sorted(partitions):
            if values in existing:
                continue
            # the folder as it really is in S3 (hive or plain), from one of its files
            sample_key = partitions[values][0].key
            prefix_len = len(split_s3_uri(location)[1])
            folder = "/".join(sample_key[prefix_len:].split("/")[:-1])
            new.append(
                {
                    "Values": list(values),
                    "StorageDescriptor": storage_descriptor(fmt, f"{location}{folder}/", columns),
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
