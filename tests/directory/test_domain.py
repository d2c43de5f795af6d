"""Nesting and validating directory files (pure)."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest

from devtools.directory_sample import directory_csv
from pipelines.directory.domain import (
    MAX_ITEM_BYTES,
    DirectoryFileError,
    convert,
    item_size,
    keys_from_s3_events,
    messages_from_asset_events,
    nest,
)


def test_nesting_matches_an_independent_computation():
    data = directory_csv(departments=7, employees=90, seed=3)
    nested = nest(data, "s3://b/staff.csv")
    expected: dict = {}
    for row in csv.DictReader(io.StringIO(data.decode())):
        facts = {}
        for column in ("title", "site", "start_date", "phone", "manager"):
            if row[column]:
                facts[column] = row[column]
        facts["salary"] = int(row["salary"])
        facts["fte"] = Decimal(row["fte"]) if "." in row["fte"] else int(row["fte"])
        facts["remote"] = row["remote"] == "true"
        expected.setdefault(row["department"], {})[row["employee"]] = facts
    assert {d: item["employees"] for d, item in nested.items()} == expected
    assert all(item["department"] == d for d, item in nested.items())


@pytest.mark.parametrize(
    ("cell", "value"),
    [("42", 42), ("-3", -3), ("1.50", Decimal("1.50")), ("true", True), ("FALSE", False), ("", None),
     ("007", "007"), ("0", 0), ("Ghent", "Ghent"), (" 12 ", 12), ("1e3", Decimal("1e3"))],
)  # fmt: skip
def test_cells_become_numbers_booleans_or_are_left_out(cell, value):
    assert convert(cell) == value and type(convert(cell)) is type(value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "staff.csv: the file is empty"),
        (b"department,name\nsales,ann\n", "staff.csv: missing required column(s) employee"),
        (
            b"department,employee,title\nsales,ann,x\nops,bob,y\nsales,ann,z\n",
            "rows 2 and 4: duplicate (department, employee)",
        ),
        (b"department,employee\n", "the file has a header but no rows"),
        (b"department,employee\nsales,\n", "row 2: empty department or employee"),
        (b"department,employee,title\nsales,ann,x\nops,bo\xe9,y\n", "staff.csv, row 3: not UTF-8 text"),
        (b"department,employee\nsales,ann,extra\n", "row 2: 3 cells for 2 columns"),
    ],
)
def test_bad_files_are_refused_naming_file_and_rows(data, message):
    with pytest.raises(DirectoryFileError) as error:
        nest(data, "staff.csv")
    assert message in str(error.value)


def test_a_department_over_400_kb_is_refused_with_its_rows():
    rows = ["department,employee,bio"] + [f"big,emp-{i},{'x' * 1000}" for i in range(420)] + ["small,ann,hi"]
    with pytest.raises(DirectoryFileError, match=r"rows 2-421: department 'big' would be a [\d,]+-byte item"):
        nest("\n".join(rows).encode(), "staff.csv")
    ok = nest("\n".join(rows[:300]).encode(), "staff.csv")
    assert item_size(ok["big"]) < MAX_ITEM_BYTES


def test_item_size_counts_names_and_values():
    assert item_size({"a": "xyz"}) == 4
    assert item_size({"flag": True}) == 5
    assert item_size({"m": {"k": "vv"}}) == 1 + 3 + 1 + 2 + 1


def test_keys_come_from_s3_events_url_decoded_and_filtered():
    body = {
        "Records": [
            {"eventName": "ObjectCreated:Put", "eventTime": "t1", "s3": {"object": {"key": "directory%2Fincoming%2Fstaff+2024.csv"}}},
            {"eventName": "ObjectCreated:Put", "eventTime": "t2", "s3": {"object": {"key": "directory/incoming/readme.txt"}}},
            {"eventName": "ObjectRemoved:Delete", "eventTime": "t3", "s3": {"object": {"key": "directory/incoming/old.csv"}}},
        ]
    }  # fmt: skip
    messages = [
        {"Body": json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})},
        {"Body": json.dumps(body)},
    ]
    assert keys_from_s3_events(messages) == [("directory/incoming/staff 2024.csv", "t1")]


def test_messages_are_read_from_the_asset_events_payload():
    class Event:
        extra = {"from_trigger": True, "payload": {"status": "success", "message_batch": [{"Body": "{}"}]}}

    assert messages_from_asset_events([Event()]) == [{"Body": "{}"}]
