"""The RAM action (and resource) of every cloud operation tlsguard can call, and the operations it needs.

``deploy/ram-policy.json`` is generated from the check registry (each check's facets declare the operations they
read and write with) plus the platform's own operations (discovery, the state bucket, fan-out):
``python deploy/generate.py``. tests/functions/test_ram_policy.py cross-checks it against a scan of the code the
functions can reach, so a check that declares an operation the code never calls (or the reverse) fails a test.

Action spellings: OSS https://www.alibabacloud.com/help/en/oss/user-guide/ram-policy-overview (GetBucketTags is
authorised by ``oss:GetBucketTagging``, ListObjectsV2 by ``oss:ListObjects``), CDN and CAS per the API pages' RAM
tables, FC 3.0 https://alibabacloud.com/help/en/functioncompute/fc-3-0/developer-reference/api-fc-2023-03-30-ram.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The state bucket objects tlsguard writes (event claims, journal); matches the example policy's state section.
STATE_RESOURCE = "acs:oss:*:*:tlsguard-state/tlsguard/*"
STATE_BUCKET_RESOURCE = "acs:oss:*:*:tlsguard-state"
#: Every bucket of the account (the sweep covers the whole fleet); narrow it to named buckets if yours is smaller.
ALL_BUCKETS = "acs:oss:*:*:*"
CHECK_FUNCTION_RESOURCE = "acs:fc:*:*:functions/tlsguard-check"
#: The function set (``tlsguard doctor`` reads their settings; FC's resource form is UNCONFIRMED, see §10).
FUNCTIONS_RESOURCE = "acs:fc:*:*:functions/tlsguard-*"
#: The default bus's rules (https://www.alibabacloud.com/help/ja/eventbridge/developer-reference/
#: api-eventbridge-2020-04-01-listrules: acs:eventbridge:{regionId}:{accountId}:eventbus/{EventBusName}/rule/*).
DEFAULT_BUS_RULES = "acs:eventbridge:*:*:eventbus/default/rule/*"


@dataclass(frozen=True)
class Permission:
    """The RAM action (and resource) an operation needs, plus actions the service checks on the caller's behalf."""

    action: str
    resource: str
    also: tuple[tuple[str, str], ...] = ()


#: (service, operation) → the RAM action and resource that authorise it.
OPERATIONS: dict[tuple[str, str], Permission] = {
    ("oss", "ListBuckets"): Permission("oss:ListBuckets", ALL_BUCKETS),
    ("oss", "GetBucketTags"): Permission("oss:GetBucketTagging", ALL_BUCKETS),
    ("oss", "GetBucketHttpsConfig"): Permission("oss:GetBucketHttpsConfig", ALL_BUCKETS),
    ("oss", "PutBucketHttpsConfig"): Permission("oss:PutBucketHttpsConfig", ALL_BUCKETS),
    ("oss", "GetBucketPolicy"): Permission("oss:GetBucketPolicy", ALL_BUCKETS),
    ("oss", "PutBucketPolicy"): Permission("oss:PutBucketPolicy", ALL_BUCKETS),
    ("oss", "DeleteBucketPolicy"): Permission("oss:DeleteBucketPolicy", ALL_BUCKETS),
    ("oss", "GetBucketEncryption"): Permission("oss:GetBucketEncryption", ALL_BUCKETS),
    ("oss", "PutBucketEncryption"): Permission("oss:PutBucketEncryption", ALL_BUCKETS),
    ("oss", "PutObject"): Permission("oss:PutObject", STATE_RESOURCE),
    ("oss", "GetObject"): Permission("oss:GetObject", STATE_RESOURCE),
    ("oss", "ListObjectsV2"): Permission("oss:ListObjects", STATE_BUCKET_RESOURCE),
    ("oss", "DeleteObject"): Permission("oss:DeleteObject", STATE_RESOURCE),
    ("oss", "ListCname"): Permission("oss:ListCname", ALL_BUCKETS),
    # Binding a CAS certificate: OSS reads it from CAS as the caller (alibaba-api-facts.md §10).
    ("oss", "PutCname"): Permission("oss:PutCname", ALL_BUCKETS, also=(
        ("yundun-cert:DescribeSSLCertificatePrivateKey", "*"),
        ("yundun-cert:DescribeSSLCertificatePublicKeyDetail", "*"),
        ("yundun-cert:CreateSSLCertificate", "*"))),
    ("cdn", "DescribeUserDomains"): Permission("cdn:DescribeUserDomains", "*"),
    ("cdn", "DescribeDomainCertificateInfo"): Permission("cdn:DescribeDomainCertificateInfo", "*"),
    ("cdn", "DescribeCdnDomainConfigs"): Permission("cdn:DescribeCdnDomainConfigs", "*"),
    ("cdn", "SetCdnDomainSSLCertificate"): Permission("cdn:SetCdnDomainSSLCertificate", "*"),
    ("cdn", "BatchSetCdnDomainConfig"): Permission("cdn:BatchSetCdnDomainConfig", "*"),
    ("cdn", "DeleteSpecificConfig"): Permission("cdn:DeleteSpecificConfig", "*"),
    ("cas", "ListUserCertificateOrder"): Permission("yundun-cert:ListUserCertificateOrder", "*"),
    ("cas", "GetUserCertificateDetail"): Permission("yundun-cert:GetUserCertificateDetail", "*"),
    ("fc", "InvokeFunction"): Permission("fc:InvokeFunction", CHECK_FUNCTION_RESOURCE),
    # tlsguard doctor only (deploy/ram-policy-doctor.json), never the functions:
    ("oss", "GetBucketInfo"): Permission("oss:GetBucketInfo", STATE_BUCKET_RESOURCE),
    ("fc", "GetFunction"): Permission("fc:GetFunction", FUNCTIONS_RESOURCE),
    # fc:ListTriggers is authorised on all resources only (the ListTriggers page's RAM table).
    ("fc", "ListTriggers"): Permission("fc:ListTriggers", "*"),
    # https://alibabacloud.com/help/en/actiontrail/developer-reference/api-actiontrail-2020-07-06-lookupevents
    ("actiontrail", "LookupEvents"): Permission("actiontrail:LookupEvents", "*"),
    ("eventbridge", "ListRules"): Permission("eventbridge:ListRules", DEFAULT_BUS_RULES),
    ("eventbridge", "ListTargets"): Permission("eventbridge:ListTargets", DEFAULT_BUS_RULES),
}

#: Which service each adapter module calls (how the scan attributes an operation name to a service).
MODULE_SERVICES: dict[str, str] = {
    "tlsguard.adapters.oss": "oss",
    "tlsguard.adapters.oss_cname": "oss",
    "tlsguard.adapters.cdn": "cdn",
    "tlsguard.adapters.cas": "cas",
    "tlsguard.functions.runtime": "fc",
}


#: What the platform itself calls, whatever the checks: finding targets, the state bucket, the sweep's fan-out.
PLATFORM_OPERATIONS: frozenset[tuple[str, str]] = frozenset({
    ("oss", "ListBuckets"), ("oss", "GetBucketTags"),  # discovery; tags select the policy's rules
    ("oss", "ListCname"),  # custom-domain discovery
    ("cdn", "DescribeUserDomains"),  # CDN domain discovery
    ("oss", "PutObject"), ("oss", "GetObject"), ("oss", "ListObjectsV2"), ("oss", "DeleteObject"),  # state bucket
    ("fc", "InvokeFunction"),  # the sweep's fan-out to tlsguard-check
})


def needed_operations() -> set[tuple[str, str]]:
    """Every operation the deployed functions need: each check's reads and fixes, plus the platform's own."""
    from tlsguard.checks import REGISTRY

    needed = set(PLATFORM_OPERATIONS)
    for check in REGISTRY.checks.values():
        for kind in check.kinds:
            needed |= check.read_operations(kind) | check.write_operations(kind)
    return needed


def doctor_operations() -> set[tuple[str, str]]:
    """What ``tlsguard doctor`` calls: its own reads plus a harmless call per needed action that has one."""
    from tlsguard.doctor import OWN_OPERATIONS, probed_operations

    return set(OWN_OPERATIONS) | probed_operations(needed_operations())


def grants(operations: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """(action, resource) pairs ``operations`` need."""
    needed: set[tuple[str, str]] = set()
    for key in operations:
        permission = OPERATIONS[key]
        needed.add((permission.action, permission.resource))
        needed.update(permission.also)
    return needed


def policy_document(operations: set[tuple[str, str]]) -> dict[str, Any]:
    """A RAM policy granting exactly the actions of ``operations``, one statement per resource."""
    by_resource: dict[str, set[str]] = {}
    for action, resource in sorted(grants(operations)):
        by_resource.setdefault(resource, set()).add(action)
    statements = [{"Effect": "Allow", "Action": sorted(actions), "Resource": [resource]}
                  for resource, actions in sorted(by_resource.items())]
    return {"Version": "1", "Statement": statements}


def policy_actions(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(action, resource) pairs a policy document grants."""
    granted = set()
    for statement in document.get("Statement") or []:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action")
        resources = statement.get("Resource")
        for action in [actions] if isinstance(actions, str) else actions or []:
            for resource in [resources] if isinstance(resources, str) else resources or []:
                granted.add((str(action), str(resource)))
    return granted
