"""Offline AWS stack: moto's server plus the semantics moto lacks.

moto serves S3, DynamoDB, the Glue Data Catalog, SNS, SQS, SES, STS, IAM and
CloudFormation. On top of it this package adds Glue crawlers that really crawl S3,
Athena queries that really run (sqlglot -> DuckDB), DynamoDB's 25-item BatchWriteItem
limit, opt-in fault injection, and one call to read what SES and SNS "sent".

    from localaws import LocalAWS
    with LocalAWS() as aws:          # free port on 127.0.0.1
        boto3.client("s3", endpoint_url=aws.endpoint_url, ...)

or from a shell: ``python -m localaws --port 4566``.

This module assembles the stack: ``server`` is the core (routing, control API, moto)
and knows no extension; the extensions import the core, never the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence

from localaws import server
from localaws.athena.service import AthenaExtension
from localaws.dynamodb.service import DynamoDBExtension
from localaws.faults import FaultSettings
from localaws.glue.crawler import GlueCrawlerExtension

EXTENSIONS: tuple[server.ExtensionFactory, ...] = (GlueCrawlerExtension, AthenaExtension, DynamoDBExtension)


class LocalAWS(server.LocalAWS):
    """The stack with every extension (see ``server.LocalAWS`` for the life cycle)."""

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        faults: FaultSettings | None = None,
        enforce_iam: bool | None = None,
        extensions: Sequence[server.ExtensionFactory] = EXTENSIONS,
        smtp: tuple[str, int] | None = None,
    ) -> None:
        super().__init__(
            port=port, host=host, faults=faults, enforce_iam=enforce_iam, extensions=extensions, smtp=smtp
        )


__all__ = ["EXTENSIONS", "LocalAWS"]
