"""cert_renewal (daily timer) on localcloud: every custom domain (after a full ListCname discovery) and CDN domain
through the shared lifecycle, run by the deployed function with the role's keys: certificates due for renewal are
rebound from CAS (verified by handshake and journaled), one nothing in CAS can fix is alerted in the digest."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tlsguard.ports import BucketRef

from tests.functions.conftest import AlertSink, cdn_domain, finding_checks, invocations, outcomes, result_of, settle
from tests.support import pem_sha1, served_sha1

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud
    from localcloud.sdeploy import Deployment


def test_daily_timer_renews_an_expiring_custom_domain_from_cas(deployed: Deployment, cloud: LocalCloud,
                                                               alert_sink: AlertSink) -> None:
    from tlsguard.adapters.oss_cname import AliyunOssCname

    from tests.functions.conftest import outsider

    cloud.seed({
        "certificates": [{"name": "shop-2026", "kind": "expiring", "domains": ["shop.example.com"], "days": 10},
                         {"name": "shop-2027", "kind": "valid", "domains": ["shop.example.com"]},
                         {"name": "cdn-2026", "kind": "expiring", "domains": ["img.cdn.example"], "days": 5},
                         {"name": "cdn-2027", "kind": "valid", "domains": ["img.cdn.example"]},
                         {"name": "legacy-2026", "kind": "expiring", "domains": ["legacy.example.com"], "days": 3}],
        "buckets": [{"name": "shop-site", "region": "cn-hangzhou",
                     "cnames": [{"domain": "shop.example.com", "certificate": "shop-2026"},
                                {"domain": "legacy.example.com", "certificate": "legacy-2026"}]}],
        "cdn_domains": [cdn_domain("img.cdn.example", "cdn-2026")],
    })
    fired = cloud.fc.fire_timer("tlsguard-cert-renewal", "daily")
    settle(cloud, timeout=60)
    [run] = invocations(cloud, "tlsguard-cert-renewal")
    assert run["id"] == fired["id"] and run["source"] == "timer:daily"
    assert json.loads(run["payload"])["triggerName"] == "daily"
    body = result_of(run)
    assert body["function"] == "cert_renewal" and body["errors"] == []
    # Domains only: buckets are the sweep's.
    assert body["summary"]["by_kind"] == {"oss-bucket": 0, "oss-cname": 2, "cdn-domain": 1}
    assert outcomes(body["targets"]) == {"shop.example.com": "remediated", "img.cdn.example": "remediated",
                                         "legacy.example.com": "drifted"}
    items = {t["target"]["name"]: t for t in body["targets"]}
    shop, cdn, legacy = items["shop.example.com"], items["img.cdn.example"], items["legacy.example.com"]
    renewed = cloud.cas.find_by_name(cloud.default_account_id, "shop-2027")
    assert renewed is not None
    assert finding_checks(shop) == {"cert.expiry"} and shop["journal_id"]
    [action] = shop["actions"]
    assert action["call"] == "PutCname" and action["params"]["CertId"] == cloud.cas.oss_cert_id(renewed)
    assert shop["live_verification"] == "pending"
    # The binding really changed (read back through the CNAME adapter), and PutCname came from the role.
    bindings = {b.domain: b.api.cert_id for b in
                AliyunOssCname(outsider(cloud)).list_cnames(BucketRef("shop-site", "cn-hangzhou"))}
    assert bindings["shop.example.com"] == cloud.cas.oss_cert_id(renewed)
    put_cname = [e for e in cloud.trail.events() if e["data"]["eventName"] == "PutCname"]
    assert put_cname and put_cname[0]["data"]["userIdentity"]["type"] == "assumed-role"
    # The edges really serve the renewed certificates (handshakes with SNI).
    assert served_sha1(cloud.endpoints, "shop.example.com") == pem_sha1(renewed.chain_pem[0])
    cdn_renewal = cloud.cas.find_by_name(cloud.default_account_id, "cdn-2027")
    assert cdn_renewal is not None
    assert [a["call"] for a in cdn["actions"]] == ["SetCdnDomainSSLCertificate"]
    assert served_sha1(cloud.endpoints, "img.cdn.example") == pem_sha1(cdn_renewal.chain_pem[0])
    # Nothing in CAS covers legacy.example.com: it is left alone and a person is told what to do.
    assert legacy["actions"] == [] and legacy["error_code"] == "Unfixable" and "upload" in legacy["reason"]
    [digest] = alert_sink.wait_for(1)
    assert digest["kind"] == "digest" and digest["run"]["command"] == "cert_renewal"
    assert {(r["target"]["name"], r["journal_id"]) for r in digest["remediated"]} == {
        ("shop.example.com", shop["journal_id"]), ("img.cdn.example", cdn["journal_id"])}
    [attention] = digest["needs_attention"]
    assert attention["target"]["name"] == "legacy.example.com" and attention["check"] == "cert.expiry"
    assert attention["state"].startswith("renewal_due:") and attention["severity"] == "HIGH"


def test_the_daily_run_rediscovers_custom_domains_the_hourly_inventory_does_not_know(
        deployed: Deployment, cloud: LocalCloud) -> None:
    timer = json.dumps({"triggerTime": "2026-11-23T03:00:00Z", "triggerName": "hourly", "payload": ""}).encode()
    first = result_of(cloud.fc.invoke("tlsguard-sweep", timer))  # records the custom-domain inventory (none yet)
    assert first["summary"]["by_kind"]["oss-cname"] == 0
    cloud.seed({"certificates": [{"name": "late-2026", "kind": "expiring", "domains": ["late.example.com"],
                                  "days": 10},
                                 {"name": "late-2027", "kind": "valid", "domains": ["late.example.com"]}],
                "buckets": [{"name": "late-site", "region": "cn-hangzhou",
                             "cnames": [{"domain": "late.example.com", "certificate": "late-2026"}]}]})
    hourly = result_of(cloud.fc.invoke("tlsguard-sweep", timer))
    assert hourly["summary"]["by_kind"]["oss-cname"] == 0  # the inventory is younger than discovery_hours
    daily = result_of(cloud.fc.invoke("tlsguard-cert-renewal", timer))
    assert daily["summary"]["by_kind"]["oss-cname"] == 1
    assert outcomes(daily["targets"]) == {"late.example.com": "remediated"}
    # The full pass refreshed the inventory: the next hourly sweep checks the domain too.
    again = result_of(cloud.fc.invoke("tlsguard-sweep", timer))
    assert again["summary"]["by_kind"]["oss-cname"] == 1
