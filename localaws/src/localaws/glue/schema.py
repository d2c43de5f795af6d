"""What a crawl infers, without any I/O: column types, file formats, partition folders.

Pure functions, tested on bytes and keys alone; ``glue_crawl.py`` feeds them S3 objects.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import os
import re
from collections import OrderedDict
from typing import Any

import pyarrow.parquet as pq

from localaws.hive_formats import (
    JSON_SERDE,
    LAZY_SIMPLE_SERDE,
    PARQUET_INPUT,
    PARQUET_OUTPUT,
    PARQUET_SERDE,
    TEXT_INPUT,
    TEXT_OUTPUT,
)
from localaws.s3io import split_s3_uri

_NUMERIC_RANK = {"int": 0, "bigint": 1, "double": 2}


def env_float(name: str, default: float) -> float:
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
            "SerdeInfo": {
                "SerializationLibrary": LAZY_SIMPLE_SERDE,
                "Parameters": {"field.delim": csv_delim},
            },
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
