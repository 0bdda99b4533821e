"""deploy/ram-policy.json grants exactly the RAM actions of the operations the deployed functions need.

Two derivations must agree: the check registry's (each check's facets declare the operations they read and write
with, plus the platform's own: ``needed_operations()``, from which ``deploy/generate.py`` writes the file) and a scan
of the code the functions can reach (``deploy/ram_policy.py``). Then the operations the functions really call on
localcloud must be inside both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlsguard.functions.permissions import (
    MODULE_SERVICES,
    OPERATIONS,
    grants,
    needed_operations,
    policy_actions,
    policy_document,
)
from tlsguard.policy.model import RawHttpsConfig
from tlsguard.ports import BucketRef

from deploy import ram_policy
from tests.functions.conftest import cdn_domain, outsider, settle

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud
    from localcloud.sdeploy import Deployment

POLICY_FILE = Path(__file__).resolve().parents[2] / "deploy" / "ram-policy.json"


def committed() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(POLICY_FILE.read_text())
    return document


def test_every_operation_any_adapter_calls_has_a_registered_ram_action() -> None:
    called = set().union(*(ram_policy.operations_in(module) for module in MODULE_SERVICES))
    assert {("oss", "PutBucketHttpsConfig"), ("cdn", "BatchSetCdnDomainConfig"), ("fc", "InvokeFunction")} <= called
    assert ram_policy.unregistered(called) == set()
    assert ram_policy.unregistered(needed_operations()) == set()


def test_the_committed_policy_is_generated_from_the_check_registry() -> None:
    needed = needed_operations()
    assert committed() == policy_document(needed)
    # Bucket checks, the platform (discovery, state bucket, fan-out), CDN posture and certificate rebinding.
    assert ("oss", "PutBucketPolicy") in needed and ("fc", "InvokeFunction") in needed
    assert {op for service, op in needed if service == "cdn"} == {
        "DescribeCdnDomainConfigs", "BatchSetCdnDomainConfig", "DeleteSpecificConfig", "DescribeUserDomains",
        "DescribeDomainCertificateInfo", "SetCdnDomainSSLCertificate"}
    assert {op for service, op in needed if service == "cas"} == {"ListUserCertificateOrder",
                                                                  "GetUserCertificateDetail"}
    assert ("oss", "PutCname") in needed and ("oss", "DeleteCname") not in needed
    assert ("oss", "DeleteObject") in needed  # open journal intents and alert markers are deleted when closed


def test_the_registry_and_the_code_scan_agree_both_ways() -> None:
    """Every operation the functions' reachable code calls is declared by a check or the platform, and every
    declared operation is called by reachable code (a facet that declares an operation it never uses fails)."""
    scanned = ram_policy.reachable_operations()
    needed = needed_operations()
    assert not scanned - needed, f"the code calls operations no check declares: {sorted(scanned - needed)}"
    assert not needed - scanned, f"checks declare operations no reachable code calls: {sorted(needed - scanned)}"
    expected = grants(scanned)
    granted = policy_actions(committed())
    missing, extra = expected - granted, granted - expected
    assert not missing, f"deploy/ram-policy.json misses {sorted(missing)} (run python deploy/generate.py)"
    assert not extra, f"deploy/ram-policy.json grants {sorted(extra)}, which no reachable code calls"
    assert ram_policy.main(["--check"]) == 0


def test_the_comparison_catches_a_missing_and_an_extra_grant() -> None:
    needed = needed_operations()
    expected = grants(needed)
    fewer = policy_document(needed - {("oss", "PutBucketHttpsConfig")})
    more = policy_document(needed)
    more["Statement"].append({"Effect": "Allow", "Action": ["oss:DeleteBucket"], "Resource": ["*"]})
    assert expected - policy_actions(fewer) == {("oss:PutBucketHttpsConfig", "acs:oss:*:*:*")}
    assert policy_actions(more) - expected == {("oss:DeleteBucket", "*")}
    assert all(s["Effect"] == "Allow" and "*" not in s["Action"] for s in committed()["Statement"])
    # Every operation the registry knows maps to exactly one RAM action (plus what the service checks for it).
    assert all(p.action.count(":") == 1 for p in OPERATIONS.values())


def test_what_the_functions_really_call_on_localcloud_is_inside_the_needed_set(
        deployed: Deployment, cloud: LocalCloud) -> None:
    """Run every function path (an event, the fan-out sweep and its checks over every kind, the daily certificate
    run with CAS renewals, a CDN event) and read localcloud's per-operation call counts."""
    cloud.seed({
        "certificates": [{"name": "shop-old", "kind": "expiring", "domains": ["shop.ram.example"], "days": 10},
                         {"name": "shop-new", "kind": "valid", "domains": ["shop.ram.example"]},
                         {"name": "cdn-old", "kind": "expiring", "domains": ["ram.cdn.example"], "days": 10},
                         {"name": "cdn-new", "kind": "valid", "domains": ["ram.cdn.example"]}],
        "buckets": [{"name": "ram-site", "region": "cn-hangzhou",
                     "cnames": [{"domain": "shop.ram.example", "certificate": "shop-old"}]}],
        "cdn_domains": [cdn_domain("ram.cdn.example", "cdn-old", https_force={"enable": "off"})],
    })
    cloud.stats.reset()
    outsider(cloud).put_https_config(BucketRef("app-prod", "cn-hangzhou"),
                                     RawHttpsConfig(tls_enabled=True, tls_versions=("TLSv1.0", "TLSv1.2")))
    settle(cloud)
    cloud.fc.invoke("tlsguard-sweep", json.dumps({"payload": '{"threshold": 1, "batch_size": 1}'}).encode())
    settle(cloud, timeout=60)
    cloud.fc.invoke("tlsguard-cert-renewal", b"{}")
    settle(cloud)
    seen = {tuple(key.split(":", 1)) for key in cloud.stats.snapshot()}
    cloud_calls = {(s, op) for s, op in seen if s in ("oss", "fc", "cdn", "cas")}
    assert ("cdn", "BatchSetCdnDomainConfig") in cloud_calls and ("cdn", "SetCdnDomainSSLCertificate") in cloud_calls
    assert ("fc", "InvokeFunction") in cloud_calls and ("oss", "PutBucketHttpsConfig") in cloud_calls
    assert ("oss", "PutCname") in cloud_calls and ("cas", "ListUserCertificateOrder") in cloud_calls
    # The outsider's own calls (PutBucketHttpsConfig, GetBucketHttpsConfig) are in the set anyway.
    assert cloud_calls <= needed_operations(), sorted(cloud_calls - needed_operations())
    assert cloud_calls <= ram_policy.reachable_operations()
