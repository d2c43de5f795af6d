"""A schema change in the raw feed is caught after crawl_raw: a column the SQL reads renamed or
retyped fails the run before anything is written; a new field is a warning in the log and the
run summary. Pure comparison first, then through the DAG on the offline stack."""

from __future__ import annotations

import gzip
import json

import pytest

from pipelines.traffic.raw_schema import RawSchemaChanged, check, columns_read_by, compare, object_fields
from tests.conftest import task_states
from tests.traffic.test_traffic_repartition_dag import (  # noqa: F401  (raw: fixture)
    BUCKET,
    END,
    START,
    assert_matches_reference,
    conf,
    expected,
    raw,
    run,
    written,
)

DECLARED = dict.fromkeys(["unieke_id", "tijd_waarneming", "defect", "beschrijvende_id"], "string")
SQL = "SELECT CAST(unieke_id AS integer), CAST(tijd_waarneming AS bigint), CAST(defect AS integer) FROM traffic.raw"


def lines(*records: dict) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def test_the_columns_a_query_reads_are_found_as_whole_words():
    assert columns_read_by(SQL, DECLARED) == {"unieke_id", "tijd_waarneming", "defect"}
    assert columns_read_by("SELECT unieke_id_2 FROM t", ["unieke_id"]) == set()


def test_fields_and_json_types_of_a_plain_or_gzip_object():
    body = lines({"unieke_id": "1", "defect": 0}, {"unieke_id": "2", "extra": None, "nested": {"a": 1}})
    want = {"unieke_id": "string", "defect": "number", "extra": "null", "nested": "object"}
    assert object_fields("s3://b/k", body) == want
    assert object_fields("s3://b/k.gz", gzip.compress(body)) == want


def test_a_renamed_column_the_sql_reads_fails_naming_the_column_and_the_object():
    same = {"unieke_id": "1", "tijd_waarneming": "1", "defect": "0", "beschrijvende_id": "x"}
    renamed = {k if k != "tijd_waarneming" else "tijd_observatie": v for k, v in same.items()}
    report = compare(
        {"s3://b/old": object_fields("s3://b/old", lines(same)), "s3://b/new": object_fields("s3://b/new", lines(renamed))},
        DECLARED,
    )  # fmt: skip
    assert report.missing == {"tijd_waarneming": ["s3://b/new"]}
    assert report.added == {"tijd_observatie": "s3://b/new"}
    with pytest.raises(RawSchemaChanged, match=r"\(tijd_waarneming\).*missing from s3://b/new"):
        check(report, columns_read_by(SQL, DECLARED))


def test_a_retyped_column_the_sql_reads_fails_and_an_unread_one_only_warns():
    # a scalar of any JSON type reads into a string column; an object or array does not
    record = {"unieke_id": "1", "tijd_waarneming": 1735689600, "defect": {"code": 0}, "beschrijvende_id": ["x"]}
    report = compare({"s3://b/k": object_fields("s3://b/k", lines(record))}, DECLARED)
    assert report.retyped == {"defect": {"s3://b/k": "object"}, "beschrijvende_id": {"s3://b/k": "array"}}
    with pytest.raises(RawSchemaChanged, match=r"\(defect\)"):
        check(report, columns_read_by(SQL, DECLARED))
    unread_only = compare({"s3://b/k": object_fields("s3://b/k", lines({**record, "defect": "0"}))}, DECLARED)
    assert check(unread_only, columns_read_by(SQL, DECLARED)) == [
        "raw column beschrijvende_id is a JSON array in s3://b/k, which its declared type cannot hold"
    ]
    numbers_only = compare({"s3://b/k": object_fields("s3://b/k", lines({"n": "12"}))}, {"n": "bigint"})
    assert numbers_only.retyped == {"n": {"s3://b/k": "string"}}


def test_an_added_field_only_warns_and_an_unchanged_feed_says_nothing():
    record = {"unieke_id": "1", "tijd_waarneming": "1", "defect": "0", "beschrijvende_id": "x"}
    assert check(compare({"s3://b/k": object_fields("s3://b/k", lines(record))}, DECLARED), set(DECLARED)) == []
    added = compare({"s3://b/k": object_fields("s3://b/k", lines({**record, "lane": "L1"}))}, DECLARED)
    assert check(added, set(DECLARED)) == ["raw field lane is new (first in s3://b/k); not declared, not read"]


# -- through the DAG -------------------------------------------------------------------------


def rewrite_every_raw_object(aws, change) -> None:
    """The publisher's change, applied to every raw object the generator wrote."""
    s3 = aws.client("s3")
    for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix="traffic/raw/")["Contents"]:
        body = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
        packed = body[:2] == b"\x1f\x8b"
        text = (gzip.decompress(body) if packed else body).decode()
        new = "".join(json.dumps(change(json.loads(line))) + "\n" for line in text.splitlines() if line)
        s3.put_object(Bucket=BUCKET, Key=obj["Key"], Body=gzip.compress(new.encode()) if packed else new.encode())


def test_a_raw_feed_with_a_renamed_field_fails_before_anything_is_written(airflow_db, raw, capfd):  # noqa: F811
    rewrite_every_raw_object(
        raw, lambda r: {("tijd_observatie" if k == "tijd_waarneming" else k): v for k, v in r.items()}
    )
    result = run(conf())
    assert result.state == "failed"
    states = task_states(result)
    assert states["crawl_raw"] == "success" and states["check_raw_schema"] == "failed"
    assert not any(state == "success" for task, state in states.items() if task.startswith("write_chunk"))
    assert not written(raw)[1]  # no target file
    output = "".join(capfd.readouterr())
    assert "changed a column the SQL reads (tijd_waarneming)" in output


def test_a_raw_feed_with_an_added_field_warns_in_the_summary_and_writes_the_same_rows(
    airflow_db, raw, capfd  # noqa: F811
):
    rewrite_every_raw_object(raw, lambda r: {**r, "rijstrook_type": "L"})
    result = run(conf())
    assert result.state == "success", task_states(result)
    data, _files = written(raw)
    assert_matches_reference(data, expected(START, END))
    output = "".join(capfd.readouterr())
    # once from check_raw_schema, once from log_summary (the run summary)
    assert output.count("WARNING raw schema: raw field rijstrook_type is new") >= 2
