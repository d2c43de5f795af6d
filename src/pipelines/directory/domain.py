"""Nesting a directory CSV into one item per department, validated before anything is written.

The file has one row per (department, employee) and any number of fact columns. Each
department becomes ``{"department": d, "employees": {employee: {fact: value}}}`` with
numbers as numbers, ``true``/``false`` as booleans, and empty cells left out.
Pure functions, no AWS, no Airflow.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote_plus

KEY_COLUMNS = ("department", "employee")
MAX_ITEM_BYTES = 400 * 1024
INCOMING_PREFIX = "directory/incoming/"

_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")


class DirectoryFileError(ValueError):
    """The file cannot be loaded; the message names the file and the rows. Nothing was written."""


def convert(cell: str) -> Any:
    """A CSV cell as DynamoDB should store it (None: leave the fact out)."""
    text = cell.strip()
    if text == "":
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if re.match(r"[+-]?0\d", text):
        return text  # "007", "0470..." keep their leading zeros: identifiers, not numbers
    if _INTEGER.fullmatch(text):
        return int(text)
    if _NUMBER.fullmatch(text):
        try:
            return Decimal(text)
        except InvalidOperation:
            return text
    return text


def attribute_size(value: Any) -> int:
    """DynamoDB's item size accounting (names + values; numbers ~1 byte per 2 digits + 1)."""
    if value is None:
        return 1
    if isinstance(value, bool):
        return 1
    if isinstance(value, int | Decimal):
        digits = len(str(value).lstrip("-").replace(".", "").lstrip("0")) or 1
        return (digits + 1) // 2 + 1
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, dict):
        return 3 + sum(len(k.encode("utf-8")) + attribute_size(v) + 1 for k, v in value.items())
    if isinstance(value, list | tuple):
        return 3 + sum(attribute_size(v) + 1 for v in value)
    return len(str(value).encode("utf-8"))


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode("utf-8")) + attribute_size(value) for name, value in item.items())


def nest(data: bytes, source: str) -> dict[str, dict[str, Any]]:
    """{department: item} from the CSV bytes; raises DirectoryFileError naming file and rows."""
    if not data.strip():
        raise DirectoryFileError(f"{source}: the file is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        row = data[: error.start].count(b"\n") + 1
        raise DirectoryFileError(f"{source}, row {row}: not UTF-8 text (byte {error.start})") from error
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in KEY_COLUMNS if c not in header]
    if missing:
        raise DirectoryFileError(
            f"{source}: missing required column(s) {', '.join(missing)}; found {', '.join(header)}"
        )
    reader.fieldnames = header
    departments: dict[str, dict[str, Any]] = {}
    first_row: dict[tuple[str, str], int] = {}
    rows_of: dict[str, list[int]] = defaultdict(list)
    problems: list[str] = []
    for row_number, row in enumerate(reader, start=2):
        if None in row:  # more cells than header columns
            problems.append(
                f"row {row_number}: {len(header) + len(row[None])} cells for {len(header)} columns"
            )
            continue
        department, employee = (row.get("department") or "").strip(), (row.get("employee") or "").strip()
        if not department or not employee:
            problems.append(f"row {row_number}: empty department or employee")
            continue
        key = (department, employee)
        if key in first_row:
            problems.append(f"rows {first_row[key]} and {row_number}: duplicate (department, employee) {key}")
            continue
        first_row[key] = row_number
        rows_of[department].append(row_number)
        facts = {}
        for column, cell in row.items():
            if column in KEY_COLUMNS:
                continue
            value = convert(cell or "")
            if value is not None:
                facts[column] = value
        departments.setdefault(department, {"department": department, "employees": {}})["employees"][
            employee
        ] = facts
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise DirectoryFileError(f"{source}: {shown}")
    if not departments:
        raise DirectoryFileError(f"{source}: the file has a header but no rows")
    for department, item in departments.items():
        size = item_size(item) + 200  # room for source_key, source_etag, loaded_at
        if size > MAX_ITEM_BYTES:
            rows = rows_of[department]
            raise DirectoryFileError(
                f"{source}, rows {rows[0]}-{rows[-1]}: department {department!r} would be a "
                f"{size:,}-byte item, over DynamoDB's {MAX_ITEM_BYTES:,}-byte limit"
            )
    return departments


def keys_from_s3_events(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(key, event time) of every new ``directory/incoming/*.csv`` in SQS messages of S3 events."""
    found = []
    for message in messages:
        body = message.get("Body", message) if isinstance(message, dict) else message
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except json.JSONDecodeError:
                continue
        for record in (body or {}).get("Records", []):  # s3:TestEvent has no Records
            if not str(record.get("eventName", "")).startswith("ObjectCreated"):
                continue
            key = unquote_plus(record["s3"]["object"]["key"])
            if key.startswith(INCOMING_PREFIX) and key.endswith(".csv"):
                found.append((key, record.get("eventTime", "")))
    return found


def messages_from_asset_events(events: Any) -> list[dict[str, Any]]:
    """The SQS messages carried by the AssetWatcher's events (extra.payload.message_batch)."""
    messages: list[dict[str, Any]] = []
    for event in events or []:
        extra = (
            getattr(event, "extra", None) or (event.get("extra") if isinstance(event, dict) else None) or {}
        )
        payload = extra.get("payload", extra)
        messages.extend(payload.get("message_batch", []) or [])
    return messages
