"""KMS as AWS authorizes it: a request on an encrypted resource also needs its key.

moto stores which key encrypts a table, queue, topic, bucket or secret, but never asks
whether the caller may use that key: every read of an encrypted table succeeds offline.
On AWS the service (DynamoDB, SQS, SNS, S3, Secrets Manager) calls KMS *on behalf of the
caller*, and KMS allows it only if

* the key policy allows the caller directly (a statement naming its role or user, or
  ``*``), or
* the key policy delegates to the account (a statement naming ``arn:aws:iam::<account>:root``)
  and one of the caller's identity policies allows the KMS action on the key's ARN,

and no statement of either explicitly denies it. The request carries the context keys
``kms:ViaService`` (``dynamodb.us-east-1.amazonaws.com``...) and ``kms:CallerAccount``, so
a key policy can allow "anyone in this account, through DynamoDB only", as AWS managed
keys (``aws/dynamodb``, ``aws/secretsmanager``...) do.

What each request needs (AWS's documented use of the key by each service):

* DynamoDB: every item read or write on a table encrypted with a customer managed key
  needs ``kms:Decrypt`` (DynamoDB decrypts the table key for the caller);
* SQS: ``SendMessage(Batch)`` needs ``kms:GenerateDataKey`` and ``kms:Decrypt``,
  ``ReceiveMessage`` needs ``kms:Decrypt``;
* SNS: ``Publish`` needs ``kms:GenerateDataKey`` and ``kms:Decrypt``;
* S3 (SSE-KMS): ``GetObject`` needs ``kms:Decrypt``, ``PutObject`` ``kms:GenerateDataKey``
  (the object's own key, else the bucket's default encryption key);
* Secrets Manager: ``GetSecretValue`` needs ``kms:Decrypt``, ``CreateSecret`` /
  ``PutSecretValue`` ``kms:GenerateDataKey``.

A resource without a key, or under an AWS managed key (moto's default), needs nothing
beyond its own action: an AWS managed key's policy allows every principal of the account
through that service. A disabled key refuses everyone, as KMS does.

``decide`` is pure; ``keys_used`` reads moto's in-process backends (like the caller lookup
of ``localaws.iam.enforcement``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from localaws.iam.policy import Decision, _as_list, evaluate, statement_applies

# The KMS actions a service needs for the caller, per request action (see the module doc).
DECRYPT = ("kms:Decrypt",)
ENCRYPT = ("kms:GenerateDataKey",)
PRODUCE = ("kms:GenerateDataKey", "kms:Decrypt")
_DYNAMODB_ITEM_ACTIONS = {
    "GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "PutItem", "UpdateItem",
    "DeleteItem", "BatchWriteItem", "TransactWriteItems", "ExecuteStatement", "BatchExecuteStatement",
}  # fmt: skip
KMS_ACTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "dynamodb": dict.fromkeys(_DYNAMODB_ITEM_ACTIONS, DECRYPT),
    "sqs": {"SendMessage": PRODUCE, "SendMessageBatch": PRODUCE, "ReceiveMessage": DECRYPT},
    "sns": {"Publish": PRODUCE, "PublishBatch": PRODUCE},
    "s3": {"GetObject": DECRYPT, "GetObjectVersion": DECRYPT, "PutObject": ENCRYPT},
    "secretsmanager": {"GetSecretValue": DECRYPT, "CreateSecret": ENCRYPT, "PutSecretValue": ENCRYPT},
}


@dataclass(frozen=True)
class KeyUse:
    """One KMS call a service makes for the caller: action on a key, through a service."""

    action: str
    key_arn: str
    via_service: str  # "dynamodb.us-east-1.amazonaws.com"
    key_policy: dict[str, Any] | None  # None: an AWS managed key (the service's default)
    enabled: bool = True

    def context(self, account: str) -> dict[str, str]:
        return {"kms:ViaService": self.via_service, "kms:CallerAccount": account}


def aws_managed_key_policy(account: str, via_service: str) -> dict[str, Any]:
    """The policy AWS gives its managed keys (aws/dynamodb...): anyone in the account, through the service."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": account, "kms:ViaService": via_service}},
            }
        ],
    }  # fmt: skip


def _principal_kind(statement: Mapping[str, Any], principals: Iterable[str], account: str) -> str | None:
    """How a key-policy statement names the caller: "direct", "account" (delegates to IAM) or None."""
    principal = statement.get("Principal")
    named = ["*"] if principal == "*" else _as_list((principal or {}).get("AWS", []))
    if "*" in named or set(principals) & set(named):
        return "direct"
    if f"arn:aws:iam::{account}:root" in named or account in named:
        return "account"
    return None


def decide(
    use: KeyUse, identity_policies: Iterable[Mapping[str, Any]], principals: Iterable[str], account: str
) -> tuple[bool, str]:
    """Whether the caller may have ``use`` done for it, and why not (AWS's KMS authorization)."""
    if not use.enabled:
        return False, f"the key {use.key_arn} is disabled"
    context = use.context(account)
    policy = use.key_policy or aws_managed_key_policy(account, use.via_service)
    # the caller's own ARNs (session, role); the account root in a key policy means "ask IAM"
    principals = [p for p in principals if not p.endswith(":root")]
    direct = delegated = False
    for statement in _as_list(policy.get("Statement", [])):
        kind = _principal_kind(statement, principals, account)
        if kind is None or not statement_applies(statement, use.action, use.key_arn, context):
            continue
        if statement.get("Effect") == "Deny":
            return False, f"an explicit deny in the key policy of {use.key_arn}"
        if statement.get("Effect") == "Allow":
            direct = direct or kind == "direct"
            delegated = delegated or kind == "account"
    identity = evaluate(identity_policies, use.action, use.key_arn, context)
    if identity is Decision.EXPLICIT_DENY:
        return False, "an explicit deny in an identity-based policy"
    if direct or (delegated and identity is Decision.ALLOWED):
        return True, ""
    if delegated:
        return False, (
            f"no identity-based policy allows the {use.action} action on the key "
            f"(via {use.via_service}); the key policy of {use.key_arn} delegates to IAM"
        )
    return (
        False,
        f"the key policy of {use.key_arn} does not allow the caller {use.action} (via {use.via_service})",
    )


# -- which key encrypts a resource (moto's in-process backends) ----------------------------


def _key(
    account: str, region: str, key_id: str | None, via_service: str, actions: tuple[str, ...]
) -> list[KeyUse]:
    from moto.kms.models import kms_backends

    if not key_id:
        return []
    backend = kms_backends[account][region]
    try:
        key = backend.describe_key(backend.any_id_to_key_id(key_id))
    except (KeyError, TypeError, AttributeError):
        # a key id that resolves to nothing: the AWS managed default (moto's alias/aws/...)
        return []
    if key.key_manager == "AWS":
        return []
    policy = json.loads(key.policy) if isinstance(key.policy, str) else key.policy
    return [KeyUse(action, key.arn, via_service, policy, key.enabled) for action in actions]


def keys_used(action: str, resource: str, region: str, account: str) -> list[KeyUse]:
    """The customer managed key uses a request action on ``resource`` (an ARN) makes for its caller."""
    service, _, name = action.partition(":")
    actions = KMS_ACTIONS.get(service, {}).get(name)
    if not actions or not resource.startswith("arn:"):
        return []
    via = f"{service}.{region}.amazonaws.com"
    try:
        key_id = _resource_key_id(service, resource, region, account)
    except KeyError:  # no such resource: the service itself answers that
        return []
    return _key(account, region, key_id, via, actions)


def _resource_key_id(service: str, resource: str, region: str, account: str) -> str | None:
    if service == "dynamodb":
        from moto.dynamodb.models import dynamodb_backends

        table_name = resource.split(":table/", 1)[1].split("/", 1)[0]
        sse = dynamodb_backends[account][region].tables[table_name].sse_specification or {}
        enabled = sse.get("SSEEnabled", sse.get("Enabled"))
        return sse.get("KMSMasterKeyId") if str(enabled).lower() == "true" else None
    if service == "sqs":
        from moto.sqs.models import sqs_backends

        queue = sqs_backends[account][region].queues[resource.rsplit(":", 1)[1]]
        return getattr(queue, "kms_master_key_id", None)
    if service == "sns":
        from moto.sns.models import sns_backends

        return sns_backends[account][region].topics[resource].kms_master_key_id or None
    if service == "s3":
        from moto.s3.models import s3_backends

        bucket_name, _, object_key = resource.split(":::", 1)[1].partition("/")
        bucket = s3_backends[account]["global"].buckets[bucket_name]
        stored = bucket.keys.get(object_key) if object_key else None
        if stored is not None:
            return stored.kms_key_id if stored.encryption == "aws:kms" else None
        default = ((bucket.encryption or {}).get("Rule") or {}).get(
            "ApplyServerSideEncryptionByDefault"
        ) or {}
        return default.get("KMSMasterKeyID") if default.get("SSEAlgorithm") == "aws:kms" else None
    if service == "secretsmanager":
        from moto.secretsmanager.models import secretsmanager_backends

        backend = secretsmanager_backends[account][region]
        name = resource.split(":secret:", 1)[1]
        for secret in backend.secrets.values():
            if secret.arn == resource or secret.name == name:
                return secret.kms_key_id
        return None
    return None


def key_uses_for(checks: Iterable[Any], region: str, account: str) -> list[KeyUse]:
    """Every key use of a request's checks (``iam_requests.Check``), without repeats."""
    uses: list[KeyUse] = []
    for check in checks:
        for use in keys_used(check.action, check.resource, region, account):
            if use not in uses:
                uses.append(use)
    return uses
