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
    column_kind,
    convert,
    item_size,
    keys_from_s3_events,
    messages_from_asset_events,
    nest,
    wire_items,
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
    ("cells", "kind"),
    [
        (["42", "7", ""], "number"),
        (["0", "0.5", "1.50", "1e3", " 12 "], "number"),
        (["42", "-3"], "text"),  # a sign makes an identifier-like column text
        (["+15551234567", "15551234567"], "text"),
        (["02134", "12345"], "text"),  # one ZIP code with a leading zero: the whole column is text
        (["007"], "text"),
        (["true", "FALSE", ""], "boolean"),
        (["true", "maybe"], "text"),
        (["true", "1"], "text"),
        (["", " "], "text"),
        (["1.", ".5"], "text"),
    ],
)
def test_a_column_is_numeric_or_boolean_only_when_every_filled_cell_is(cells, kind):
    assert column_kind(cells) == kind


@pytest.mark.parametrize(
    ("cell", "kind", "value"),
    [("42", "number", 42), ("1.50", "number", Decimal("1.50")), ("1e3", "number", Decimal("1e3")),
     (" 12 ", "number", 12), ("TRUE", "boolean", True), ("false", "boolean", False), ("", "number", None),
     ("  ", "text", None), (" Ghent ", "text", " Ghent "), ("+15551234567", "text", "+15551234567")],
)  # fmt: skip
def test_cells_become_what_their_column_is(cell, kind, value):
    assert convert(cell, kind) == value and type(convert(cell, kind)) is type(value)


def test_identifiers_stay_text_exactly_as_written():
    data = (
        b"department,employee,zip,phone,badge,score\n"
        b"ops,ann,02134,+15551234567,-3,10\n"
        b"ops,bob,12345,15551234567,5,0.5\n"
    )
    employees = nest(data, "staff.csv")["ops"]["employees"]
    assert employees["ann"] == {"zip": "02134", "phone": "+15551234567", "badge": "-3", "score": 10}
    assert employees["bob"] == {"zip": "12345", "phone": "15551234567", "badge": "5", "score": Decimal("0.5")}


def test_every_item_is_converted_to_its_dynamodb_wire_form():
    items = wire_items(nest(b"department,employee,n,ok\nops,ann,1.50,true\n", "s"), "s")
    assert items == {
        "ops": {
            "department": {"S": "ops"},
            "employees": {"M": {"ann": {"M": {"n": {"N": "1.50"}, "ok": {"BOOL": True}}}}},
        }
    }


@pytest.mark.parametrize(
    "number",
    [
        "1e200",
        "1e-200",
        "1234567890123456789012345678901234567891",
        "1.234567890123456789012345678901234567891",
    ],
)
def test_a_number_dynamodb_cannot_store_fails_validation_naming_row_and_column(number):
    data = f"department,employee,salary\nops,ann,5\nops,bob,{number}\n".encode()
    with pytest.raises(DirectoryFileError) as error:
        nest(data, "s3://b/staff.csv")
    assert (
        f"s3://b/staff.csv: row 3, column 'salary': '{number}' cannot be stored as a DynamoDB number"
        in str(error.value)
    )


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
        (
            b"department,employee,title,site\nsales,ann,x,y\nops,bob,z\n",
            "staff.csv: row 3: 3 cells for 4 columns",
        ),
        (b"department,employee,title\nsales,ann\n", "row 2: 2 cells for 3 columns"),
        (
            b"department,employee,title,title\nsales,ann,x,y\n",
            "staff.csv, row 1: duplicate column 'title' (columns 3 and 4)",
        ),
        (b"department,employee,,site\nsales,ann,x,y\n", "staff.csv, row 1: column(s) 3 have no name"),
        (b'department,employee,title\nsales,ann,"x\n', "staff.csv, row 2: not valid CSV"),
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


def test_a_file_s_removal_is_counted_in_employees_gone_from_the_directory():
    from pipelines.directory.domain import REMOVAL_FLOOR, directory_removal
    from pipelines.guard import RemovalLimit, removal_problem

    stored = {"a": {"e1", "e2", "e3"}, "b": {"e4", "e5"}, "c": {"e6"}}
    # e3 moved from a to b (not lost), e2 dropped from a, department c (e6) deleted
    incoming = {"a": {"e1"}, "b": {"e3", "e4", "e5"}}
    removal = directory_removal(stored, incoming)
    assert (removal.stored, removal.removed, list(removal.examples)) == (6, 2, ["e2", "e6"])
    assert removal.parts == {"in deleted departments": 1, "dropped from kept departments": 1}
    assert removal_problem(removal, RemovalLimit(0.25, REMOVAL_FLOOR)) is None  # 2 <= the floor of 10
    # 2 of 6 with no floor: limit floor(0.25 x 6) = 1
    assert removal_problem(removal, RemovalLimit(0.25, 0)) == (
        "department_directory (1 of 3 departments deleted): this run would remove or lower 2 of the 6 "
        "stored employees (33.3%: 1 in deleted departments, 1 dropped from kept departments; e.g. e2, "
        "e6); the limit is 1 employees (max_removal_share 25.0% of 6, and at least 0)"
    )


def test_a_header_and_one_row_would_remove_nearly_the_whole_directory():
    from pipelines.directory.domain import REMOVAL_FLOOR, directory_removal
    from pipelines.guard import RemovalLimit, removal_problem

    full = nest(directory_csv(departments=12, employees=150, seed=1), "full.csv")
    stored = {department: set(item["employees"]) for department, item in full.items()}
    one_row = nest(b"department,employee\ndept-000,emp-00000\n", "one.csv")
    incoming = {department: set(item["employees"]) for department, item in one_row.items()}
    problem = removal_problem(directory_removal(stored, incoming), RemovalLimit(0.25, REMOVAL_FLOOR))
    # dept-000 holds employees 0, 12, ..., 144 (13 of the 150): 12 of them dropped, and the 137 of the
    # 11 other departments; 149 / 150 = 99.3%; limit max(10, floor(0.25 x 150) = 37) = 37
    assert problem.startswith(
        "department_directory (11 of 12 departments deleted): this run would remove or lower 149 of "
        "the 150 stored employees (99.3%: 137 in deleted departments, 12 dropped from kept departments"
    )
    assert problem.endswith("the limit is 37 employees (max_removal_share 25.0% of 150, and at least 10)")
