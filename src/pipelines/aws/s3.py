"""S3 reads and writes through the provider's S3Hook (the running pipeline's AWS connection)."""

from __future__ import annotations

from typing import Any

from pipelines.config import pipeline_aws_conn_id
from pipelines.redaction import redact_url


def s3_hook(aws_conn_id: str | None = None) -> Any:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=aws_conn_id or pipeline_aws_conn_id())


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> (``bucket``, ``some/key``): the one place an S3 URI is split.

    Not ``S3Hook.parse_s3_url``: it splits with ``urlsplit``, so a key holding ``?`` loses
    everything from it and leading slashes of a key are dropped, and it also takes
    ``s3a://`` and https URLs. Keys come from uploads too (the department directory), and
    S3 allows ``?`` in them; the key must reach S3 exactly as written.
    """
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {redact_url(uri)}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def is_missing(error: Exception) -> bool:
    """True only when S3 said the object does not exist (404 / NoSuchKey).

    A 403 is not "missing": S3 answers 403 for an absent key too when the caller lacks
    ListBucket, so it must surface as a failure, never as a silent skip.
    """
    response = getattr(error, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in MISSING_CODES or (status == 404 and code in ("", "404"))


def read_bytes(uri: str) -> bytes:
    bucket, key = split_uri(uri)
    return s3_hook().get_conn().get_object(Bucket=bucket, Key=key)["Body"].read()


def read_bytes_if_exists(uri: str) -> bytes | None:
    bucket, key = split_uri(uri)
    hook = s3_hook()
    if not hook.check_for_key(key, bucket_name=bucket):
        return None
    return hook.get_conn().get_object(Bucket=bucket, Key=key)["Body"].read()


def write_bytes(uri: str, data: bytes, content_type: str = "application/octet-stream") -> None:
    bucket, key = split_uri(uri)
    s3_hook().get_conn().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
