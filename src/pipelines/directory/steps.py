"""The department_directory tasks' bodies: S3 in, DynamoDB out, through the shared adapters."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from pipelines.aws.dynamodb import delete_keys, dynamodb_client, put_items, scan_keys
from pipelines.aws.s3 import read_bytes, s3_hook, write_bytes
from pipelines.directory.domain import INCOMING_PREFIX, nest
from pipelines.tables import DEPARTMENT_LISTING, DEPARTMENT_LISTING_ATTRIBUTE
from pipelines.tables import DIRECTORY_TABLE as TABLE

log = logging.getLogger(__name__)



class SupersededError(Exception):
    """A newer file has landed; this one must not be applied."""


def newest_object(bucket: str, keys: list[str]) -> dict[str, Any] | None:
    """Of the candidate keys that still exist, the one written last."""
    client = s3_hook().get_conn()
    newest = None
    for key in sorted(set(keys)):
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except client.exceptions.ClientError:
            log.warning("s3://%s/%s no longer exists; ignored", bucket, key)
            continue
        candidate = {"bucket": bucket, "key": key, "etag": head["ETag"].strip('"'),
                     "last_modified": head["LastModified"].isoformat()}  # fmt: skip
        if newest is None or candidate["last_modified"] > newest["last_modified"]:
            newest = candidate
    return newest


def newer_incoming_file(source: dict[str, Any]) -> str | None:
    """A CSV in directory/incoming/ written after ``source``, if any (newest wins)."""
    client = s3_hook().get_conn()
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=source["bucket"], Prefix=INCOMING_PREFIX
    ):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".csv") and obj["LastModified"].isoformat() > source["last_modified"]:
                return obj["Key"]
    return None


def nest_to_staging(source: dict[str, Any], run_prefix: str) -> dict[str, Any]:
    """Validate and nest the whole file; stage the items in S3 (nothing written to DynamoDB)."""
    uri = f"s3://{source['bucket']}/{source['key']}"
    departments = nest(read_bytes(uri), uri)
    staged = f"{run_prefix}items.json"
    write_bytes(staged, json.dumps(departments, default=str).encode(), "application/json")
    employees = sum(len(item["employees"]) for item in departments.values())
    log.info("%s: %s departments, %s employees", uri, len(departments), employees)
    return {"items_uri": staged, "departments": len(departments), "employees": employees}


def load(source: dict[str, Any], staged: dict[str, Any]) -> dict[str, int]:
    """Write every department, then delete the departments absent from this file."""
    newer = newer_incoming_file(source)
    if newer:
        raise SupersededError(f"s3://{source['bucket']}/{newer} is newer than {source['key']}")
    departments = json.loads(read_bytes(staged["items_uri"]), parse_float=str)
    loaded_at = datetime.now(UTC).isoformat()
    client = dynamodb_client()
    written = put_items(
        client,
        TABLE,
        (
            {
                **_restore_numbers(item),
                "source_key": source["key"],
                "source_etag": source["etag"],
                "loaded_at": loaded_at,
                DEPARTMENT_LISTING_ATTRIBUTE: DEPARTMENT_LISTING,  # the results API's name index
            }
            for item in departments.values()
        ),
    )
    stale = [k for k in scan_keys(client, TABLE, ["department"]) if k["department"] not in departments]
    deleted = delete_keys(client, TABLE, stale)
    log.info("wrote %s departments, deleted %s stale", written, deleted)
    return {"written": written, "deleted": deleted}


def _restore_numbers(item: dict[str, Any]) -> dict[str, Any]:
    """Staged JSON keeps Decimals as strings (json default=str); turn numeric facts back into numbers."""
    from pipelines.directory.domain import convert

    employees = {
        name: {fact: (convert(v) if isinstance(v, str) else v) for fact, v in facts.items()}
        for name, facts in item["employees"].items()
    }
    return {"department": item["department"], "employees": employees}
