"""IAM enforcement for the offline stack: every request checked against its caller's identity policies.

Off by default (``LOCALAWS_ENFORCE_IAM=1``, ``LocalAWS(enforce_iam=True)``,
``python -m localaws --enforce-iam`` or ``POST /_localaws/iam {"enforce": true}`` turn it on).

Why not moto's own access control (``INITIAL_NO_AUTH_ACTION_COUNT``): in moto 5.2.5 it
resolves the caller (IAM user keys, assumed-role keys with their session token) and
evaluates Action, but the Resource it checks is known only for S3, SQS, IAM and STS;
DynamoDB, SNS and Glue are checked against ``*``, so a statement scoped to a table or
topic ARN never matches and every least-privilege policy denies. Conditions are only
read from trust-policy inputs, so ``s3:prefix`` conditions deny too. localaws' own
handlers (Athena, Glue crawlers, DynamoDB BatchWriteItem) never reach moto's check.

So this middleware sits in front of the whole stack and, per request:

1. finds the caller from the SigV4 access key (moto's own lookup: IAM users and
   assumed roles, with the session token checked). The stack's administrator key
   (``testing``, what provisioning and localaws' internal calls use) is the account root
   and unrestricted; any other unknown key is refused (``InvalidClientTokenId``);
2. works out the IAM action, the resource ARN(s) and context keys (``s3:prefix``) of
   the request, for S3, DynamoDB, SQS, SNS, STS, IAM, Glue and Athena
   (``localaws/iam/requests.py``); an action it cannot place is checked against ``*``;
3. evaluates the caller's identity policies (inline and attached, users' groups too)
   with ``localaws/iam/policy.py``; ``sts:AssumeRole`` also needs the role's trust
   policy to name the caller, its role or its account;
4. on an encrypted table, queue, topic, bucket or secret, checks the KMS key use the
   service makes for the caller (``kms:Decrypt``, ``kms:GenerateDataKey``) as KMS does:
   key policy and identity policies, with ``kms:ViaService`` and ``kms:CallerAccount``
   (``localaws/kms/keys.py``);
5. adds what AWS checks beyond the request itself: ``glue:CreateCrawler`` /
   ``UpdateCrawler`` need ``iam:PassRole`` on the crawler's role; ``glue:StartCrawler``
   needs the crawler's role to trust ``glue.amazonaws.com`` and to be allowed to list and
   read every S3 path it crawls (in S3 event mode also to use its event queue:
   ``EVENT_QUEUE_ACTIONS`` and the queue key's ``kms:Decrypt``);
   ``athena:StartQueryExecution`` needs ``s3:PutObject`` on the result location.

Refused requests answer as AWS does for the protocol (S3 XML ``AccessDenied`` 403, JSON
``AccessDeniedException`` 400, query-protocol XML 403), naming caller, action and
resource. Key policies are evaluated (KMS needs them to allow, directly or by
delegating to the account); other resource-based policies (bucket, queue) are not:
they can only refuse here (everything is one account), and the offline endpoint is
plain HTTP, so the template's TLS-only statements are left out offline.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from localaws.iam.policy import Decision, evaluate, trust_allows
from localaws.iam.requests import Check, RequestDescription, describe_request, s3_arn
from localaws.kms.keys import decide as kms_decide
from localaws.kms.keys import key_uses_for
from localaws.s3uri import split_s3_uri

log = logging.getLogger("localaws.iam")

ADMIN_ACCESS_KEYS = frozenset({"testing"})
CONTROL_PATH = "/_localaws/iam"


# what an S3 event mode crawl does with its queue, as the crawler's role (glue/events.py)
EVENT_QUEUE_ACTIONS = (
    "sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:PurgeQueue",
)  # fmt: skip


def _event_queues(crawler: dict[str, Any]) -> list[str]:
    """The SQS queue ARN of an S3 event mode crawler's target (none for any other crawler)."""
    if (crawler.get("RecrawlPolicy") or {}).get("RecrawlBehavior") != "CRAWL_EVENT_MODE":
        return []
    targets = crawler.get("Targets") or {}
    return [
        t["EventQueueArn"]
        for t in (targets.get("S3Targets") or []) + (targets.get("CatalogTargets") or [])
        if t.get("EventQueueArn")
    ]


class Refused(Exception):
    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class Caller:
    arn: str
    account: str
    policies: list[dict[str, Any]]
    trust_principals: list[str] = field(default_factory=list)


def _policy_documents(raw: Iterable[Any]) -> list[dict[str, Any]]:
    documents = []
    for policy in raw:
        if hasattr(policy, "versions"):  # a managed policy: its default version
            text = next(v.document for v in policy.versions if v.is_default)
        elif isinstance(policy, str):
            text = policy
        else:
            text = policy["policy_document"]
        documents.append(json.loads(text) if isinstance(text, str) else text)
    return documents


def resolve_caller(access_key_id: str, session_token: str | None) -> Caller:
    """The IAM user or assumed role owning ``access_key_id``, with its identity policies."""
    from moto.iam.access_control import CreateAccessKeyFailure, create_access_key
    from moto.iam.models import get_account_id_from

    account = get_account_id_from(access_key_id)
    headers = {"X-Amz-Security-Token": session_token} if session_token else {}
    try:
        key = create_access_key(
            account_id=account, partition="aws", access_key_id=access_key_id, headers=headers
        )
    except CreateAccessKeyFailure as failure:
        if failure.reason == "InvalidToken":
            raise Refused(
                "InvalidClientTokenId", "The security token included in the request is invalid."
            ) from None
        raise Refused(
            "InvalidClientTokenId", f"The AWS access key id {access_key_id} does not exist in our records."
        ) from None
    arn = key.arn
    principals = [arn, f"arn:aws:iam::{account}:root"]
    if ":assumed-role/" in arn:
        role_name = arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
        principals.append(f"arn:aws:iam::{account}:role/{role_name}")
    return Caller(
        arn=arn,
        account=account,
        policies=_policy_documents(key.collect_policies()),
        trust_principals=principals,
    )


class IamEnforcement:
    """WSGI middleware in front of the stack's application (see the module doc)."""

    def __init__(
        self, app: Callable[..., Any], client: Callable[[str], Any], enabled: bool | None = None
    ) -> None:
        """``client(service)``: an administrator's boto3 client of this same stack (role and crawler lookups)."""
        self.app = app
        self.client = client
        self.enabled = enabled if enabled is not None else os.environ.get("LOCALAWS_ENFORCE_IAM", "") == "1"
        self.refusals: list[dict[str, str]] = []
        self.granted: set[tuple[str, str, str]] = set()  # (caller, action, resource): what policies are used for
        self._lock = threading.Lock()

    # -- WSGI ----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "") == CONTROL_PATH:
            return self._control(environ, start_response)
        if not self.enabled or environ.get("PATH_INFO", "").startswith("/_localaws/"):
            return self.app(environ, start_response)
        body = (
            b""
            if _protocol(environ) == "s3" and environ.get("REQUEST_METHOD") != "POST"
            else _read_body(environ)
        )
        try:
            description = describe_request(environ, body)
            self.authorize(description)
        except Refused as refused:
            return self._refuse(start_response, refused, environ)
        return self.app(environ, start_response)

    def _control(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            request = json.loads(_read_body(environ) or b"{}")
            if "enforce" in request:
                self.enabled = bool(request["enforce"])
            if request.get("clear"):
                self.clear()
        with self._lock:
            payload = json.dumps({"enforce": self.enabled, "refusals": list(self.refusals)}).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        )
        return [payload]

    def clear(self) -> None:
        with self._lock:
            self.refusals.clear()
            self.granted.clear()

    # -- decisions -----------------------------------------------------------------------

    def authorize(self, request: RequestDescription) -> None:
        if request.access_key is None:
            raise Refused("MissingAuthenticationToken", "Request is missing Authentication Token")
        if request.access_key in ADMIN_ACCESS_KEYS:
            return
        caller = resolve_caller(request.access_key, request.session_token)
        checks = list(request.checks) + self._implied_checks(request, caller)
        for check in checks:
            decision = evaluate(caller.policies, check.action, check.resource, check.context)
            if decision is not Decision.ALLOWED:
                self._deny(caller.arn, check, decision)
            if check.action.lower() == "sts:assumerole":
                trust = self._trust_policy(check.resource)
                if trust is None or not trust_allows(trust, caller.trust_principals):
                    self._deny(
                        caller.arn,
                        check,
                        None,
                        f"the trust policy of {check.resource} does not name the caller",
                    )
        key_checks = []
        # the implied checks too: Athena writes its results to S3 as the caller
        for use in key_uses_for(checks, request.region, caller.account):
            check = Check(use.action, use.key_arn, use.context(caller.account))
            allowed, why = kms_decide(use, caller.policies, caller.trust_principals, caller.account)
            if not allowed:
                self._deny(caller.arn, check, None, why)
            key_checks.append(check)
        with self._lock:
            self.granted.update((caller.arn, check.action, check.resource) for check in checks + key_checks)

    def _deny(self, caller_arn: str, check: Check, decision: Decision | None, why: str | None = None) -> None:
        reason = why or (
            "an explicit deny in an identity-based policy"
            if decision is Decision.EXPLICIT_DENY
            else f"no identity-based policy allows the {check.action} action"
        )
        message = (
            f"User: {caller_arn} is not authorized to perform: {check.action} on resource: "
            f"{check.resource} because {reason}"
        )
        with self._lock:
            self.refusals.append({"caller": caller_arn, "action": check.action, "resource": check.resource})
        log.warning("IAM refused: %s", message)
        raise Refused("AccessDenied", message)

    def _implied_checks(self, request: RequestDescription, caller: Caller) -> list[Check]:
        """What AWS also requires of the caller, beyond the request's own action and resource."""
        implied: list[Check] = []
        target = request.target or ""
        payload = request.json_body or {}
        if target in ("AWSGlue.CreateCrawler", "AWSGlue.UpdateCrawler") and payload.get("Role"):
            role = payload["Role"]
            role_arn = role if role.startswith("arn:") else f"arn:aws:iam::{caller.account}:role/{role}"
            implied.append(Check("iam:PassRole", role_arn, {"iam:PassedToService": "glue.amazonaws.com"}))
        elif target == "AWSGlue.StartCrawler":
            self._check_crawler_role(payload.get("Name", ""), caller)
        elif target == "AmazonAthena.StartQueryExecution":
            output = (payload.get("ResultConfiguration") or {}).get("OutputLocation")
            if output and output.startswith("s3://"):
                bucket, prefix = split_s3_uri(output)
                implied.append(
                    Check("s3:PutObject", s3_arn(bucket, prefix.rstrip("/") + "/query-result.csv"))
                )
        return implied

    def _trust_policy(self, role_arn_or_name: str) -> dict[str, Any] | None:
        iam = self.client("iam")
        try:
            return iam.get_role(RoleName=role_arn_or_name.rsplit("/", 1)[-1])["Role"][
                "AssumeRolePolicyDocument"
            ]
        except iam.exceptions.NoSuchEntityException:
            return None

    def _role_policies(self, role_name: str) -> list[dict[str, Any]]:
        iam = self.client("iam")
        documents = [
            iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
            for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        ]
        for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
            version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
            document = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)
            documents.append(document["PolicyVersion"]["Document"])
        return [json.loads(d) if isinstance(d, str) else d for d in documents]

    def _check_crawler_role(self, crawler_name: str, caller: Caller) -> None:
        """A crawler runs as its role: glue must be trusted by it, and it must read what it crawls."""
        glue = self.client("glue")
        try:
            crawler = glue.get_crawler(Name=crawler_name)["Crawler"]
        except glue.exceptions.EntityNotFoundException:
            return  # the handler itself answers EntityNotFoundException
        role_name = crawler["Role"].rsplit("/", 1)[-1]
        role_arn = f"arn:aws:iam::{caller.account}:role/{role_name}"
        trust = self._trust_policy(role_name)
        if trust is None or not _trusts_service(trust, "glue.amazonaws.com"):
            self._deny(
                "glue.amazonaws.com",
                Check("sts:AssumeRole", role_arn, {}),
                None,
                f"the trust policy of {role_arn} does not name glue.amazonaws.com",
            )
        policies = self._role_policies(role_name)
        for bucket, prefix in self._crawled_paths(crawler):
            for needed in (
                Check("s3:ListBucket", s3_arn(bucket), {"s3:prefix": prefix}),
                Check("s3:GetObject", s3_arn(bucket, prefix + "object")),
            ):
                decision = evaluate(policies, needed.action, needed.resource, needed.context)
                if decision is not Decision.ALLOWED:
                    self._deny(f"{role_arn} (crawler {crawler_name})", needed, decision)
        for queue_arn in _event_queues(crawler):
            self._check_event_queue_use(crawler_name, role_arn, policies, queue_arn, caller.account)

    def _check_event_queue_use(
        self, crawler_name: str, role_arn: str, policies: list[dict[str, Any]], queue_arn: str, account: str
    ) -> None:
        """An S3 event mode crawl (localaws/glue/events.py) uses its queue as the crawler's role:
        GetQueueUrl, GetQueueAttributes, ReceiveMessage, DeleteMessage, PurgeQueue (a crawl listing
        the whole target),
        and, on a queue encrypted with a customer managed key, kms:Decrypt through SQS."""
        who = f"{role_arn} (crawler {crawler_name})"
        for action in EVENT_QUEUE_ACTIONS:
            needed = Check(action, queue_arn, {})
            decision = evaluate(policies, needed.action, needed.resource, needed.context)
            if decision is not Decision.ALLOWED:
                self._deny(who, needed, decision)
        region = queue_arn.split(":")[3]
        for use in key_uses_for([Check("sqs:ReceiveMessage", queue_arn, {})], region, account):
            allowed, why = kms_decide(use, policies, [role_arn], account)
            if not allowed:
                self._deny(who, Check(use.action, use.key_arn, use.context(account)), None, why)

    def _crawled_paths(self, crawler: dict[str, Any]) -> list[tuple[str, str]]:
        """(bucket, key prefix) of every S3 location the crawler reads: S3 targets and catalog tables' locations."""
        glue = self.client("glue")
        targets = crawler.get("Targets") or {}
        locations = [t["Path"] for t in targets.get("S3Targets", [])]
        for target in targets.get("CatalogTargets", []):
            for table_name in target.get("Tables", []):
                try:
                    table = glue.get_table(DatabaseName=target["DatabaseName"], Name=table_name)["Table"]
                except glue.exceptions.EntityNotFoundException:
                    continue
                location = table.get("StorageDescriptor", {}).get("Location")
                if location:
                    locations.append(location)
        paths = []
        for location in locations:
            # Judged on the bucket it names whatever its scheme (s3a://, none), as always:
            # only the crawl itself refuses a location that is not s3://.
            bucket, prefix = split_s3_uri("s3://" + location.split("://", 1)[-1])
            paths.append((bucket, prefix.rstrip("/") + "/" if prefix else ""))
        return paths

    # -- responses -----------------------------------------------------------------------

    def _refuse(self, start_response: Any, refused: Refused, environ: dict[str, Any]) -> list[bytes]:
        description_protocol = _protocol(environ)
        if description_protocol == "json":
            code = "AccessDeniedException" if refused.code == "AccessDenied" else refused.code
            payload = json.dumps(
                {"__type": code, "message": refused.message, "Message": refused.message}
            ).encode()
            status, content_type = "400 Bad Request", "application/x-amz-json-1.1"
        elif description_protocol == "s3":
            payload = (
                f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{refused.code}</Code>'
                f"<Message>{_xml_escape(refused.message)}</Message></Error>"
            ).encode()
            status, content_type = "403 Forbidden", "application/xml"
        else:
            payload = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{refused.code}</Code>"
                f"<Message>{_xml_escape(refused.message)}</Message></Error></ErrorResponse>"
            ).encode()
            status, content_type = "403 Forbidden", "text/xml"
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(payload)))])
        return [payload]


def _trusts_service(trust_policy: dict[str, Any], service: str) -> bool:
    for statement in trust_policy.get("Statement", []):
        services = (statement.get("Principal") or {}).get("Service", [])
        services = services if isinstance(services, list) else [services]
        if statement.get("Effect") == "Allow" and service in services:
            return True
    return False


def _protocol(environ: dict[str, Any]) -> str:
    if environ.get("HTTP_X_AMZ_TARGET"):
        return "json"
    auth = environ.get("HTTP_AUTHORIZATION", "") + environ.get("QUERY_STRING", "")
    if "/s3/aws4_request" in auth or "%2Fs3%2Faws4_request" in auth:
        return "s3"
    return "query"


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body
