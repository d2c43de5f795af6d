"""IAM identity-policy evaluation, pure: (policies, action, resource, request context) -> decision.

What AWS does for a request inside one account without resource policies, boundaries or
SCPs: an explicit ``Deny`` in any statement wins, otherwise some ``Allow`` must match,
otherwise the request is implicitly denied. A statement matches when its Action (or
NotAction) matches the action, case-insensitively with ``*``/``?`` wildcards, its
Resource (or NotResource) matches the ARN, case-sensitively with wildcards, and every
Condition holds.

Conditions: the String*, Arn*, Bool and Null operators, with ``...IfExists`` and the
``ForAnyValue:``/``ForAllValues:`` set qualifiers. A key the request does not carry
makes a condition false (true for ``IfExists``, as in AWS). An operator we do not know
makes the statement fail to match (and an explicit Deny with it apply): a policy we
cannot read must not widen access. Policy variables (``${aws:username}``) are not
expanded: they compare literally, so a statement using them never grants more.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from typing import Any


class Decision(enum.Enum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicitly denied"
    IMPLICIT_DENY = "not allowed"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, *, ignore_case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def action_matches(pattern: str, action: str) -> bool:
    """``s3:Get*`` matches ``s3:GetObject``; action names are case-insensitive."""
    return _glob(pattern, action, ignore_case=True)


def resource_matches(pattern: str, arn: str) -> bool:
    """``arn:aws:s3:::bucket/traffic/*`` matches ``arn:aws:s3:::bucket/traffic/raw/x``; case-sensitive."""
    return pattern == "*" or _glob(pattern, arn, ignore_case=False)


def _string_op(base: str, expected: str, actual: str) -> bool:
    if base in ("StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals"):
        return expected == actual
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return expected.lower() == actual.lower()
    if base in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike"):
        return _glob(expected, actual, ignore_case=False)
    raise KeyError(base)


_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}
_POSITIVE = {"StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike"}


def condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, Any]) -> bool:
    """One ``{operator: {key: expected}}`` entry of a Condition block against the request context."""
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    expected_values = [str(v) for v in _as_list(expected)]
    if base not in _NEGATED | _POSITIVE | {"Null", "Bool"}:
        raise ValueError(f"condition operator {operator} is not supported by the offline evaluator")
    present = key in context and context[key] is not None
    if base == "Null":
        want_absent = expected_values[0].lower() == "true"
        return want_absent != present
    if not present:
        return if_exists or (qualifier == "ForAllValues")
    actual_values = [str(v) for v in _as_list(context[key])]
    if base == "Bool":
        return any(a.lower() == e.lower() for a in actual_values for e in expected_values)
    positive = base.replace("Not", "", 1) if base in _NEGATED else base

    def one(actual: str) -> bool:
        matched = any(_string_op(positive, e, actual) for e in expected_values)
        return not matched if base in _NEGATED else matched

    if qualifier == "ForAllValues":
        return all(one(a) for a in actual_values)
    return any(one(a) for a in actual_values)


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, Any]) -> bool:
    for operator, entries in conditions.items():
        for key, expected in entries.items():
            if not condition_holds(operator, key, expected, context):
                return False
    return True


def statement_applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, Any]
) -> bool:
    if "NotAction" in statement:
        if any(action_matches(p, action) for p in _as_list(statement["NotAction"])):
            return False
    elif not any(action_matches(p, action) for p in _as_list(statement.get("Action", []))):
        return False
    if "NotResource" in statement:
        if any(resource_matches(p, resource) for p in _as_list(statement["NotResource"])):
            return False
    elif not any(resource_matches(p, resource) for p in _as_list(statement.get("Resource", []))):
        return False
    try:
        return _conditions_hold(statement.get("Condition", {}), context)
    except ValueError:
        # unreadable condition: an Allow must not grant, a Deny must still deny
        return statement.get("Effect") == "Deny"


def evaluate(
    policies: Iterable[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, Any] | None = None,
) -> Decision:
    """The decision of a set of identity policies for one (action, resource) of a request."""
    context = context or {}
    allowed = False
    for policy in policies:
        for statement in _as_list(policy.get("Statement", [])):
            if not statement_applies(statement, action, resource, context):
                continue
            if statement.get("Effect") == "Deny":
                return Decision.EXPLICIT_DENY
            if statement.get("Effect") == "Allow":
                allowed = True
    return Decision.ALLOWED if allowed else Decision.IMPLICIT_DENY


def trust_allows(
    trust_policy: Mapping[str, Any], principal_arns: Iterable[str], action: str = "sts:AssumeRole"
) -> bool:
    """Whether a role's trust policy lets one of ``principal_arns`` (caller, its role, its account root) in."""
    principals = set(principal_arns)
    allowed = False
    for statement in _as_list(trust_policy.get("Statement", [])):
        if not any(action_matches(p, action) for p in _as_list(statement.get("Action", []))):
            continue
        named = (
            _as_list((statement.get("Principal") or {}).get("AWS", []))
            if statement.get("Principal") != "*"
            else ["*"]
        )
        if not ("*" in named or principals & set(named)):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow" and not statement.get("Condition"):
            allowed = True
    return allowed
