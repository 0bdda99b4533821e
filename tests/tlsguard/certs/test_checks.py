"""The cert.* checks on certificates built in the test (pure: no localcloud, no network).

Each case builds the facets a run reads for one domain (the API's view of the bound certificate and the chain a
handshake is served) and judges them with :func:`tlsguard.checks.evaluate`, exactly as the lifecycle does.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import hashes
from tlsguard.certs.chain import TrustStore
from tlsguard.certs.checks import CertHealth, hostname_covered, ladder_step, renewal_due_at
from tlsguard.certs.model import ApiView, CertPolicy, ChainStatus, LiveView
from tlsguard.checks import cert as cert_checks
from tlsguard.model import Severity

from tests.tlsguard.certs._support import (
    CDN,
    DAY,
    NOW,
    WWW,
    Hierarchy,
    Pki,
    actual_for,
    cname,
    desired_for,
    drift,
    found,
    judge,
    one,
)

pytestmark = pytest.mark.unit

POLICY = CertPolicy()


def health_of(chain: tuple[str, ...], trust: TrustStore, *, now: dt.datetime = NOW) -> CertHealth:
    """The certificate health every cert.* check of one domain shares (computed once per target)."""
    return cert_checks.health(desired_for(WWW), actual_for(WWW, chain, trust), now)


# -- hostname ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("host", "names", "covered"), [
    ("www.example.com", ("www.example.com",), True),
    ("WWW.Example.com.", ("www.example.com",), True),
    ("a.example.com", ("*.example.com",), True),
    ("example.com", ("*.example.com",), False),
    ("a.b.example.com", ("*.example.com",), False),  # one level too shallow
    ("a.com", ("*.com",), False),
    ("wa.example.com", ("w*.example.com",), False),
    ("other.org", ("www.example.com", "*.example.com"), False),
])
def test_hostname_rule_is_single_level_wildcard(host: str, names: tuple[str, ...], covered: bool) -> None:
    assert hostname_covered(host, names) is covered


def test_common_name_only_counts_without_any_san() -> None:
    assert hostname_covered("www.example.com", (), "www.example.com")
    assert not hostname_covered("www.example.com", ("other.example.com",), "www.example.com")


# -- renewal window and ladder -------------------------------------------------------------------------------
def test_renewal_window_is_lifetime_aware() -> None:
    start = NOW
    assert renewal_due_at(start, start + 398 * DAY, POLICY) == start + 368 * DAY  # 30 days before
    assert renewal_due_at(start, start + 47 * DAY, POLICY) == start + 47 * DAY - 47 * DAY / 3  # ~15.7 days
    custom = CertPolicy(renew_before=dt.timedelta(days=10))
    assert renewal_due_at(start, start + 398 * DAY, custom) == start + 388 * DAY


def test_ladder_alerts_each_step_once() -> None:
    first = ladder_step(29.5, frozenset())
    assert first.step == 30 and first.alerted == {30}
    assert ladder_step(20, first.alerted).step is None
    second = ladder_step(13.9, first.alerted)
    assert second.step == 14 and second.alerted == {30, 14}
    # first seen with 5 days left: one alert at the tightest due step, every due step marked
    late = ladder_step(5, frozenset())
    assert late.step == 7 and late.alerted == {30, 14, 7}
    assert ladder_step(0.5, late.alerted).step == 1
    assert ladder_step(-3, {30, 14, 7, 1}).step is None
    assert ladder_step(45, frozenset()).step is None
    assert ladder_step(10, frozenset(), steps=(60, 10)).step == 10


def test_ladder_label_names_the_tightest_step_reached() -> None:
    steps = POLICY.alert_steps
    assert [cert_checks.ladder_label(days, steps) for days in (45, 29.5, 12, 5, 0.5, -3)] == \
        ["", "30d", "14d", "7d", "1d", "1d"]


# -- one domain, end to end ----------------------------------------------------------------------------------
def test_valid_chain_has_no_findings(pki: Pki, hierarchy: Hierarchy) -> None:
    leaf = pki.leaf(hierarchy.intermediate, "www.example.com")
    chain = (leaf.pem, hierarchy.intermediate.pem)
    assert judge(chain, hierarchy.trust) == []
    health = health_of(chain, hierarchy.trust)
    assert health.chain is not None and health.chain.status is ChainStatus.VERIFIED
    assert [c.subject_cn for c in health.chain.verified_path] == ["www.example.com", "Test Intermediate CA",
                                                                  "Test Root CA"]
    assert health.days_left == pytest.approx(335, abs=0.01)


def test_custom_domain_without_a_certificate_is_a_present_finding(pki: Pki, hierarchy: Hierarchy) -> None:
    findings = judge((), hierarchy.trust, api=ApiView(https_enabled=False),
                     live=LiveView(endpoint="test", error="unrecognized_name"))
    assert drift(findings) == {"cert.present/missing", "cert.reachable/unreachable"}
    assert one(findings, "cert.present").severity is Severity.HIGH
    # a CDN domain has no cert.present: HTTPS off is cdn.https_enabled's finding
    cdn = judge((), hierarchy.trust, target=CDN, api=ApiView(https_enabled=False))
    assert found(cdn) == {"cdn.https_enabled/https_off"}


def test_expired_is_critical_and_not_also_untrusted(pki: Pki, hierarchy: Hierarchy) -> None:
    leaf = pki.leaf(hierarchy.intermediate, "www.example.com", not_before=NOW - 400 * DAY, not_after=NOW - 2 * DAY)
    chain = (leaf.pem, hierarchy.intermediate.pem)
    findings = judge(chain, hierarchy.trust)
    assert found(findings) == {"cert.expiry/expired"}  # not also cert.chain, nor "renewal due"
    assert one(findings, "cert.expiry").severity is Severity.CRITICAL
    days_left = health_of(chain, hierarchy.trust).days_left
    assert days_left is not None and days_left < 0


def test_not_yet_valid(pki: Pki, hierarchy: Hierarchy) -> None:
    leaf = pki.leaf(hierarchy.intermediate, "www.example.com", not_before=NOW + 3 * DAY, not_after=NOW + 90 * DAY)
    findings = judge((leaf.pem, hierarchy.intermediate.pem), hierarchy.trust)
    assert found(findings) == {"cert.expiry/not_yet_valid"}
    assert one(findings, "cert.expiry").severity is Severity.CRITICAL


def test_renewal_due_carries_its_ladder_step_per_certificate(pki: Pki, hierarchy: Hierarchy) -> None:
    leaf = pki.leaf(hierarchy.intermediate, "www.example.com", not_before=NOW - 378 * DAY, not_after=NOW + 20 * DAY)
    findings = judge((leaf.pem, hierarchy.intermediate.pem), hierarchy.trust)
    assert found(findings) == {"cert.expiry/renewal_due"}
    due = one(findings, "cert.expiry")
    assert due.severity is Severity.MEDIUM
    assert due.details["ladder"] == "30d" and due.details["days_left"] == "20.00"
    # the alert state names the certificate: a renewed certificate is a new problem with a fresh ladder
    assert due.alert_state == f"renewal_due:{leaf.fingerprint[:11]}"
    assert due.details["fingerprint"] == leaf.fingerprint
    # closer to expiry the severity rises with the step reached
    week = judge((leaf.pem, hierarchy.intermediate.pem), hierarchy.trust, now=NOW + 14 * DAY)
    assert (one(week, "cert.expiry").severity, one(week, "cert.expiry").details["ladder"]) == (Severity.HIGH, "7d")
    last = judge((leaf.pem, hierarchy.intermediate.pem), hierarchy.trust, now=NOW + 19.5 * DAY)
    assert (one(last, "cert.expiry").severity, one(last, "cert.expiry").details["ladder"]) == (Severity.CRITICAL,
                                                                                               "1d")


def test_short_lived_certificate_is_not_due_at_twenty_days(pki: Pki, hierarchy: Hierarchy) -> None:
    leaf = pki.leaf(hierarchy.intermediate, "www.example.com", not_before=NOW - 27 * DAY, not_after=NOW + 20 * DAY)
    chain = (leaf.pem, hierarchy.intermediate.pem)
    findings = judge(chain, hierarchy.trust)
    assert drift(findings) == set()  # not due: only a heads-up on the ladder (a notice, never drift)
    notice = one(findings, "cert.expiry")
    assert notice.severity is Severity.INFO and notice.alert_state.startswith("expiring:")
    assert notice.details["ladder"] == "30d"
    later = judge(chain, hierarchy.trust, now=NOW + 5 * DAY)
    assert drift(later) == {"cert.expiry/renewal_due"}


def test_hostname_not_covered_by_too_shallow_wildcard(pki: Pki, hierarchy: Hierarchy) -> None:
    leaf = pki.leaf(hierarchy.intermediate, "*.example.com")
    chain = (leaf.pem, hierarchy.intermediate.pem)
    deep = judge(chain, hierarchy.trust, target=cname("img.static.example.com"))
    assert found(deep) == {"cert.hostname/not_covered"}
    assert one(deep, "cert.hostname").details["names"] == "*.example.com"
    assert judge(chain, hierarchy.trust, target=cname("static.example.com")) == []


def test_leaf_without_intermediate_is_incomplete(pki: Pki, hierarchy: Hierarchy) -> None:
    leaf = pki.leaf(hierarchy.intermediate, "www.example.com")
    findings = judge((leaf.pem,), hierarchy.trust)
    assert found(findings) == {"cert.chain/incomplete"}
    assert "Test Intermediate CA" in one(findings, "cert.chain").details["missing_issuer"]


def test_misordered_chain_is_reported_from_served_order(pki: Pki, hierarchy: Hierarchy) -> None:
    second = pki.intermediate(hierarchy.intermediate, "Second Intermediate CA")
    leaf = pki.leaf(second, "www.example.com")
    assert judge((leaf.pem, second.pem, hierarchy.intermediate.pem), hierarchy.trust) == []
    swapped = judge((leaf.pem, hierarchy.intermediate.pem, second.pem), hierarchy.trust)
    assert found(swapped) == {"cert.chain/misordered"}
    assert one(swapped, "cert.chain").severity is Severity.MEDIUM
    direct_leaf = pki.leaf(hierarchy.intermediate, "www.example.com")
    leaf_last = judge((hierarchy.intermediate.pem, direct_leaf.pem), hierarchy.trust)
    assert found(leaf_last) == {"cert.chain/misordered"}


def test_self_signed_is_untrusted(pki: Pki, hierarchy: Hierarchy) -> None:
    lonely = pki.root("www.example.com self-signed")
    leaf = pki.leaf(lonely, "www.example.com")
    findings = judge((leaf.pem, lonely.pem), hierarchy.trust)
    assert found(findings) == {"cert.chain/untrusted"}
    assert "self-signed" in findings[0].message


def test_weak_rsa_key_and_sha1_signature(pki: Pki, hierarchy: Hierarchy) -> None:
    weak = pki.leaf(hierarchy.intermediate, "www.example.com", bits=1024)
    findings = judge((weak.pem, hierarchy.intermediate.pem), hierarchy.trust)
    assert "cert.key_strength/weak_key" in found(findings)
    assert one(findings, "cert.key_strength").details["key"] == "RSA-1024"
    sha1 = pki.leaf(hierarchy.intermediate, "www.example.com", hash_algorithm=hashes.SHA1())
    findings = judge((sha1.pem, hierarchy.intermediate.pem), hierarchy.trust)
    assert found(findings) == {"cert.signature/weak_signature"}  # the verifier's refusal is not a second finding
    assert findings[0].details == {"alert_state": "weak_signature", "certificate": "www.example.com", "hash": "sha1"}


def test_ecdsa_p256_is_not_weak(pki: Pki, hierarchy: Hierarchy) -> None:
    leaf = pki.leaf(hierarchy.intermediate, "www.example.com", key_kind="ec", bits=256)
    chain = (leaf.pem, hierarchy.intermediate.pem)
    assert judge(chain, hierarchy.trust) == []
    health = health_of(chain, hierarchy.trust)
    assert health.leaf is not None and (health.leaf.key_algorithm, health.leaf.key_bits) == ("EC", 256)


def test_view_mismatch_pending_then_finding(pki: Pki, hierarchy: Hierarchy) -> None:
    bound = pki.leaf(hierarchy.intermediate, "www.example.com")
    served = pki.leaf(hierarchy.intermediate, "www.example.com", not_after=NOW + 100 * DAY)
    api = ApiView(cert_id="7-cn-hangzhou", fingerprint_sha1=bound.fingerprint.replace(":", "").lower(),
                  changed_at=NOW - dt.timedelta(minutes=5))
    chain = (served.pem, hierarchy.intermediate.pem)
    pending = judge(chain, hierarchy.trust, api=api)
    assert found(pending) == {"cert.views_agree/propagating"}
    assert one(pending, "cert.views_agree").severity is Severity.INFO  # inside the grace window: not drift
    later = judge(chain, hierarchy.trust, api=api, now=NOW + DAY)
    assert found(later) == {"cert.views_agree/mismatch"}
    mismatch = one(later, "cert.views_agree")
    assert mismatch.severity is Severity.HIGH
    assert (mismatch.details["api_fingerprint"], mismatch.details["live_fingerprint"]) == (bound.fingerprint,
                                                                                           served.fingerprint)
    assert judge((bound.pem, hierarchy.intermediate.pem), hierarchy.trust, api=api, now=NOW + DAY) == []


def test_cdn_status_and_https_off(pki: Pki, hierarchy: Hierarchy) -> None:
    leaf = pki.leaf(hierarchy.intermediate, "cdn.example.com")
    checking = judge((leaf.pem, hierarchy.intermediate.pem), hierarchy.trust, target=CDN,
                     api=ApiView(cert_id="14000001", status="checking"))
    assert found(checking) == {"cdn.cert_status/status"}
    off = judge((), hierarchy.trust, target=CDN, api=ApiView(https_enabled=False))
    assert found(off) == {"cdn.https_enabled/https_off"}
    assert one(off, "cdn.https_enabled").severity is Severity.CRITICAL
    not_required = judge((), hierarchy.trust, target=CDN, api=ApiView(https_enabled=False),
                         policy=CertPolicy(https_required=False))
    assert not_required == []


def test_unreachable_live_view_falls_back_to_api_pem(pki: Pki, hierarchy: Hierarchy) -> None:
    leaf = pki.leaf(hierarchy.intermediate, "www.example.com", not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    findings = judge((), hierarchy.trust, api=ApiView(cert_id="7-cn-hangzhou", pem=leaf.pem),
                     live=LiveView(endpoint="127.0.0.1:1", error="refused"))
    assert {"cert.reachable/unreachable", "cert.expiry/expired"} <= found(findings)
    assert one(findings, "cert.reachable").details["error"] == "refused"


def test_intermediate_expiring_first_sets_the_expiry(pki: Pki, hierarchy: Hierarchy) -> None:
    short = pki.intermediate(hierarchy.root, "Short Intermediate", not_after=NOW + 10 * DAY)
    leaf = pki.leaf(short, "www.example.com")
    chain = (leaf.pem, short.pem)
    assert health_of(chain, hierarchy.trust).days_left == pytest.approx(10, abs=0.01)
    expiry = one(judge(chain, hierarchy.trust), "cert.expiry")
    assert expiry.details["ladder"] == "14d"
    assert expiry.details["not_after"] == (NOW + 10 * DAY).isoformat()


def test_expiring_cross_signed_root_on_an_alternative_path_is_no_false_alarm(pki: Pki) -> None:
    # GIVEN a new root trusted by clients, and its cross-signature by an old root that expires in 5 days,
    # served at the end of the chain (the "compatibility" chain CAs hand out)
    old_root = pki.root("Old Root CA")
    new_root = pki.root("New Root CA")
    cross = pki.cross_sign(new_root, old_root, not_after=NOW + 5 * DAY)
    inter = pki.intermediate(new_root, "New Intermediate")
    leaf = pki.leaf(inter, "www.example.com")
    trust = TrustStore(roots=(old_root.cert, new_root.cert), source="both roots")
    served = (leaf.pem, inter.pem, cross.pem)
    # WHEN the domain is evaluated
    findings = judge(served, trust)
    health = health_of(served, trust)
    # THEN the verified path ends at the trusted new root, and expiry is the leaf's, not the cross-sign's
    assert health.chain is not None and health.chain.status is ChainStatus.VERIFIED
    assert [c.subject_cn for c in health.chain.verified_path] == ["www.example.com", "New Intermediate",
                                                                  "New Root CA"]
    assert health.chain.verified_path[-1].self_issued
    assert findings == []
    assert health.days_left == pytest.approx(335, abs=0.01)
    # the naive "earliest expiry of everything served" would have alarmed: 5 days
    naive = min(c.not_after for c in health.chain.served)
    assert (naive - NOW) / DAY == pytest.approx(5, abs=0.01)
