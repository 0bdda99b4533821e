"""Choosing a CAS certificate to bind (pure): :func:`tlsguard.checks.cert.plan_binding`, the planner of a domain's
bound-certificate facet, on candidates that are real certificates with their public chains.

It binds only a candidate that passes every check the policy applies and outlives the bound one (latest notAfter
first), falls back to the policy's backup certificate only when the bound one is unusable and nothing renews it,
and otherwise answers Unfixable with the days left and why each candidate was rejected.
"""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives import hashes
from tlsguard.certs.model import CasCandidate, CertPolicy
from tlsguard.checks import Unfixable
from tlsguard.checks.cert import plan_binding
from tlsguard.checks.registry import BOUND_CERTIFICATE, resolve_facet
from tlsguard.facets import Actual
from tlsguard.model import Action, TargetRef

from tests.tlsguard.certs._support import (
    CDN,
    DAY,
    NOW,
    WWW,
    Hierarchy,
    Pki,
    actual_for,
    cas_candidate,
    desired_for,
    drifted_checks,
    judge,
)

pytestmark = pytest.mark.unit


@dataclasses.dataclass
class Bound:
    """A domain's bound certificate and the facets a run read for it."""

    policy: CertPolicy
    actual: Actual
    chain: tuple[str, ...]
    fingerprint: str


def bound(pki: Pki, hierarchy: Hierarchy, *, days_left: float, lifetime: float = 398,
          policy: CertPolicy | None = None, target: TargetRef = WWW) -> Bound:
    leaf = pki.leaf(hierarchy.intermediate, target.name, not_before=NOW - (lifetime - days_left) * DAY,
                    not_after=NOW + days_left * DAY)
    chain = (leaf.pem, hierarchy.intermediate.pem)
    return Bound(policy or CertPolicy(), actual_for(target, chain, hierarchy.trust), chain, leaf.fingerprint)


def plan(state: Bound, candidates: list[CasCandidate], target: TargetRef = WWW) -> Action | Unfixable | None:
    """What the lifecycle does for one domain: evaluate, then hand the drifted checks to the facet's planner."""
    desired = desired_for(target, state.policy)
    facet = resolve_facet(BOUND_CERTIFICATE, target.kind)
    findings = judge(state.chain, state.actual.trust, target=target, api=state.actual[facet], policy=state.policy)
    checks = drifted_checks(findings, facet, target.kind)
    if not checks:
        return None  # nothing drifted: nothing is planned, whatever CAS holds
    state.actual.values["cas_candidates"] = candidates
    return plan_binding(desired, state.actual, checks, NOW)


def chosen_id(planned: Action | Unfixable | None) -> int:
    assert isinstance(planned, Action), planned
    return int(str(planned.after["cert_id"]).split("-", 1)[0])


def test_healthy_certificate_needs_nothing(pki: Pki, hierarchy: Hierarchy) -> None:
    state = bound(pki, hierarchy, days_left=200)
    assert plan(state, [cas_candidate(pki, hierarchy.intermediate, 1, end=300)]) is None


def test_due_certificate_renews_with_latest_covering_valid_candidate(pki: Pki, hierarchy: Hierarchy) -> None:
    state = bound(pki, hierarchy, days_left=10)
    inter = hierarchy.intermediate
    candidates = [
        cas_candidate(pki, inter, 1, end=5),  # expires sooner than the bound one
        cas_candidate(pki, inter, 2, "other.example.com", end=400),  # does not cover
        cas_candidate(pki, inter, 3, "*.example.com", end=300),  # covers by wildcard
        cas_candidate(pki, inter, 4, start=2, end=500),  # not valid yet
        cas_candidate(pki, inter, 5, "*.com", end=600),  # not a valid wildcard
        cas_candidate(pki, inter, 6, end=250),
    ]
    planned = plan(state, candidates)
    assert chosen_id(planned) == 3
    assert isinstance(planned, Action)
    assert planned.call == "PutCname" and planned.facet == "cname_certificate"
    assert planned.params == {"Bucket": "site", "Domain": "www.example.com", "CertId": "3-cn-hangzhou",
                              "PreviousCertId": "7-cn-hangzhou"}
    assert planned.checks == ("cert.expiry",)
    assert planned.before["cert_id"] == "7-cn-hangzhou"
    assert planned.after["subject"] == "*.example.com" and planned.after["key"] == "RSA-2048"


def test_cdn_domain_binding_is_set_cdn_domain_ssl_certificate_with_cert_type_cas(pki: Pki,
                                                                               hierarchy: Hierarchy) -> None:
    state = bound(pki, hierarchy, days_left=-1, target=CDN)
    planned = plan(state, [cas_candidate(pki, hierarchy.intermediate, 9, "cdn.example.com", end=300)], target=CDN)
    assert isinstance(planned, Action) and planned.call == "SetCdnDomainSSLCertificate"
    assert planned.params == {"DomainName": "cdn.example.com", "SSLProtocol": "on", "CertType": "cas", "CertId": 9,
                              "CertRegion": "cn-hangzhou"}


def test_same_certificate_is_not_a_renewal(pki: Pki, hierarchy: Hierarchy) -> None:
    state = bound(pki, hierarchy, days_left=-1)
    same = CasCandidate(9, "bound", "www.example.com", ("www.example.com",), NOW - 397 * DAY, NOW + 90 * DAY,
                        state.fingerprint.replace(":", ""), "cn-hangzhou", state.chain)
    planned = plan(state, [same])
    assert isinstance(planned, Unfixable)
    assert "9 (bound)" not in planned.reason  # the bound certificate is not offered as its own replacement
    assert "no CAS certificate covers www.example.com" in planned.reason


def test_backup_used_only_when_invalid_and_no_renewal(pki: Pki, hierarchy: Hierarchy) -> None:
    policy = CertPolicy(backup_cert_ids={"www.example.com": 42})
    inter = hierarchy.intermediate
    backup = cas_candidate(pki, inter, 42, end=60)
    expired = bound(pki, hierarchy, days_left=-2, policy=policy)
    assert chosen_id(plan(expired, [backup, cas_candidate(pki, inter, 7, end=-1, start=-90)])) == 42
    # a real renewal beats the backup (the backup is kept for failover, never consumed as a renewal)
    renewal = cas_candidate(pki, inter, 8, end=300)
    assert chosen_id(plan(expired, [backup, renewal])) == 8
    assert chosen_id(plan(expired, [cas_candidate(pki, inter, 42, end=900), renewal])) == 8
    # merely due (still valid): the backup is not used, a person is told why
    due = bound(pki, hierarchy, days_left=10, policy=policy)
    planned = plan(due, [cas_candidate(pki, inter, 42, end=80)])
    assert isinstance(planned, Unfixable) and "10.0 days left" in planned.reason


def test_unusable_backup_is_not_bound_and_the_reason_says_why(pki: Pki, hierarchy: Hierarchy) -> None:
    policy = CertPolicy(backup_cert_ids={"www.example.com": 42})
    expired = bound(pki, hierarchy, days_left=-2, policy=policy)
    weak_backup = cas_candidate(pki, hierarchy.intermediate, 42, end=60, bits=1024)
    planned = plan(expired, [weak_backup])
    assert isinstance(planned, Unfixable)
    assert "backup 42: RSA 1024-bit key (minimum 2048)" in planned.reason
    missing = plan(expired, [])
    assert isinstance(missing, Unfixable) and "backup 42: not found in CAS" in missing.reason


def test_unfixable_says_days_left_and_what_is_missing(pki: Pki, hierarchy: Hierarchy) -> None:
    state = bound(pki, hierarchy, days_left=-3)
    planned = plan(state, [cas_candidate(pki, hierarchy.intermediate, 11, end=-1, start=-90)])
    assert isinstance(planned, Unfixable)
    assert planned.checks == ("cert.expiry",)
    assert planned.reason.startswith("expired 3.0 days ago; no certificate in CAS can be bound")
    assert "11 (cert-11): not valid now" in planned.reason
    assert "upload or issue one that covers the domain" in planned.reason
    nothing = plan(state, [])
    assert isinstance(nothing, Unfixable) and "no CAS certificate covers www.example.com" in nothing.reason


def test_a_candidate_weaker_than_the_policy_is_never_bound(pki: Pki, hierarchy: Hierarchy) -> None:
    """Issue 13, item 9: RSA-1024, SHA-1, an incomplete chain, or an earlier expiry: each rejected with its reason;
    a good candidate among them is the one chosen."""
    state = bound(pki, hierarchy, days_left=10)
    inter = hierarchy.intermediate
    leaf_only = cas_candidate(pki, inter, 23, end=500)
    rejected = [
        cas_candidate(pki, inter, 21, end=500, bits=1024),
        cas_candidate(pki, inter, 22, end=500, hash_algorithm=hashes.SHA1()),
        dataclasses.replace(leaf_only, chain_pem=leaf_only.chain_pem[:1]),  # served without its intermediate
        cas_candidate(pki, inter, 24, end=8),
        cas_candidate(pki, pki.root("Unknown Root"), 25, end=500),
    ]
    planned = plan(state, rejected)
    assert isinstance(planned, Unfixable)
    assert planned.reason.startswith("10.0 days left; no certificate in CAS can be bound (")
    assert "21 (cert-21): RSA 1024-bit key (minimum 2048)" in planned.reason
    assert "22 (cert-22): signed with SHA1" in planned.reason
    assert "23 (cert-23): its chain is incomplete (issuer O=tlsguard tests,CN=Test Intermediate CA missing)" in \
        planned.reason
    assert "24 (cert-24) does not outlive the bound one" in planned.reason
    assert "25 (cert-25): its chain is not trusted" in planned.reason
    # WHEN a good candidate is among them THEN it is chosen, although the weak ones expire later
    good = cas_candidate(pki, inter, 26, end=300)
    assert chosen_id(plan(state, [*rejected, good])) == 26


def test_ec_candidate_below_min_ec_bits_is_rejected(pki: Pki, hierarchy: Hierarchy) -> None:
    state = bound(pki, hierarchy, days_left=10, policy=CertPolicy(min_ec_bits=384))
    p256 = cas_candidate(pki, hierarchy.intermediate, 31, end=300, key_kind="ec", bits=256)
    planned = plan(state, [p256])
    assert isinstance(planned, Unfixable) and "EC 256-bit key (minimum 384)" in planned.reason
    p384 = cas_candidate(pki, hierarchy.intermediate, 32, end=300, key_kind="ec", bits=384)
    assert chosen_id(plan(state, [p256, p384])) == 32
