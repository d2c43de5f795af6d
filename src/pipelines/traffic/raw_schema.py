"""Did the raw feed's schema change? The fields of newly arrived raw objects against the declared table.

On AWS a crawler with SchemaChangePolicy LOG records nothing in the table (that is the
point: the declaration stays authoritative), so the run reads the fields of a few new raw
objects itself and compares them with the declared columns of ``traffic.raw``:

* a declared column the SQL reads that the new objects no longer carry, or carry as a
  JSON type its declared type cannot hold (the JSON SerDe reads any scalar into a string
  column, but not an object or an array; a number column takes numbers only), fails the
  run before anything is written (the INSERT would turn it into nulls);
* any other difference (a new field, a declared column the SQL does not read missing or
  retyped) is a warning in the log and the run summary.

Pure: what to read is decided here, the reading is ``lake.new_raw_objects`` / the caller.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field

from pipelines.errors import BadInput

JSON_TYPES = {str: "string", int: "number", float: "number", bool: "boolean", dict: "object", list: "array"}


class RawSchemaChanged(BadInput):
    """A column the SQL reads disappeared from the raw feed or changed type."""


@dataclass
class SchemaReport:
    objects: list[str]
    missing: dict[str, list[str]] = field(default_factory=dict)  # column -> objects without it
    retyped: dict[str, dict[str, str]] = field(default_factory=dict)  # column -> {object: json type}
    added: dict[str, str] = field(default_factory=dict)  # field -> first object carrying it

    def warnings(self) -> list[str]:
        found = [f"raw field {name} is new (first in {uri}); not declared, not read"
                 for name, uri in sorted(self.added.items())]  # fmt: skip
        found += [f"raw column {name} is missing from {', '.join(uris)}" for name, uris in sorted(self.missing.items())]
        found += [f"raw column {name} is a JSON {kind} in {uri}, which its declared type cannot hold"
                  for name, kinds in sorted(self.retyped.items()) for uri, kind in sorted(kinds.items())]  # fmt: skip
        return found


def columns_read_by(sql: str, declared: list[str]) -> set[str]:
    """The declared columns a query names (as whole words)."""
    return {name for name in declared if re.search(rf"\b{re.escape(name)}\b", sql)}


def object_fields(uri: str, body: bytes, max_lines: int = 1000) -> dict[str, str]:
    """Field -> JSON type over the first lines of one raw object (JSON lines, gzip or plain)."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    fields: dict[str, str] = {}
    for number, line in enumerate(body.decode("utf-8").splitlines()[:max_lines], start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise BadInput(f"{uri} line {number}: not a JSON object ({error})") from error
        if not isinstance(record, dict):
            raise BadInput(f"{uri} line {number}: not a JSON object")
        for name, value in record.items():
            if value is not None:
                fields.setdefault(name, JSON_TYPES.get(type(value), type(value).__name__))
            else:
                fields.setdefault(name, "null")
    return fields


# The JSON types a declared Hive column reads through the JSON SerDe (null: any column).
HOLDS = {
    "string": {"string", "number", "boolean"},
    "boolean": {"boolean"},
    **dict.fromkeys(("tinyint", "smallint", "int", "integer", "bigint", "float", "double"), {"number"}),
}


def holds(declared_type: str, json_type: str) -> bool:
    if json_type == "null":
        return True
    return json_type in HOLDS.get(declared_type.lower().split("(", 1)[0], {"string", "number", "boolean"})


def compare(objects: dict[str, dict[str, str]], declared: dict[str, str]) -> SchemaReport:
    """Each object's fields (``object_fields``) against the declared columns (name -> Hive type)."""
    report = SchemaReport(objects=sorted(objects))
    for uri, fields in sorted(objects.items()):
        for name, declared_type in declared.items():
            kind = fields.get(name)
            if kind is None:
                report.missing.setdefault(name, []).append(uri)
            elif not holds(declared_type, kind):
                report.retyped.setdefault(name, {})[uri] = kind
        for name in fields:
            if name not in declared:
                report.added.setdefault(name, uri)
    return report


def check(report: SchemaReport, read_by_sql: set[str]) -> list[str]:
    """Fail on a change to a column the SQL reads; answer the warnings (every change) otherwise."""
    breaking = sorted((set(report.missing) | set(report.retyped)) & read_by_sql)
    if breaking:
        details = "; ".join(w for w in report.warnings() if any(f" {name} " in w for name in breaking))
        raise RawSchemaChanged(
            f"the raw feed changed a column the SQL reads ({', '.join(breaking)}): {details}. "
            "Nothing was written; fix include/sql/traffic/ and the raw table's declaration first"
        )
    return report.warnings()
