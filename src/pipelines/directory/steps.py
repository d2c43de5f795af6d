"""The department_directory tasks' bodies: S3 in, DynamoDB out, through the shared adapters.

Only "the object is not there" (404 / NoSuchKey) means a file is gone and may be skipped;
any other S3 error (403 AccessDenied, 5xx after botocore's retries) fails the task, so the
failure alert goes out instead of a silently skipped run.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from pipelines.aws.dynamodb import (
    delete_keys,
    dynamodb_client,
    paginated_items,
    put_wire_items,
    serialize_item,
)
from pipelines.aws.s3 import is_missing, read_bytes, s3_hook, write_bytes
from pipelines.directory.domain import (
    DEFAULT_MAX_REMOVAL_SHARE,
    INCOMING_PREFIX,
    REMOVAL_FLOOR,
    directory_removal,
    nest,
    wire_items,
)
from pipelines.guard import RemovalLimit, enforce_removal_limit, override_note, removal_problem
from pipelines.tables import DEPARTMENT_LISTING, DEPARTMENT_LISTING_ATTRIBUTE
from pipelines.tables import DIRECTORY_TABLE as TABLE

log = logging.getLogger(__name__)



class SupersededError(Exception):
    """A newer file has landed; this one must not be applied."""


class SourceGone(Exception):
    """The file was deleted after its event arrived (S3 answered 404 / NoSuchKey)."""


def newest_object(bucket: str, keys: list[str]) -> dict[str, Any] | None:
    """Of the candidate keys that still exist, the one written last."""
    client = s3_hook().get_conn()
    newest = None
    for key in sorted(set(keys)):
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except client.exceptions.ClientError as error:
            if not is_missing(error):
                raise  # 403, 5xx...: not "gone"; the run fails and alerts
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
    """Validate and nest the whole file, convert every item to DynamoDB's wire form, stage it in S3.

    Nothing is written to DynamoDB here; ``load`` writes the staged wire form as it is.
    """
    uri = f"s3://{source['bucket']}/{source['key']}"
    client = s3_hook().get_conn()
    try:
        data = client.get_object(Bucket=source["bucket"], Key=source["key"])
    except client.exceptions.ClientError as error:
        if is_missing(error):
            raise SourceGone(f"{uri} was deleted after it was resolved") from None
        raise
    departments = nest(data["Body"].read(), uri)
    items = wire_items(departments, uri)
    staged = f"{run_prefix}items.json"
    write_bytes(staged, json.dumps(items).encode(), "application/json")
    employees = sum(len(item["employees"]) for item in departments.values())
    log.info("%s: %s departments, %s employees", uri, len(departments), employees)
    return {"items_uri": staged, "departments": len(departments), "employees": employees}


def stored_employees(client: Any) -> dict[str, set[str]]:
    """Every department of the table and its employees' names (one paginated Scan)."""
    names = {"#d": "department", "#e": "employees"}
    items = paginated_items(
        client, "scan", TableName=TABLE, ProjectionExpression="#d, #e", ExpressionAttributeNames=names
    )
    return {str(item["department"]): set(item.get("employees") or {}) for item in items}


def load(
    source: dict[str, Any],
    staged: dict[str, Any],
    max_removal_share: float = DEFAULT_MAX_REMOVAL_SHARE,
    allow_large_removal: bool = False,
) -> dict[str, Any]:
    """Write every department, then delete the departments absent from this file.

    Before anything is written, the overwrites and deletes are planned and held to the shared
    removal guard (``pipelines.guard``): a file that would drop more than the share of the
    stored employees is refused unless the run allows it.
    """
    newer = newer_incoming_file(source)
    if newer:
        raise SupersededError(f"s3://{source['bucket']}/{newer} is newer than {source['key']}")
    items = json.loads(read_bytes(staged["items_uri"]))
    client = dynamodb_client()
    stored = stored_employees(client)
    incoming = {department: set(item["employees"]["M"]) for department, item in items.items()}
    limit = RemovalLimit(max_share=max_removal_share, floor=REMOVAL_FLOOR)
    let_through = enforce_removal_limit(
        [removal_problem(directory_removal(stored, incoming), limit)], allow_large_removal
    )
    if let_through:
        log.warning("%s", override_note(let_through))
    provenance = serialize_item(
        {
            "source_key": source["key"],
            "source_etag": source["etag"],
            "loaded_at": datetime.now(UTC).isoformat(),
            DEPARTMENT_LISTING_ATTRIBUTE: DEPARTMENT_LISTING,  # the results API's name index
        }
    )
    written = put_wire_items(client, TABLE, ({**item, **provenance} for item in items.values()))
    stale = [{"department": department} for department in sorted(stored) if department not in items]
    deleted = delete_keys(client, TABLE, stale)
    log.info("wrote %s departments, deleted %s stale", written, deleted)
    summary: dict[str, Any] = {"written": written, "deleted": deleted}
    if let_through:
        summary["override"] = override_note(let_through)
    return summary
