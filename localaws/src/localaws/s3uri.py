"""``s3://bucket/key`` locations split into bucket and key: the stack's one parser of them.

In the core (no client, no extension) because IAM enforcement reads S3 locations out of
requests (Athena's OutputLocation, a crawler's paths) as well as the engines do.
"""

from __future__ import annotations

from localaws.errors import AwsError


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> (``bucket``, ``some/prefix/``)."""
    if not uri.startswith("s3://"):
        raise AwsError("InvalidInputException", f"not an S3 location: {uri}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    return bucket, prefix
