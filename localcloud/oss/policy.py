"""Bucket policy: validation on PutBucketPolicy and evaluation of its Deny statements on every request.

Grammar: https://www.alibabacloud.com/help/en/oss/user-guide/authorization-syntax-and-elements. localcloud
evaluates what changes the outcome of a call made with the bucket owner's own credentials (the only callers
localcloud grants): ``Deny`` statements whose Principal, Action, Resource and Condition match. A statement with
``Principal: "*"`` and a ``Condition`` applies to the owner too; one without a Condition exempts the owner
(https://www.alibabacloud.com/help/en/oss/user-guide/oss-bucket-policy/, facts §3 "owner gotcha").

Supported condition operators: ``Bool``, ``StringEquals``/``StringNotEquals``, ``StringLike``/``StringNotLike``,
``IpAddress``/``NotIpAddress``; keys ``acs:SecureTransport`` (any of ``"false"``, ``false``, ``["false"]``),
``acs:SourceIp``, ``acs:UserAgent``, ``acs:AccessId``. An unknown key never matches, so a Deny using it does not
apply (documented as a difference).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from localcloud.oss.errors import oss_error

if TYPE_CHECKING:
    from localcloud.errors import ServiceError


@dataclass(frozen=True)
class RequestContext:
    """What a policy condition can look at."""

    action: str  # "oss:GetBucketHttpsConfig"
    resource: str  # "acs:oss:*:<account>:<bucket>" or ".../<bucket>/<key>"
    account_id: str  # the caller's account
    owner_account_id: str
    access_key_id: str
    secure_transport: bool
    source_ip: str
    user_agent: str


#: A policy must be smaller than 16 KB: https://help.aliyun.com/zh/oss/user-guide/0030-00000001
MAX_POLICY_BYTES = 16 * 1024
#: No field value may exceed 4,095 bytes: https://help.aliyun.com/en/oss/user-guide/0030-00000003
MAX_FIELD_BYTES = 4095
#: Nesting beyond this is not a policy (and bounds the walk over a hostile document).
MAX_POLICY_DEPTH = 8


def _invalid(message: str, ec: str = "0030-00000005") -> ServiceError:
    """400 InvalidPolicyDocument; EC 0030-00000005 is "the policy does not conform to the policy syntax"
    (https://help.aliyun.com/en/oss/user-guide/0030-00000005)."""
    return oss_error(400, "InvalidPolicyDocument", message, ec)


def _check_field_sizes(value: Any, depth: int = 0) -> None:
    """Every string in the document within :data:`MAX_FIELD_BYTES`, nesting within :data:`MAX_POLICY_DEPTH`."""
    if depth > MAX_POLICY_DEPTH:
        raise _invalid("Invalid Policy Document: the policy is nested too deeply.")
    if isinstance(value, str):
        if len(value.encode("utf-8")) > MAX_FIELD_BYTES:
            raise _invalid(f"Invalid Policy Document: a field value is longer than {MAX_FIELD_BYTES} bytes.",
                           ec="0030-00000003")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_field_sizes(key, depth + 1)
            _check_field_sizes(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_field_sizes(item, depth + 1)


def parse_policy(text: str, bucket: str) -> dict[str, Any]:
    """Validate a PutBucketPolicy body; raise 400 InvalidPolicyDocument with the EC OSS documents for each case."""
    if len(text.encode("utf-8")) >= MAX_POLICY_BYTES:
        raise _invalid("Invalid Policy Document: the policy must be smaller than 16 KB.", ec="0030-00000001")
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise _invalid("Invalid Policy Document: the policy is not valid JSON.") from None
    if not isinstance(doc, dict):
        raise _invalid("Invalid Policy Document: the policy must be a JSON object.")
    _check_field_sizes(doc)
    version = doc.get("Version")
    if not isinstance(version, str):
        # "Version": 1 (a number) is a syntax error, the doc's own example for 0030-00000005.
        raise _invalid("Invalid Policy Document: Version must be the string \"1\".")
    if version != "1":
        # https://help.aliyun.com/zh/oss/user-guide/0030-00000002
        raise _invalid("Invalid Policy Document: Version must be \"1\".", ec="0030-00000002")
    statements = doc.get("Statement")
    if not isinstance(statements, list) or not statements:
        raise _invalid("Invalid Policy Document: Statement must be a non-empty list.")
    for statement in statements:
        if not isinstance(statement, dict):
            raise _invalid("Invalid Policy Document: each Statement must be an object.")
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise _invalid("Invalid Policy Document: Effect must be Allow or Deny.")
        actions = _as_list(statement.get("Action"))
        if not actions:
            raise _invalid("Invalid Policy Document: Action is required.")
        if not all(isinstance(a, str) and a for a in actions):
            raise _invalid("Invalid Policy Document: Action must be a string or a list of strings.")
        # Principal is optional: OSS accepts a statement without it (the official SDKs' own tests put one,
        # aliyun/alibabacloud-oss-python-sdk-v2 tests/integration/test_bucket_policy_client.py); it is read as "*".
        resources = _as_list(statement.get("Resource"))
        if not resources:
            raise _invalid("Invalid Policy Document: Resource is required.")
        for resource in resources:
            if not isinstance(resource, str):
                raise _invalid("Invalid Policy Document: Resource must be a string or a list of strings.")
            if not _resource_names_bucket(resource, bucket):
                raise _invalid(f"Invalid Policy Document: resource {resource} does not belong to bucket {bucket}.")
        condition = statement.get("Condition", {})
        if not isinstance(condition, dict):
            raise _invalid("Invalid Policy Document: Condition must be an object.")
        for operator, clauses in condition.items():
            if not isinstance(clauses, dict) or not clauses:
                raise _invalid(f"Invalid Policy Document: Condition {operator} must map keys to values.")
            for key, value in clauses.items():
                values = _as_list(value)
                if not values or not all(isinstance(v, (str, bool, int, float)) for v in values):
                    raise _invalid(f"Invalid Policy Document: Condition {operator} {key} must be a string, a "
                                   "boolean, a number or a list of them.")
                if str(operator).lower() in ("ipaddress", "notipaddress"):
                    for address in values:
                        try:
                            ipaddress.ip_network(str(address), strict=False)
                        except ValueError:
                            raise _invalid(f"Invalid Policy Document: {address!r} is not an IP address or "
                                           "CIDR block.") from None
    return doc


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _resource_names_bucket(resource: str, bucket: str) -> bool:
    parts = resource.split(":", 4)
    if len(parts) != 5 or parts[0] != "acs" or parts[1] != "oss":
        return False
    path = parts[4]
    return path == "*" or path.split("/", 1)[0] in (bucket, "*") or fnmatch.fnmatchcase(bucket, path.split("/")[0])


def denies(policy: dict[str, Any], context: RequestContext) -> bool:
    """Whether a Deny statement of ``policy`` applies to this request."""
    for statement in policy.get("Statement", []):
        if statement.get("Effect") != "Deny":
            continue
        condition = statement.get("Condition") or {}
        if not _principal_matches(statement.get("Principal"), context, has_condition=bool(condition)):
            continue
        if not any(fnmatch.fnmatchcase(context.action.lower(), str(a).lower())
                   for a in _as_list(statement.get("Action"))):
            continue
        if not any(_resource_matches(str(r), context.resource) for r in _as_list(statement.get("Resource"))):
            continue
        if all(_condition_matches(op, block, context) for op, block in condition.items()):
            return True
    return False


def _principal_matches(principal: Any, context: RequestContext, *, has_condition: bool) -> bool:
    names = [str(p) for p in _as_list(principal)]
    if not names or "*" in names:
        # "*" covers the owner only when a Condition narrows the statement.
        return context.account_id != context.owner_account_id or has_condition
    return context.account_id in names or context.access_key_id in names


def _resource_matches(pattern: str, resource: str) -> bool:
    # Account and region segments may be "*" or explicit; compare the bucket/key path with wildcards.
    p_parts = pattern.split(":", 4)
    r_parts = resource.split(":", 4)
    if len(p_parts) != 5:
        return False
    return fnmatch.fnmatchcase(r_parts[4], p_parts[4])


def _condition_matches(operator: str, block: Any, context: RequestContext) -> bool:
    if not isinstance(block, dict):
        return False
    return all(_key_matches(operator, key, expected, context) for key, expected in block.items())


def _values(expected: Any) -> list[str]:
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(expected)]


def _key_matches(operator: str, key: str, expected: Any, context: RequestContext) -> bool:
    actual: str | None
    lowered = key.lower()
    if lowered == "acs:securetransport":
        actual = "true" if context.secure_transport else "false"
    elif lowered == "acs:sourceip":
        actual = context.source_ip
    elif lowered == "acs:useragent":
        actual = context.user_agent
    elif lowered == "acs:accessid":
        actual = context.access_key_id
    else:
        return False
    values = _values(expected)
    if operator == "Bool":
        return actual.lower() in [v.lower() for v in values]
    if operator == "StringEquals":
        return actual in values
    if operator == "StringNotEquals":
        return actual not in values
    if operator == "StringLike":
        return any(fnmatch.fnmatchcase(actual, v) for v in values)
    if operator == "StringNotLike":
        return not any(fnmatch.fnmatchcase(actual, v) for v in values)
    if operator in ("IpAddress", "NotIpAddress"):
        inside = any(_in_network(actual, v) for v in values)
        return inside if operator == "IpAddress" else not inside
    return False


def _in_network(address: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False
