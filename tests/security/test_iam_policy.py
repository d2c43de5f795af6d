"""The offline IAM evaluator and request mapper, without a server: hostile and edge-case policies."""

from __future__ import annotations

import io

import pytest

from localaws.iam.policy import Decision, evaluate, trust_allows
from localaws.iam.requests import describe_request

BUCKET_ARN = "arn:aws:s3:::lake"


def policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


LIST_MARKET = policy(
    {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": BUCKET_ARN,
        "Condition": {"StringLike": {"s3:prefix": "market/*"}},
    }
)


@pytest.mark.parametrize(
    ("context", "decision"),
    [
        ({"s3:prefix": "market/raw/"}, Decision.ALLOWED),
        ({"s3:prefix": "market/"}, Decision.ALLOWED),
        ({"s3:prefix": "covid/"}, Decision.IMPLICIT_DENY),
        ({"s3:prefix": "marketing/"}, Decision.IMPLICIT_DENY),
        ({"s3:prefix": ""}, Decision.IMPLICIT_DENY),
        ({}, Decision.IMPLICIT_DENY),  # no prefix: the whole bucket
    ],
)
def test_list_bucket_only_under_the_conditioned_prefix(context, decision):
    assert evaluate([LIST_MARKET], "s3:ListBucket", BUCKET_ARN, context) is decision


def test_action_wildcards_are_case_insensitive_and_resources_case_sensitive():
    p = policy({"Effect": "Allow", "Action": "S3:get*", "Resource": f"{BUCKET_ARN}/traffic/*"})
    assert evaluate([p], "s3:GetObject", f"{BUCKET_ARN}/traffic/raw/a") is Decision.ALLOWED
    assert evaluate([p], "s3:PutObject", f"{BUCKET_ARN}/traffic/raw/a") is Decision.IMPLICIT_DENY
    assert evaluate([p], "s3:GetObject", f"{BUCKET_ARN}/Traffic/raw/a") is Decision.IMPLICIT_DENY
    assert evaluate([p], "s3:GetObject", f"{BUCKET_ARN}/traffic") is Decision.IMPLICIT_DENY
    single = policy(
        {"Effect": "Allow", "Action": "dynamodb:?etItem", "Resource": "arn:aws:dynamodb:*:*:table/t"}
    )
    assert evaluate([single], "dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:1:table/t") is Decision.ALLOWED
    assert (
        evaluate([single], "dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:1:table/t2")
        is Decision.IMPLICIT_DENY
    )


def test_a_regex_metacharacter_in_a_policy_is_literal():
    p = policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET_ARN}/a.b/(x)+"})
    assert evaluate([p], "s3:GetObject", f"{BUCKET_ARN}/a.b/(x)+") is Decision.ALLOWED
    assert evaluate([p], "s3:GetObject", f"{BUCKET_ARN}/aXb/xx") is Decision.IMPLICIT_DENY


def test_explicit_deny_beats_any_allow_in_any_policy():
    allow_all = policy({"Effect": "Allow", "Action": "*", "Resource": "*"})
    deny = policy(
        {"Effect": "Deny", "Action": "dynamodb:*", "Resource": "arn:aws:dynamodb:*:*:table/covid_stats"}
    )
    assert evaluate(
        [allow_all, deny], "dynamodb:Query", "arn:aws:dynamodb:us-east-1:1:table/covid_stats"
    ) is (Decision.EXPLICIT_DENY)
    assert (
        evaluate([allow_all, deny], "dynamodb:Query", "arn:aws:dynamodb:us-east-1:1:table/x")
        is Decision.ALLOWED
    )


def test_not_action_and_not_resource():
    p = policy({"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::secret/*"})
    assert evaluate([p], "s3:GetObject", "arn:aws:s3:::lake/a") is Decision.ALLOWED
    assert evaluate([p], "iam:PassRole", "arn:aws:iam::1:role/r") is Decision.IMPLICIT_DENY
    assert evaluate([p], "s3:GetObject", "arn:aws:s3:::secret/a") is Decision.IMPLICIT_DENY


def test_an_unknown_condition_operator_never_grants_but_still_denies():
    odd = {"NumericLessThan": {"s3:max-keys": "10"}}
    allow = policy({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET_ARN, "Condition": odd})
    deny = policy({"Effect": "Deny", "Action": "s3:ListBucket", "Resource": BUCKET_ARN, "Condition": odd})
    assert evaluate([allow], "s3:ListBucket", BUCKET_ARN, {"s3:max-keys": "5"}) is Decision.IMPLICIT_DENY
    everything = policy({"Effect": "Allow", "Action": "*", "Resource": "*"})
    assert evaluate([everything, deny], "s3:ListBucket", BUCKET_ARN, {}) is Decision.EXPLICIT_DENY


def test_if_exists_null_and_set_qualifiers():
    base = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET_ARN}
    if_exists = policy({**base, "Condition": {"StringLikeIfExists": {"s3:prefix": "market/*"}}})
    assert evaluate([if_exists], "s3:ListBucket", BUCKET_ARN, {}) is Decision.ALLOWED
    assert (
        evaluate([if_exists], "s3:ListBucket", BUCKET_ARN, {"s3:prefix": "covid/"}) is Decision.IMPLICIT_DENY
    )
    null = policy({**base, "Condition": {"Null": {"s3:prefix": "false"}}})
    assert evaluate([null], "s3:ListBucket", BUCKET_ARN, {}) is Decision.IMPLICIT_DENY
    assert evaluate([null], "s3:ListBucket", BUCKET_ARN, {"s3:prefix": "x"}) is Decision.ALLOWED
    not_like = policy({**base, "Condition": {"StringNotLike": {"s3:prefix": "covid/*"}}})
    assert (
        evaluate([not_like], "s3:ListBucket", BUCKET_ARN, {"s3:prefix": "covid/a"}) is Decision.IMPLICIT_DENY
    )
    assert evaluate([not_like], "s3:ListBucket", BUCKET_ARN, {"s3:prefix": "market/a"}) is Decision.ALLOWED
    all_values = policy({**base, "Condition": {"ForAllValues:StringEquals": {"k": ["a", "b"]}}})
    assert evaluate([all_values], "s3:ListBucket", BUCKET_ARN, {"k": ["a", "b"]}) is Decision.ALLOWED
    assert evaluate([all_values], "s3:ListBucket", BUCKET_ARN, {"k": ["a", "c"]}) is Decision.IMPLICIT_DENY


def test_trust_policy_names_the_role_not_just_anyone():
    trust = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::1:role/airflow-pipelines"},
            "Action": "sts:AssumeRole",
        }
    )
    assert trust_allows(
        trust, ["arn:aws:sts::1:assumed-role/airflow-pipelines/s", "arn:aws:iam::1:role/airflow-pipelines"]
    )
    assert not trust_allows(
        trust, ["arn:aws:sts::1:assumed-role/airflow-api-server/s", "arn:aws:iam::1:role/airflow-api-server"]
    )
    service = policy(
        {"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}
    )
    assert not trust_allows(service, ["arn:aws:iam::1:role/airflow-pipelines", "arn:aws:iam::1:root"])


def _environ(method, path, *, query="", service="s3", target=None, headers=None):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "HTTP_HOST": "127.0.0.1:4566",
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=ASIAKEY/20250101/us-east-1/{service}/aws4_request, "
        "SignedHeaders=host, Signature=x",
        "wsgi.input": io.BytesIO(),
    }
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    environ.update(headers or {})
    return environ


def test_requests_map_to_action_resource_and_prefix():
    listing = describe_request(_environ("GET", "/lake", query="list-type=2&prefix=market%2Fraw%2F"), b"")
    assert [(c.action, c.resource, c.context) for c in listing.checks] == [
        ("s3:ListBucket", "arn:aws:s3:::lake", {"s3:prefix": "market/raw/"})
    ]
    copy = describe_request(
        _environ("PUT", "/lake/covid/b", headers={"HTTP_X_AMZ_COPY_SOURCE": "/lake/market/a"}), b""
    )
    assert [(c.action, c.resource) for c in copy.checks] == [
        ("s3:PutObject", "arn:aws:s3:::lake/covid/b"),
        ("s3:GetObject", "arn:aws:s3:::lake/market/a"),
    ]
    delete = describe_request(
        _environ("POST", "/lake", query="delete"),
        b"<Delete><Object><Key>traffic/a</Key></Object><Object><Key>covid/b</Key></Object></Delete>",
    )
    assert [c.resource for c in delete.checks] == ["arn:aws:s3:::lake/traffic/a", "arn:aws:s3:::lake/covid/b"]
    batch = describe_request(
        _environ("POST", "/", service="dynamodb", target="DynamoDB_20120810.BatchWriteItem"),
        b'{"RequestItems": {"market_orders": [], "covid_stats": []}}',
    )
    assert [(c.action, c.resource.rsplit(":", 1)[-1]) for c in batch.checks] == [
        ("dynamodb:BatchWriteItem", "table/market_orders"),
        ("dynamodb:BatchWriteItem", "table/covid_stats"),
    ]
    unknown = describe_request(
        _environ("POST", "/", service="kinesis", target="Kinesis_20131202.PutRecord"), b"{}"
    )
    assert [(c.action, c.resource) for c in unknown.checks] == [("kinesis:PutRecord", "*")]


# -- KMS: key policy and identity policy together (localaws/kms/keys.py) ---------------------------

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/k1"
ROLE = "arn:aws:iam::123456789012:role/reader"
SESSION = "arn:aws:sts::123456789012:assumed-role/reader/s"
CALLER = [SESSION, ROLE, "arn:aws:iam::123456789012:root"]
DELEGATES_TO_IAM = policy(
    {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
)
DECRYPT_VIA_DYNAMODB = policy(
    {
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": KEY_ARN,
        "Condition": {"StringEquals": {"kms:ViaService": "dynamodb.us-east-1.amazonaws.com"}},
    }
)


def _use(key_policy, via="dynamodb.us-east-1.amazonaws.com", action="kms:Decrypt", enabled=True):
    from localaws.kms.keys import KeyUse

    return KeyUse(action, KEY_ARN, via, key_policy, enabled)


def _decide(use, identity):
    from localaws.kms.keys import decide

    return decide(use, identity, CALLER, "123456789012")


def test_kms_identity_grant_counts_only_when_the_key_policy_delegates_to_the_account():
    assert _decide(_use(DELEGATES_TO_IAM), [DECRYPT_VIA_DYNAMODB])[0] is True
    assert _decide(_use(DELEGATES_TO_IAM), [])[0] is False  # the key policy alone names no one
    names_someone_else = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:role/other"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    allowed, why = _decide(_use(names_someone_else), [DECRYPT_VIA_DYNAMODB])
    assert allowed is False and "key policy" in why


def test_kms_via_service_and_caller_account_conditions():
    # identity grant through DynamoDB only: refused when the key is used through SQS
    assert (
        _decide(_use(DELEGATES_TO_IAM, via="sqs.us-east-1.amazonaws.com"), [DECRYPT_VIA_DYNAMODB])[0] is False
    )
    key_policy_names_the_role = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ROLE},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": "dynamodb.us-east-1.amazonaws.com",
                    "kms:CallerAccount": "123456789012",
                }
            },
        }
    )
    assert _decide(_use(key_policy_names_the_role), [])[0] is True  # no identity policy needed
    assert _decide(_use(key_policy_names_the_role, via="sns.us-east-1.amazonaws.com"), [])[0] is False
    assert _decide(_use(key_policy_names_the_role, action="kms:GenerateDataKey"), [])[0] is False
    other_account = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": "999999999999"}},
        }
    )
    assert _decide(_use(other_account), [])[0] is False


def test_kms_explicit_deny_in_either_policy_wins_and_a_disabled_key_refuses_everyone():
    deny_in_key = policy(
        DELEGATES_TO_IAM["Statement"][0],
        {"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"},
    )
    assert _decide(_use(deny_in_key), [DECRYPT_VIA_DYNAMODB])[0] is False
    deny_in_identity = policy({"Effect": "Deny", "Action": "kms:*", "Resource": "*"})
    assert _decide(_use(DELEGATES_TO_IAM), [DECRYPT_VIA_DYNAMODB, deny_in_identity])[0] is False
    allowed, why = _decide(_use(DELEGATES_TO_IAM, enabled=False), [DECRYPT_VIA_DYNAMODB])
    assert allowed is False and "disabled" in why


def test_an_aws_managed_key_allows_the_account_through_its_service_only():
    assert _decide(_use(None), [])[0] is True  # aws/dynamodb: anyone in the account, through DynamoDB
    from localaws.kms.keys import KeyUse, aws_managed_key_policy, decide

    via = "dynamodb.us-east-1.amazonaws.com"
    managed = aws_managed_key_policy("123456789012", via)
    outsider = ["arn:aws:sts::999999999999:assumed-role/x/s"]
    assert decide(KeyUse("kms:Decrypt", KEY_ARN, via, managed), [], outsider, "999999999999")[0] is False
    elsewhere = "sqs.us-east-1.amazonaws.com"
    assert decide(KeyUse("kms:Decrypt", KEY_ARN, elsewhere, managed), [], CALLER, "123456789012")[0] is False


def test_secrets_manager_requests_name_the_secret_arn():
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "HTTP_X_AMZ_TARGET": "secretsmanager.GetSecretValue",
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=AKIA1/20260101/us-east-1/secretsmanager/aws4_request",
        "wsgi.input": io.BytesIO(b""),
    }
    body = b'{"SecretId": "airflow/variables/alert_emails"}'
    (check,) = describe_request(environ, body).checks
    assert (check.action, check.resource) == (
        "secretsmanager:GetSecretValue",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:airflow/variables/alert_emails",
    )
    wildcard = policy(
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:airflow/variables/*",
        }
    )
    assert evaluate([wildcard], check.action, check.resource) is Decision.ALLOWED
    assert (
        evaluate([wildcard], check.action, check.resource.replace("airflow/", "payroll/"))
        is Decision.IMPLICIT_DENY
    )
