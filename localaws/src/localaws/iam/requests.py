"""What an AWS request asks for, in IAM's terms: caller key, action(s), resource ARN(s), context keys.

Pure functions of the WSGI environ and body (no state), for the services the pipelines
use. Each request gives one or more ``Check``s; all must be allowed. A request this
module cannot place (an unknown service or a resource it cannot name) is checked
against resource ``*``, which least-privilege policies never grant: unknown means refused.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

DEFAULT_ACCOUNT = "123456789012"
ANY = "*"


@dataclass(frozen=True)
class Check:
    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestDescription:
    access_key: str | None
    session_token: str | None
    service: str
    region: str
    target: str | None = None
    json_body: dict[str, Any] | None = None
    checks: list[Check] = field(default_factory=list)


def s3_arn(bucket: str, key: str | None = None) -> str:
    return f"arn:aws:s3:::{bucket}" + (f"/{key}" if key is not None else "")


def _credential(environ: dict[str, Any], query: dict[str, list[str]]) -> tuple[str | None, str, str]:
    """(access key, region, service) from the SigV4 Authorization header or a presigned URL."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = re.search(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request", auth)
    if match:
        return match.group(1), match.group(2), match.group(3)
    credential = (query.get("X-Amz-Credential") or [""])[0]
    parts = credential.split("/")
    if len(parts) == 5:
        return parts[0], parts[2], parts[3]
    return None, "us-east-1", ""


def describe_request(environ: dict[str, Any], body: bytes) -> RequestDescription:
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    access_key, region, service = _credential(environ, query)
    token = environ.get("HTTP_X_AMZ_SECURITY_TOKEN") or (query.get("X-Amz-Security-Token") or [None])[0]
    request = RequestDescription(access_key=access_key, session_token=token, service=service, region=region)
    account = DEFAULT_ACCOUNT
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        request.target = target
        try:
            request.json_body = json.loads(body or b"{}")
        except ValueError:
            request.json_body = {}
        action = target.rsplit(".", 1)[-1]
        prefix = service or target.split("_", 1)[0].split(".", 1)[0].lower()
        request.checks = _json_checks(prefix, action, request.json_body, region, account)
    elif service == "s3":
        request.checks = _s3_checks(environ, query, body)
    else:
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True) if body else {}
        params = {k: v[0] for k, v in {**query, **form}.items()}
        action = params.get("Action", "")
        request.checks = _query_checks(service, action, params, region, account)
    return request


# -- JSON protocol services ---------------------------------------------------------------


def _json_checks(service: str, action: str, body: dict[str, Any], region: str, account: str) -> list[Check]:
    name = f"{service}:{action}"
    if service == "dynamodb":
        return [Check(name, arn) for arn in _dynamodb_resources(action, body, region, account)]
    if service == "glue":
        return [Check(name, arn) for arn in _glue_resources(action, body, region, account)]
    if service == "athena":
        workgroup = body.get("WorkGroup") or "primary"
        return [Check(name, f"arn:aws:athena:{region}:{account}:workgroup/{workgroup}")]
    if service == "sqs":
        return [Check(_sqs_action(action), _sqs_arn(body, region, account))]
    if service == "secretsmanager":
        return [Check(name, _secret_arn(body, region, account))]
    return [Check(name, ANY)]


def _secret_arn(body: dict[str, Any], region: str, account: str) -> str:
    """A secret's ARN: given as SecretId, or built from its name (policies match ``secret:<name>*``).

    AWS appends six random characters to a secret's ARN; a policy on ``secret:airflow/connections/*``
    matches the name with or without them, so the name-built ARN is judged the same way.
    """
    secret_id = body.get("SecretId") or body.get("Name")
    if not secret_id:
        return ANY
    if secret_id.startswith("arn:"):
        return secret_id
    return f"arn:aws:secretsmanager:{region}:{account}:secret:{secret_id}"


def _dynamodb_resources(action: str, body: dict[str, Any], region: str, account: str) -> list[str]:
    def table(name: str) -> str:
        return f"arn:aws:dynamodb:{region}:{account}:table/{name}"

    if action in ("BatchWriteItem", "BatchGetItem"):
        return [table(name) for name in body.get("RequestItems", {})] or [ANY]
    if action in ("TransactWriteItems", "TransactGetItems"):
        tables = {
            operation["TableName"]
            for item in body.get("TransactItems", [])
            for operation in item.values()
            if isinstance(operation, dict) and "TableName" in operation
        }
        return [table(name) for name in sorted(tables)] or [ANY]
    if "TableName" in body:
        arn = table(body["TableName"])
        return [f"{arn}/index/{body['IndexName']}"] if body.get("IndexName") else [arn]
    return [ANY]


def _glue_resources(action: str, body: dict[str, Any], region: str, account: str) -> list[str]:
    base = f"arn:aws:glue:{region}:{account}"
    catalog = f"{base}:catalog"
    if "Crawler" in action:
        names = body.get("CrawlerNameList") or ([body["Name"]] if "Name" in body else [])
        return [f"{base}:crawler/{n}" for n in names] or [ANY]
    database = body.get("DatabaseName")
    if database is None and "Database" in action:
        database = body.get("Name") or (body.get("DatabaseInput") or {}).get("Name")
    if database is None:
        return [catalog]
    resources = [catalog, f"{base}:database/{database}"]
    if "Table" in action or "Partition" in action or "Column" in action:
        table = body.get("TableName") or body.get("Name") or (body.get("TableInput") or {}).get("Name")
        if action == "GetTables" or table is None:
            resources.append(f"{base}:table/{database}/*")
        else:
            resources.append(f"{base}:table/{database}/{table}")
    return resources


def _sqs_action(action: str) -> str:
    """IAM has no SQS batch actions: SendMessageBatch, DeleteMessageBatch and
    ChangeMessageVisibilityBatch are authorized as the single-message action (AWS SQS docs)."""
    return f"sqs:{action.removesuffix('Batch')}"


def _sqs_arn(params: dict[str, Any], region: str, account: str) -> str:
    url = params.get("QueueUrl")
    if url:  # https://sqs.<region>.amazonaws.com/<account>/<name>
        owner, name = url.rstrip("/").rsplit("/", 2)[-2:]
        return f"arn:aws:sqs:{region}:{owner if owner.isdigit() else account}:{name}"
    if "QueueName" in params:
        owner = params.get("QueueOwnerAWSAccountId") or account
        return f"arn:aws:sqs:{region}:{owner}:{params['QueueName']}"
    return ANY


# -- query protocol services ---------------------------------------------------------------


def _query_checks(
    service: str, action: str, params: dict[str, str], region: str, account: str
) -> list[Check]:
    name = f"{service}:{action}"
    if service == "sts":
        if action == "AssumeRole":
            return [Check(name, params.get("RoleArn", ANY))]
        if action == "GetCallerIdentity":
            return []  # AWS answers it whatever the policies say
    if service == "sns":
        arn = params.get("TopicArn") or params.get("TargetArn")
        if arn is None and action == "CreateTopic" and "Name" in params:
            arn = f"arn:aws:sns:{region}:{account}:{params['Name']}"
        return [Check(name, arn or ANY)]
    if service == "sqs":
        return [Check(_sqs_action(action), _sqs_arn(params, region, account))]
    if service == "iam":
        for key, kind in (("RoleName", "role"), ("UserName", "user"), ("GroupName", "group")):
            if key in params:
                return [Check(name, f"arn:aws:iam::{account}:{kind}/{params[key]}")]
        if "PolicyArn" in params:
            return [Check(name, params["PolicyArn"])]
    return [Check(name, ANY)]


# -- S3 (REST) ------------------------------------------------------------------------------

_BUCKET_SUBRESOURCES = {
    # query parameter: (GET action, PUT action, DELETE action)
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", None),
    "encryption": ("GetEncryptionConfiguration", "PutEncryptionConfiguration", "PutEncryptionConfiguration"),
    "lifecycle": ("GetLifecycleConfiguration", "PutLifecycleConfiguration", "PutLifecycleConfiguration"),
    "publicAccessBlock": (
        "GetBucketPublicAccessBlock",
        "PutBucketPublicAccessBlock",
        "PutBucketPublicAccessBlock",
    ),
    "notification": ("GetBucketNotification", "PutBucketNotification", None),
    "location": ("GetBucketLocation", None, None),
    "acl": ("GetBucketAcl", "PutBucketAcl", None),
    "tagging": ("GetBucketTagging", "PutBucketTagging", "PutBucketTagging"),
    "cors": ("GetBucketCORS", "PutBucketCORS", "PutBucketCORS"),
    "uploads": ("ListBucketMultipartUploads", None, None),
    "versions": ("ListBucketVersions", None, None),
}


def _bucket_and_key(environ: dict[str, Any]) -> tuple[str, str]:
    """Path-style (``/bucket/key``) or virtual-hosted (``bucket.s3.host/key``) addressing."""
    path = unquote(environ.get("PATH_INFO", ""))
    host = environ.get("HTTP_HOST", "").split(":", 1)[0]
    virtual = re.match(r"^(.+?)\.s3[.-]", host)
    if virtual:
        return virtual.group(1), path.lstrip("/")
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


def _s3_checks(environ: dict[str, Any], query: dict[str, list[str]], body: bytes) -> list[Check]:
    method = environ.get("REQUEST_METHOD", "GET")
    bucket, key = _bucket_and_key(environ)
    if not bucket:
        return [Check("s3:ListAllMyBuckets", ANY)]
    if not key:
        return _s3_bucket_checks(method, bucket, query, body)
    arn = s3_arn(bucket, key)
    if method in ("GET", "HEAD"):
        if "uploadId" in query:
            return [Check("s3:ListMultipartUploadParts", arn)]
        if "tagging" in query:
            return [Check("s3:GetObjectTagging", arn)]
        if "acl" in query:
            return [Check("s3:GetObjectAcl", arn)]
        return [Check("s3:GetObjectVersion" if "versionId" in query else "s3:GetObject", arn)]
    if method in ("PUT", "POST"):
        if "tagging" in query:
            return [Check("s3:PutObjectTagging", arn)]
        if "acl" in query:
            return [Check("s3:PutObjectAcl", arn)]
        checks = [Check("s3:PutObject", arn)]
        source = environ.get("HTTP_X_AMZ_COPY_SOURCE")
        if source:
            source_bucket, _, source_key = unquote(source).lstrip("/").partition("/")
            checks.append(Check("s3:GetObject", s3_arn(source_bucket, source_key.split("?versionId=")[0])))
        return checks
    if method == "DELETE":
        if "uploadId" in query:
            return [Check("s3:AbortMultipartUpload", arn)]
        return [Check("s3:DeleteObjectVersion" if "versionId" in query else "s3:DeleteObject", arn)]
    return [Check(f"s3:{method}", arn)]


def _s3_bucket_checks(method: str, bucket: str, query: dict[str, list[str]], body: bytes) -> list[Check]:
    arn = s3_arn(bucket)
    if method == "POST" and "delete" in query:
        keys = [
            element.text or ""
            for element in ElementTree.fromstring(body or b"<Delete/>").iter()
            if element.tag.rsplit("}", 1)[-1] == "Key"
        ]
        return [Check("s3:DeleteObject", s3_arn(bucket, k)) for k in keys] or [Check("s3:DeleteObject", arn)]
    for subresource, actions in _BUCKET_SUBRESOURCES.items():
        if subresource in query:
            action = {"GET": actions[0], "HEAD": actions[0], "PUT": actions[1], "DELETE": actions[2]}.get(
                method
            )
            return [Check(f"s3:{action or method + subresource}", arn)]
    if method in ("GET", "HEAD"):
        # ListObjects(V2) and HeadBucket: ListBucket, with the listed prefix as s3:prefix
        prefix = (query.get("prefix") or [None])[0]
        return [Check("s3:ListBucket", arn, {"s3:prefix": prefix} if prefix is not None else {})]
    if method == "PUT":
        return [Check("s3:CreateBucket", arn)]
    if method == "DELETE":
        return [Check("s3:DeleteBucket", arn)]
    return [Check(f"s3:{method}Bucket", arn)]
