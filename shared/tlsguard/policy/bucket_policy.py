"""The HTTPS-only bucket policy statement: recognise it in any equivalent form, merge it in without touching others.

A bucket policy PUT replaces the whole document, so tlsguard always re-sends every existing statement unchanged
and in order, appending its Deny only when no equivalent statement is present. Equivalent means: Effect Deny,
Principal everyone (``"*"``, ``["*"]`` or ``[]``), Action covering ``oss:*``, Resource covering the bucket and its
objects, and ``Bool`` ``acs:SecureTransport`` false in any spelling (``"false"``, ``false``, ``["false"]``).
Doc: https://www.alibabacloud.com/help/en/oss/user-guide/oss-bucket-policy/ (grammar; PUT replaces the policy).
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

POLICY_VERSION = "1"
#: What makes a Resource pattern a glob for fnmatch (see :func:`_covers`).
_GLOB_CHARACTERS = frozenset("*?[")


def https_only_statement(bucket: str) -> dict[str, Any]:
    """The statement tlsguard adds: deny every OSS action over plain HTTP, for everyone."""
    return {
        "Effect": "Deny",
        "Principal": ["*"],
        "Action": ["oss:*"],
        "Resource": [f"acs:oss:*:*:{bucket}", f"acs:oss:*:*:{bucket}/*"],
        "Condition": {"Bool": {"acs:SecureTransport": ["false"]}},
    }


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _is_false(value: Any) -> bool:
    values = _as_list(value)
    return bool(values) and all(v is False or (isinstance(v, str) and v.strip().lower() == "false") for v in values)


def _covers(patterns: list[Any], target: str) -> bool:
    """True when one of the Resource patterns covers ``target`` (``<bucket>`` or ``<bucket>/*``).

    An OSS resource is ``acs:oss:<region>:<account>:<bucket>[/<object>]``. Bucket names are global, so a pattern
    scoped to a region or an account (``acs:oss:*:1500000000000001:b``, ``acs:oss:cn-hangzhou:*:b``, as the console
    writes them) names the same bucket: only the last field is matched.
    """
    # Only a pattern with a wildcard goes to fnmatch: fnmatch compiles (and caches, up to 32,768 entries) one regex
    # per distinct pattern, and the common statement names its bucket literally (``b`` and ``b/*``), so a
    # 10,000-bucket sweep would compile ~10,000 regexes (~0.4 ms of CPU each) for patterns that a string comparison
    # decides. A pattern without ``*``, ``?`` or ``[`` matches only itself, so the shortcut never changes the answer.
    for pattern in patterns:
        if not isinstance(pattern, str):
            continue
        fields = pattern.split(":", 4)
        if len(fields) != 5 or fields[0] != "acs" or fields[1] not in ("oss", "*"):
            if pattern == "*":
                return True
            continue
        tail = fields[4]
        if tail == target:
            return True
        if _GLOB_CHARACTERS.intersection(tail) and fnmatch.fnmatchcase(target, tail):
            return True
    return False


def is_https_only_statement(statement: Any, bucket: str) -> bool:
    """True when ``statement`` denies all plain-HTTP access to the bucket and its objects for everyone."""
    if not isinstance(statement, dict) or str(statement.get("Effect", "")).lower() != "deny":
        return False
    if "NotAction" in statement or "NotResource" in statement or "NotPrincipal" in statement:
        return False
    principals = _as_list(statement.get("Principal"))
    if principals and "*" not in principals:
        return False
    if not any(action in ("oss:*", "*") for action in _as_list(statement.get("Action"))):
        return False
    resources = _as_list(statement.get("Resource"))
    if not (_covers(resources, bucket) and _covers(resources, f"{bucket}/*")):
        return False
    condition = statement.get("Condition")
    if not isinstance(condition, dict) or len(condition) != 1:
        return False
    (operator, clauses), = condition.items()
    if operator.lower() != "bool" or not isinstance(clauses, dict) or len(clauses) != 1:
        return False
    (key, value), = clauses.items()
    return key.lower() == "acs:securetransport" and _is_false(value)


def parse_policy(text: str | None) -> dict[str, Any] | None:
    """Parse a bucket policy keeping key order; raises ValueError on a malformed document."""
    if text is None or not text.strip():
        return None
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError("bucket policy is not a JSON object")
    return document


def has_https_only(text: str | None, bucket: str) -> bool:
    document = parse_policy(text)
    if document is None:
        return False
    return any(is_https_only_statement(s, bucket) for s in _as_list(document.get("Statement")))


def merge_https_only(text: str | None, bucket: str) -> str | None:
    """The policy text with the HTTPS-only Deny appended, or None when an equivalent statement is already there.

    Every existing key, statement and value is kept in its original order; only one statement is appended.
    """
    document = parse_policy(text)
    if document is None:
        document = {"Version": POLICY_VERSION, "Statement": []}
    statements = _as_list(document.get("Statement"))
    if any(is_https_only_statement(s, bucket) for s in statements):
        return None
    statements.append(https_only_statement(bucket))
    document["Statement"] = statements
    document.setdefault("Version", POLICY_VERSION)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def remove_added_statements(current: str | None, before: str | None, after: str | None) -> str | None:
    """Undo of a policy merge on a policy others may have changed since: drop only what the merge added.

    The statements in ``after`` that were not in ``before`` are removed from ``current`` (first equal occurrence
    each); every other statement, including ones added after the merge, stays in place and in order. Returns None
    when nothing is left and the bucket had no policy before (the policy is then deleted).
    """
    document = parse_policy(current)
    if document is None:
        return None
    before_statements = _as_list((parse_policy(before) or {}).get("Statement"))
    added = [st for st in _as_list((parse_policy(after) or {}).get("Statement")) if st not in before_statements]
    statements = _as_list(document.get("Statement"))
    for statement in added:
        if statement in statements:
            statements.remove(statement)
    if not statements and before is None:
        return None
    document["Statement"] = statements
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))
