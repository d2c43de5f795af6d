"""Reading the stack's S3 from inside the stack (crawls and queries), through boto3.

Internal clients are exempt from fault injection, so a test that injects S3 503s hits
the pipeline's own calls, not the engine's.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from localaws.errors import AwsError
from localaws.s3uri import split_s3_uri as split_s3_uri  # re-exported: the engines read it from here


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    size: int

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def list_objects(s3: Any, bucket: str, prefix: str) -> Iterator[S3Object]:
    """Every object under a prefix (raises AwsError EntityNotFoundException if no bucket)."""
    paginator = s3.get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield S3Object(bucket, item["Key"], item["Size"])
    except s3.exceptions.NoSuchBucket as error:
        raise AwsError("EntityNotFoundException", f"bucket {bucket} does not exist") from error


def read_bytes(s3: Any, bucket: str, key: str) -> bytes:
    """The object's bytes, gunzipped when it is gzip (by magic number, as Glue and Athena do)."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if body[:2] == b"\x1f\x8b":
        return gzip.decompress(body)
    return body


def raw_size(s3: Any, bucket: str, key: str) -> int:
    return s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
