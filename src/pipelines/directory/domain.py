"""Nesting a directory CSV into one item per department, validated before anything is written.

The file has one row per (department, employee) and any number of fact columns. Each
department becomes ``{"department": d, "employees": {employee: {fact: value}}}``; empty
cells are left out. Types are decided per column, never per cell, so one identifier
column is never half numbers and half text:

- a column is numeric when every non-empty cell is a plain number: digits, an optional
  fraction and exponent, no sign and no leading zero ("0" and "0.5" are fine; "+1555...",
  "-3" and "02134" are not): then every cell becomes a number;
- a column is boolean when every non-empty cell is ``true``/``false`` (any case);
- otherwise every cell stays text, exactly as written.

Every item is converted to its DynamoDB wire form here (boto3's TypeSerializer), so a
value DynamoDB cannot store (``1e200``, over 38 significant digits) fails validation,
naming the file, row and column, and nothing is written.
Pure functions, no AWS, no Airflow.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from decimal import Decimal, DecimalException
from typing import Any
from urllib.parse import unquote_plus

from boto3.dynamodb.types import TypeSerializer

from pipelines.errors import BadInput
from pipelines.guard import Removal

KEY_COLUMNS = ("department", "employee")
MAX_ITEM_BYTES = 400 * 1024
INCOMING_PREFIX = "directory/incoming/"
MAX_PROBLEMS_SHOWN = 10

_PLAIN_NUMBER = re.compile(r"(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
_BOOLEAN = ("true", "false")
_serializer = TypeSerializer()


class DirectoryFileError(BadInput):
    """The file cannot be loaded; the message names the file and the rows. Nothing was written."""


def column_kind(cells: list[str]) -> str:
    """ "number", "boolean" or "text": what every cell of a column becomes (see module doc)."""
    filled = [cell.strip() for cell in cells if cell.strip()]
    if filled and all(_PLAIN_NUMBER.fullmatch(cell) for cell in filled):
        return "number"
    if filled and all(cell.lower() in _BOOLEAN for cell in filled):
        return "boolean"
    return "text"


def convert(cell: str, kind: str) -> Any:
    """A CSV cell as DynamoDB should store it in a column of ``kind`` (None: leave the fact out)."""
    text = cell.strip()
    if text == "":
        return None
    if kind == "number":
        return int(text) if text.isdigit() else Decimal(text)
    if kind == "boolean":
        return text.lower() == "true"
    return cell


def to_wire(value: Any) -> dict[str, Any]:
    """``value`` in DynamoDB's wire form; decimal errors (Overflow, Inexact, Rounded...) pass through."""
    return _serializer.serialize(value)


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


def _read_rows(data: bytes, source: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    if not data.strip():
        raise DirectoryFileError(f"{source}: the file is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        row = data[: error.start].count(b"\n") + 1
        raise DirectoryFileError(f"{source}, row {row}: not UTF-8 text (byte {error.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip() for name in next(reader)]
        rows = [(reader.line_num, row) for row in reader if row]  # blank lines are not rows
    except csv.Error as error:
        raise DirectoryFileError(f"{source}, row {reader.line_num}: not valid CSV ({error})") from None
    missing = [c for c in KEY_COLUMNS if c not in header]
    if missing:
        raise DirectoryFileError(
            f"{source}: missing required column(s) {', '.join(missing)}; found {', '.join(header)}"
        )
    unnamed = [str(i + 1) for i, name in enumerate(header) if not name]
    if unnamed:
        raise DirectoryFileError(f"{source}, row 1: column(s) {', '.join(unnamed)} have no name")
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if name in seen:
            raise DirectoryFileError(
                f"{source}, row 1: duplicate column {name!r} (columns {seen[name]} and {position})"
            )
        seen[name] = position
    return header, rows


def _shown(problems: list[str]) -> str:
    more = len(problems) - MAX_PROBLEMS_SHOWN
    return "; ".join(problems[:MAX_PROBLEMS_SHOWN]) + (f"; and {more} more" if more > 0 else "")


def nest(data: bytes, source: str) -> dict[str, dict[str, Any]]:
    """{department: item} from the CSV bytes; raises DirectoryFileError naming file, rows, columns.

    Every value is also converted to DynamoDB's wire form, so an item returned here can be
    written (see ``wire_items``).
    """
    header, rows = _read_rows(data, source)
    problems: list[str] = []
    complete: list[tuple[int, list[str]]] = []
    for row_number, row in rows:
        if len(row) != len(header):
            problems.append(f"row {row_number}: {len(row)} cells for {len(header)} columns")
        else:
            complete.append((row_number, row))
    fact_columns = [(i, name) for i, name in enumerate(header) if name not in KEY_COLUMNS]
    kinds = {name: column_kind([row[i] for _, row in complete]) for i, name in fact_columns}
    department_at, employee_at = header.index("department"), header.index("employee")

    departments: dict[str, dict[str, Any]] = {}
    first_row: dict[tuple[str, str], int] = {}
    rows_of: dict[str, list[int]] = defaultdict(list)
    for row_number, row in complete:
        department, employee = row[department_at].strip(), row[employee_at].strip()
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
        for index, column in fact_columns:
            value = convert(row[index], kinds[column])
            if value is None:
                continue
            try:
                to_wire(value)
            except DecimalException as error:
                problems.append(
                    f"row {row_number}, column {column!r}: {row[index].strip()[:60]!r} cannot be stored as a "
                    f"DynamoDB number (at most 38 significant digits, magnitude 1e-130..1e126; "
                    f"{type(error).__name__})"
                )
                continue
            facts[column] = value
        departments.setdefault(department, {"department": department, "employees": {}})["employees"][
            employee
        ] = facts
    if problems:
        raise DirectoryFileError(f"{source}: {_shown(problems)}")
    if not departments:
        raise DirectoryFileError(f"{source}: the file has a header but no rows")
    for department, item in departments.items():
        size = item_size(item) + 200  # room for source_key, source_etag, loaded_at
        if size > MAX_ITEM_BYTES:
            rows_in = rows_of[department]
            raise DirectoryFileError(
                f"{source}, rows {rows_in[0]}-{rows_in[-1]}: department {department!r} would be a "
                f"{size:,}-byte item, over DynamoDB's {MAX_ITEM_BYTES:,}-byte limit"
            )
    return departments


def wire_items(departments: dict[str, dict[str, Any]], source: str) -> dict[str, dict[str, Any]]:
    """{department: item in DynamoDB's wire form}; every value was checked by ``nest``."""
    wired = {}
    for department, item in departments.items():
        try:
            wired[department] = {name: to_wire(value) for name, value in item.items()}
        except (DecimalException, TypeError) as error:  # nest checked each value: not expected
            raise DirectoryFileError(
                f"{source}: department {department!r} cannot be stored ({type(error).__name__})"
            ) from None
    return wired


DEFAULT_MAX_REMOVAL_SHARE = 0.25
# Employees a file may drop whatever the share: a small directory is not blocked by a leaver or two.
REMOVAL_FLOOR = 10


def directory_removal(stored: dict[str, set[str]], incoming: dict[str, set[str]]) -> Removal:
    """What replacing the table's departments (``stored``: department -> its employees) with a
    file's (``incoming``) removes, counted in employees, for the shared guard (``pipelines.guard``).

    A file replaces the whole directory: departments it lacks are deleted and each department
    it has is overwritten. Both lose employees; an employee who moved to another department
    is not lost. A directory changes by reorganisations (hence a larger share than the other
    pipelines); a truncated upload (a header and one row) drops nearly everyone.
    """
    before = set().union(*stored.values()) if stored else set()
    after = set().union(*incoming.values()) if incoming else set()
    gone = sorted(before - after)
    deleted = sorted(set(stored) - set(incoming))
    in_deleted = len(set().union(*(stored[d] for d in deleted)) - after) if deleted else 0
    return Removal(
        subject=f"department_directory ({len(deleted):,} of {len(stored):,} departments deleted)",
        unit="employees",
        stored=len(before),
        removed=len(gone),
        parts={"in deleted departments": in_deleted, "dropped from kept departments": len(gone) - in_deleted},
        examples=gone,
    )


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
