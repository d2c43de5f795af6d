"""Offline AWS stack: moto's server plus the semantics moto lacks.

moto serves S3, DynamoDB, the Glue Data Catalog, SNS, SQS, SES, STS, IAM and
CloudFormation. On top of it this package adds Glue crawlers that really crawl S3,
Athena queries that really run (sqlglot -> DuckDB), DynamoDB's 25-item BatchWriteItem
limit, opt-in fault injection, and one call to read what SES and SNS "sent".

    from localaws import LocalAWS
    with LocalAWS() as aws:          # free port on 127.0.0.1
        boto3.client("s3", endpoint_url=aws.endpoint_url, ...)

or from a shell: ``python -m localaws --port 4566``.
"""

from localaws.server import LocalAWS

__all__ = ["LocalAWS"]
