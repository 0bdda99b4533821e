"""Every certificate finding on localcloud: certificates from the factory, bound through seeds, read through the
official SDKs over HTTP(S) (ListCname, CDN and CAS RPC), judged from real TLS handshakes to the TLS plane, by one
run of the lifecycle over every discovered custom domain and CDN domain (plan: nothing is written)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from tlsguard import runs
from tlsguard.adapters.live import LiveProber
from tlsguard.certs.x509facts import facts_from_pem
from tlsguard.model import Outcome, Severity, TargetKind
from tlsguard.ports import BucketRef

from tests.support import wiring_for
from tests.tlsguard.certs._support import (
    cas_cert,
    domain_policy,
    drift,
    found,
    lifecycle_at,
    one,
    run_domains,
    seed_domains,
)

if TYPE_CHECKING:
    from pathlib import Path

    from localcloud.cloud import LocalCloud


def seed_cnames(cloud: LocalCloud, certs: list[dict[str, Any]], bindings: dict[str, str | None]) -> None:
    """Mint ``certs`` into CAS and bind them to custom domains of bucket ``site`` (domain → certificate name)."""
    seed_domains(cloud, certs, cnames=bindings)


def test_each_certificate_kind_gives_its_finding(cloud: LocalCloud, tmp_path: Path) -> None:
    # GIVEN one custom domain per certificate kind of the factory
    cases = {
        "valid": set(),
        "expired": {"cert.expiry/expired"},
        "not_yet_valid": {"cert.expiry/not_yet_valid"},
        "wrong_host": {"cert.hostname/not_covered"},
        "self_signed": {"cert.chain/untrusted"},
        "no_intermediate": {"cert.chain/incomplete"},
        "wrong_order": {"cert.chain/misordered"},
        "sha1": {"cert.signature/weak_signature"},
        "rsa1024": {"cert.key_strength/weak_key"},
        "ecdsa_p256": set(),
        "short_lived": set(),
        "cross_signed": set(),
        "wildcard": set(),
    }
    certs = [{"name": kind, "kind": kind, "domains": [f"{kind.replace('_', '-')}.example.com"]} for kind in cases]
    seed_cnames(cloud, certs, {f"{kind.replace('_', '-')}.example.com": kind for kind in cases})
    # WHEN the domains are checked
    results = run_domains(cloud, domain_policy(tmp_path))
    # THEN each gets exactly its finding (and the healthy ones none)
    assert {k: found(results[f"oss-cname:{k.replace('_', '-')}.example.com"]) for k in cases} == cases
    expired = results["oss-cname:expired.example.com"]
    assert expired.observed["days_left"] < 0
    assert one(expired.findings, "cert.expiry").severity is Severity.CRITICAL
    healthy = [f"oss-cname:{k.replace('_', '-')}.example.com" for k, v in cases.items() if not v]
    assert {results[name].outcome for name in healthy} == {Outcome.COMPLIANT}


def test_renewal_due_and_alert_ladder_step(cloud: LocalCloud, tmp_path: Path) -> None:
    seed_cnames(cloud, [{"name": "soon", "kind": "expiring", "domains": ["soon.example.com"], "days": 12}],
                {"soon.example.com": "soon"})
    result = run_domains(cloud, domain_policy(tmp_path))["oss-cname:soon.example.com"]
    assert found(result) == {"cert.expiry/renewal_due"}
    due = one(result.findings, "cert.expiry")
    assert due.details["ladder"] == "14d" and due.severity is Severity.MEDIUM
    assert due.alert_state == f"renewal_due:{cas_cert(cloud, 'soon').info.fingerprint_sha1[:11]}"
    assert result.observed["days_left"] == pytest.approx(12, abs=0.01)
    assert result.outcome is Outcome.DRIFTED
    assert "no certificate in CAS can be bound" in result.reason  # nothing in CAS renews it


def test_short_lived_certificate_renewal_follows_its_lifetime(cloud: LocalCloud, tmp_path: Path) -> None:
    seed_cnames(cloud, [{"name": "short", "kind": "short_lived", "domains": ["short.example.com"]}],
                {"short.example.com": "short"})
    policy = domain_policy(tmp_path)
    assert found(run_domains(cloud, policy)["oss-cname:short.example.com"]) == set()
    # 31 days on, the 47-day certificate has 15 days left: past lifetime/3 (15.7 days)
    result = run_domains(cloud, policy, later=31 * 86400)["oss-cname:short.example.com"]
    assert "cert.expiry/renewal_due" in found(result)
    assert result.observed["days_left"] == pytest.approx(15, abs=0.01)


def test_wildcard_one_level_too_shallow(cloud: LocalCloud, tmp_path: Path) -> None:
    seed_cnames(cloud, [{"name": "wild", "kind": "wildcard", "domains": ["static.example.com"]}],
                {"img.static.example.com": "wild", "static.example.com": "wild"})
    results = run_domains(cloud, domain_policy(tmp_path))
    assert found(results["oss-cname:img.static.example.com"]) == {"cert.hostname/not_covered"}
    assert found(results["oss-cname:static.example.com"]) == set()  # *.example.com covers it


def test_cross_signed_chain_is_not_reported_as_expiring(cloud: LocalCloud, tmp_path: Path) -> None:
    # GIVEN a chain served with a cross-signed root whose signer (the legacy root) expires in 20 days
    seed_cnames(cloud, [{"name": "cross", "kind": "cross_signed", "domains": ["cross.example.com"]}],
                {"cross.example.com": "cross"})
    policy = domain_policy(tmp_path)
    result = run_domains(cloud, policy)["oss-cname:cross.example.com"]
    assert result.observed["chain"] == "VERIFIED"
    wiring = wiring_for(cloud, policy)
    assert wiring.ports.live is not None
    served = wiring.ports.live.served_chain("cross.example.com").chain_pem
    served_min_days = min((facts_from_pem(pem).not_after - cloud.clock.now()).days for pem in served)
    # THEN the naive earliest expiry would alarm, but the verified path's does not
    assert served_min_days < 30
    assert result.observed["days_left"] > 300
    assert result.findings == ()
    assert result.outcome is Outcome.COMPLIANT


def test_api_and_live_view_disagree_pending_then_finding(cloud: LocalCloud, tmp_path: Path) -> None:
    # GIVEN a rebinding that the edge takes an hour to serve
    seed_cnames(cloud, [{"name": "old", "kind": "valid", "domains": ["www.example.com"]},
                        {"name": "new", "kind": "valid", "domains": ["www.example.com"]}],
                {"www.example.com": "old"})
    cloud.tls.propagation_seconds = 3600
    policy = domain_policy(tmp_path)
    wiring = wiring_for(cloud, policy)
    new, old = cas_cert(cloud, "new"), cas_cert(cloud, "old")
    assert wiring.ports.cname is not None
    wiring.ports.cname.bind_cas_certificate(BucketRef("site", "cn-hangzhou"), "www.example.com",
                                            cloud.cas.oss_cert_id(new), cloud.cas.oss_cert_id(old))
    # WHEN checked right away: pending (a notice, not drift); 40 minutes later (grace 30): a finding
    now = run_domains(cloud, policy)["oss-cname:www.example.com"]
    assert found(now) == {"cert.views_agree/propagating"}
    assert now.outcome is Outcome.PENDING
    later = run_domains(cloud, policy, later=40 * 60)["oss-cname:www.example.com"]
    assert found(later) == {"cert.views_agree/mismatch"}
    assert later.outcome is Outcome.DRIFTED
    mismatch = one(later.findings, "cert.views_agree")
    assert mismatch.details["live_fingerprint"] == old.info.fingerprint_sha1
    assert mismatch.details["api_fingerprint"] == new.info.fingerprint_sha1
    assert later.actions == ()  # alert only: no write can make another service serve the bound certificate


def test_unreachable_endpoint_is_a_finding(cloud: LocalCloud, tmp_path: Path) -> None:
    import socket

    seed_cnames(cloud, [{"name": "ok", "kind": "valid", "domains": ["www.example.com"]}], {"www.example.com": "ok"})
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    policy = domain_policy(tmp_path)
    wiring = wiring_for(cloud, policy)
    wiring.ports.live = LiveProber(connect=("127.0.0.1", port), timeout=1.0)
    result = run_domains(cloud, policy, wiring=wiring)["oss-cname:www.example.com"]
    assert found(result) == {"cert.reachable/unreachable"}
    assert result.observed["days_left"] == pytest.approx(335, abs=1)  # from the API view's dates
    assert result.observed["endpoint"] == f"127.0.0.1:{port}"


def test_policy_scopes_and_excludes_domains(cloud: LocalCloud, tmp_path: Path) -> None:
    seed_cnames(cloud, [{"name": "a", "kind": "valid", "domains": ["a.example.com"]},
                        {"name": "b", "kind": "expired", "domains": ["b.other.org"]}],
                {"a.example.com": "a", "b.other.org": "b"})
    included = domain_policy(tmp_path, '  include: ["*.example.com"]\n', name="include.yaml")
    assert set(run_domains(cloud, included)) == {"oss-cname:a.example.com"}
    excluded = domain_policy(tmp_path, "  exclude: [a.example.com]\n", name="exclude.yaml")
    assert set(run_domains(cloud, excluded)) == {"oss-cname:b.other.org"}


def test_cdn_domains_https_off_and_certificate_hosted_on_oss_while_cdn_fronts(cloud: LocalCloud,
                                                                              tmp_path: Path) -> None:
    # GIVEN a CDN domain with HTTPS off, a healthy CDN domain, and a name bound on OSS that CDN also fronts
    cloud.seed({
        "certificates": [{"name": "cdn-good", "kind": "valid", "domains": ["cdn.example.com"]},
                         {"name": "front-cdn", "kind": "valid", "domains": ["assets.example.com"]},
                         {"name": "front-oss", "kind": "valid", "domains": ["assets.example.com"]}],
        "buckets": [{"name": "tlsguard-state"},
                    {"name": "assets", "cnames": [{"domain": "assets.example.com", "certificate": "front-oss"}]}],
        "cdn_domains": [{"name": "cdn.example.com", "certificate": "cdn-good"},
                        {"name": "plain.example.com", "ssl_protocol": "off"},
                        {"name": "assets.example.com", "certificate": "front-cdn"}],
    })
    policy = domain_policy(tmp_path)
    results = run_domains(cloud, policy, later=3600)  # past the propagation grace of the seeded bindings
    assert found(results["cdn-domain:cdn.example.com"]) == set()
    wiring = wiring_for(cloud, policy)
    assert wiring.ports.cdn is not None
    assert wiring.ports.cdn.certificate_view("cdn.example.com").status == "success"
    assert found(results["cdn-domain:plain.example.com"]) == {"cdn.https_enabled/https_off"}
    # the edge serves CDN's certificate for the name: OSS's binding is not what clients get
    assert found(results["oss-cname:assets.example.com"]) == {"cert.views_agree/mismatch"}
    assert found(results["cdn-domain:assets.example.com"]) == set()
    not_required = run_domains(cloud, domain_policy(tmp_path, "  https_required: false\n", name="p2.yaml"),
                               later=3600)
    assert found(not_required["cdn-domain:plain.example.com"]) == set()
    assert {r.target.kind for r in results.values()} == {TargetKind.CDN_DOMAIN, TargetKind.OSS_CNAME}


def test_discovery_without_a_cdn_adapter_lists_custom_domains_only(cloud: LocalCloud, tmp_path: Path) -> None:
    seed_domains(cloud, [{"name": "c", "kind": "valid", "domains": ["c.example.com", "cdn.example.com"]}],
                 cnames={"c.example.com": "c"}, cdn={"cdn.example.com": "c"})
    policy = domain_policy(tmp_path)
    wiring = wiring_for(cloud, policy)
    assert {r.target.kind for r in run_domains(cloud, policy, wiring=wiring).values()} == {
        TargetKind.OSS_CNAME, TargetKind.CDN_DOMAIN}
    wiring.ports.cdn = None
    ctx = lifecycle_at(cloud, policy, wiring=wiring, apply=False).ctx
    listed = [t.name for t, _ in runs.discover(ctx, kinds=frozenset({TargetKind.OSS_CNAME, TargetKind.CDN_DOMAIN}))]
    assert listed == ["c.example.com"]


def test_https_only_bucket_is_read_over_https(cloud: LocalCloud, tmp_path: Path) -> None:
    # a bucket whose policy denies plain HTTP: ListCname must go through the TLS plane
    deny_http = {"Version": "1", "Statement": [{
        "Effect": "Deny", "Principal": ["*"], "Action": ["oss:*"],
        "Resource": ["acs:oss:*:*:locked", "acs:oss:*:*:locked/*"],
        "Condition": {"Bool": {"acs:SecureTransport": ["false"]}}}]}
    cloud.seed({"certificates": [{"name": "l", "kind": "valid", "domains": ["locked.example.com"]}],
                "buckets": [{"name": "tlsguard-state"},
                            {"name": "locked", "policy": deny_http,
                             "cnames": [{"domain": "locked.example.com", "certificate": "l"}]}]})
    result = run_domains(cloud, domain_policy(tmp_path))["oss-cname:locked.example.com"]
    assert found(result) == set() and result.outcome is Outcome.COMPLIANT


def test_cdn_certificate_status_not_success_is_a_finding_until_a_new_binding(cloud: LocalCloud,
                                                                            tmp_path: Path) -> None:
    import json

    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.request import CommonRequest

    # GIVEN a CDN domain whose certificate deployment reports cname_error (DescribeDomainCertificateInfo Status)
    cloud.seed({"certificates": [{"name": "cdn-cert", "kind": "valid", "domains": ["status.example.com"]}],
                "buckets": [{"name": "tlsguard-state"}],
                "cdn_domains": [{"name": "status.example.com", "certificate": "cdn-cert",
                                 "certificate_status": "cname_error"}]})
    policy = domain_policy(tmp_path)
    # WHEN checked THEN the CDN view's Status is a finding (the live certificate itself is fine), alert only
    result = run_domains(cloud, policy, later=3600)["cdn-domain:status.example.com"]
    assert found(result) == {"cdn.cert_status/status"}
    assert one(result.findings, "cdn.cert_status").details["status"] == "cname_error"
    assert result.actions == ()
    # WHEN the certificate is bound again through the SDK (SetCdnDomainSSLCertificate, CertType cas)
    client = AcsClient(cloud.endpoints["access_key_id"], cloud.endpoints["access_key_secret"], "cn-hangzhou")
    request = CommonRequest(domain=cloud.endpoints["cdn"], version="2018-05-10",
                            action_name="SetCdnDomainSSLCertificate")
    request.set_protocol_type("http")
    request.set_method("POST")
    cert = cas_cert(cloud, "cdn-cert")
    for key, value in {"DomainName": "status.example.com", "SSLProtocol": "on", "CertType": "cas",
                       "CertId": str(cert.id)}.items():
        request.add_query_param(key, value)
    json.loads(client.do_action_with_exception(request))
    # THEN the status is success again and the finding is gone
    wiring = wiring_for(cloud, policy)
    assert wiring.ports.cdn is not None
    assert wiring.ports.cdn.certificate_view("status.example.com").status == "success"
    result = run_domains(cloud, policy, later=3600)["cdn-domain:status.example.com"]
    assert drift(result) == set()
