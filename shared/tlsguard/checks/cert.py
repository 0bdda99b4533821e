"""Certificate checks of OSS custom domains and CDN domains, and the planner that binds a better one from CAS.

Every check judges one :class:`~tlsguard.certs.checks.CertHealth` (the API's view of the bound certificate, the
chain a handshake with SNI is really served, path building against the trust store), computed once per target.
A fix binds a CAS certificate, and only one that passes every check the policy applies (key type and size,
signature algorithm, hostname, a complete trusted chain, validity) and outlives the bound one; otherwise the
drift is reported as unfixable with what a person must provide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tlsguard.certs.chain import analyse_chain
from tlsguard.certs.checks import DAY, _ago, _is_ip, assess_health, hostname_covered
from tlsguard.certs.model import CertPolicy, ChainStatus
from tlsguard.certs.x509facts import facts_from_pem, normalise_fingerprint, read_chain
from tlsguard.checks.registry import BOUND_CERTIFICATE, Check, Unfixable, resolve_facet
from tlsguard.facets import CDN_DOMAINS, CNAMES, DOMAINS, FACETS
from tlsguard.model import Action, Finding, Severity, TargetKind

if TYPE_CHECKING:
    import datetime as dt

    from tlsguard.certs.checks import CertHealth
    from tlsguard.certs.model import CasCandidate, CertFacts
    from tlsguard.facets import Actual
    from tlsguard.policy.model import Desired

PRESENT = "cert.present"
EXPIRY = "cert.expiry"
HOSTNAME = "cert.hostname"
CHAIN = "cert.chain"
KEY_STRENGTH = "cert.key_strength"
SIGNATURE = "cert.signature"
VIEWS_AGREE = "cert.views_agree"
REACHABLE = "cert.reachable"
CDN_CERT_STATUS = "cdn.cert_status"
CDN_HTTPS_ENABLED = "cdn.https_enabled"
#: Checks whose drift a newer certificate from CAS fixes.
FIXED_BY_BINDING = frozenset({PRESENT, EXPIRY, HOSTNAME, CHAIN, KEY_STRENGTH, SIGNATURE, CDN_HTTPS_ENABLED})


def _policy(desired: Desired) -> CertPolicy:
    return desired.certs or CertPolicy()


def health(desired: Desired, actual: Actual, now: dt.datetime) -> CertHealth:
    """The domain's certificate health, computed once per target and shared by every cert.* check."""
    facet = resolve_facet(BOUND_CERTIFICATE, desired.target.kind)
    computed: CertHealth = actual.memo("cert_health", lambda: assess_health(
        actual[facet], actual["served_chain"], actual.trust, _policy(desired), now))
    return computed


def _https_off(desired: Desired, actual: Actual, now: dt.datetime) -> bool:
    """A CDN domain with HTTPS off serves no certificate: only cdn.https_enabled judges it."""
    if desired.target.kind is not TargetKind.CDN_DOMAIN:
        return False
    return not health(desired, actual, now).api.https_enabled


def _propagating(desired: Desired, actual: Actual, now: dt.datetime) -> bool:
    """The API says another certificate was bound within the propagation grace window and the edge still serves
    the previous one: what is served says nothing about what is bound, so the served-chain checks wait (the
    target is pending) rather than judge, and possibly rebind, a certificate that is on its way out."""
    cert = health(desired, actual, now)
    api, leaf = cert.api, cert.chain.leaf if cert.chain else None
    if leaf is None or not api.fingerprint_sha1 or api.changed_at is None:
        return False
    if normalise_fingerprint(api.fingerprint_sha1) == leaf.fingerprint_sha1:
        return False
    return now - api.changed_at < _policy(desired).propagation_grace


def _suspended(desired: Desired, actual: Actual, now: dt.datetime) -> bool:
    """The served-chain checks do not judge: HTTPS is off, or a new binding is still propagating."""
    return _https_off(desired, actual, now) or _propagating(desired, actual, now)


def _finding(desired: Desired, check: str, severity: Severity, want: str, have: str, message: str,
             state: str, **details: str) -> Finding:
    return Finding(desired.target, check, severity, want, have, message, details={"alert_state": state, **details})


# -- evaluate -------------------------------------------------------------------------------------------------
def _present(desired: Desired, actual: Actual, now: dt.datetime) -> list[Finding]:
    api = health(desired, actual, now).api
    if api.cert_id:
        return []
    return [_finding(desired, PRESENT, Severity.HIGH, "a certificate bound", "no certificate",
                     f"no certificate is bound to custom domain {desired.target.name}: HTTPS to it fails",
                     "missing")]


def _ladder_severity(days_left: float) -> Severity:
    if days_left <= 1:
        return Severity.CRITICAL
    if days_left <= 7:
        return Severity.HIGH
    return Severity.MEDIUM


def ladder_label(days_left: float, steps: tuple[int, ...]) -> str:
    """The tightest alert step ``days_left`` has reached (``"7d"``), or "" before the first one."""
    reached = [step for step in steps if days_left <= step]
    return f"{min(reached)}d" if reached else ""


def _expiry(desired: Desired, actual: Actual, now: dt.datetime) -> list[Finding]:
    if _suspended(desired, actual, now):
        return []
    cert = health(desired, actual, now)
    if cert.expires_at is None:
        return []
    policy = _policy(desired)
    fingerprint = cert.leaf.fingerprint_sha1 if cert.leaf else (cert.api.fingerprint_sha1 or "")
    common = {"not_after": cert.expires_at.isoformat(), "fingerprint": fingerprint}
    if now >= cert.expires_at:
        return [_finding(desired, EXPIRY, Severity.CRITICAL, "a valid certificate",
                         f"expired {cert.expires_at:%Y-%m-%d}",
                         f"certificate expired {_ago(now - cert.expires_at)} ago ({cert.expires_at:%Y-%m-%d %H:%M} "
                         "UTC)", "expired", **common)]
    if cert.leaf is not None and now < cert.leaf.not_before:
        return [_finding(desired, EXPIRY, Severity.CRITICAL, "a valid certificate",
                         f"not valid before {cert.leaf.not_before:%Y-%m-%d}",
                         f"certificate is not valid before {cert.leaf.not_before:%Y-%m-%d %H:%M} UTC",
                         "not_yet_valid", **common)]
    days = (cert.expires_at - now) / DAY
    ladder = ladder_label(days, policy.alert_steps)
    details = {**common, "days_left": f"{days:.2f}", "ladder": ladder}
    if cert.renewal_due_at is not None and now >= cert.renewal_due_at:
        return [_finding(desired, EXPIRY, _ladder_severity(days), f"renewed by {cert.renewal_due_at:%Y-%m-%d}",
                         f"{days:.1f} days left",
                         f"renewal due since {cert.renewal_due_at:%Y-%m-%d} ({days:.1f} days left)",
                         f"renewal_due:{fingerprint[:11]}", **details, due_at=cert.renewal_due_at.isoformat())]
    if ladder:  # a heads-up on the alert ladder before renewal is due: a notice, not drift
        return [_finding(desired, EXPIRY, Severity.INFO, "more than the alert steps left", f"{days:.1f} days left",
                         f"{days:.1f} days left (alert step {ladder})", f"expiring:{fingerprint[:11]}", **details)]
    return []


def _hostname(desired: Desired, actual: Actual, now: dt.datetime) -> list[Finding]:
    leaf = health(desired, actual, now).leaf
    if leaf is None or _suspended(desired, actual, now) or covers(leaf, desired.target.name):
        return []
    names = ", ".join(leaf.sans) or leaf.subject_cn or "(no name)"
    return [_finding(desired, HOSTNAME, Severity.CRITICAL, f"covers {desired.target.name}", names,
                     f"certificate names {names}, which does not cover {desired.target.name}", "not_covered",
                     names=names)]


def covers(leaf: CertFacts, host: str) -> bool:
    return hostname_covered(host, tuple(n for n in leaf.sans if not _is_ip(n)), leaf.subject_cn)


def _signature_failure_explained(cert: CertHealth) -> bool:
    """The verifier refuses SHA-1 paths; cert.signature already says so, more precisely."""
    error = cert.chain.error if cert.chain else ""
    return "signature algorithm" in (error or "") and any(c.signature_hash in ("sha1", "md5") for c in cert.judged)


def _chain(desired: Desired, actual: Actual, now: dt.datetime) -> list[Finding]:
    cert = health(desired, actual, now)
    chain = cert.chain
    if chain is None and cert.api_unreadable and not _https_off(desired, actual, now):
        return [_finding(desired, CHAIN, Severity.HIGH, "a readable certificate", "unreadable",
                         f"the bound certificate the API returns cannot be read: {cert.api_unreadable}",
                         "unreadable", error=cert.api_unreadable)]
    if chain is None or _suspended(desired, actual, now):
        return []
    findings = []
    if chain.status is ChainStatus.UNREADABLE:
        findings.append(_finding(desired, CHAIN, Severity.HIGH, "a readable chain", "unreadable",
                                 f"the served chain cannot be read (no client can use it): {chain.error}",
                                 "unreadable", error=chain.error or ""))
    elif chain.status is ChainStatus.OVERSIZED:
        findings.append(_finding(desired, CHAIN, Severity.HIGH, "a chain within tlsguard's limits", "oversized",
                                 f"the served chain is over tlsguard's limits and was not judged: {chain.error}",
                                 "oversized", error=chain.error or ""))
    elif chain.status is ChainStatus.INCOMPLETE:
        findings.append(_finding(desired, CHAIN, Severity.HIGH, "a complete chain", "incomplete",
                                 f"chain incomplete: the issuer {chain.missing_issuer} is not served (clients "
                                 "without a cached intermediate or AIA fetching fail)", "incomplete",
                                 missing_issuer=chain.missing_issuer or ""))
    elif chain.status is ChainStatus.UNTRUSTED and not _signature_failure_explained(cert):
        findings.append(_finding(desired, CHAIN, Severity.HIGH, "a trusted chain", "untrusted",
                                 f"no trusted path: {chain.error}", "untrusted", error=chain.error or ""))
    if chain.misordered:
        order = " -> ".join(c.subject_cn or c.subject for c in chain.served)
        findings.append(_finding(desired, CHAIN, Severity.MEDIUM, "leaf first, each followed by its issuer",
                                 order, f"chain served out of order: {order}", "misordered", served_order=order))
    return findings


def _weak_keys(certs: tuple[CertFacts, ...], policy: CertPolicy) -> list[tuple[CertFacts, int]]:
    weak = []
    for cert in certs:
        if cert.self_issued:
            continue  # a root's self-signature is not relied upon
        minimum = {"RSA": policy.min_rsa_bits, "DSA": policy.min_rsa_bits, "EC": policy.min_ec_bits}.get(
            cert.key_algorithm, 0)
        if cert.key_bits < minimum:
            weak.append((cert, minimum))
    return weak


def _key_strength(desired: Desired, actual: Actual, now: dt.datetime) -> list[Finding]:
    if _suspended(desired, actual, now):
        return []
    return [_finding(desired, KEY_STRENGTH, Severity.HIGH, f"{cert.key_algorithm} >= {minimum} bits",
                     f"{cert.key_algorithm}-{cert.key_bits}",
                     f"{cert.subject_cn or cert.subject}: {cert.key_algorithm} {cert.key_bits}-bit key (minimum "
                     f"{minimum})", "weak_key", certificate=cert.subject_cn or cert.subject,
                     key=f"{cert.key_algorithm}-{cert.key_bits}")
            for cert, minimum in _weak_keys(health(desired, actual, now).judged, _policy(desired))]


def _weak_signatures(certs: tuple[CertFacts, ...]) -> list[CertFacts]:
    return [c for c in certs if not c.self_issued and c.signature_hash in ("sha1", "md5")]


def _signature(desired: Desired, actual: Actual, now: dt.datetime) -> list[Finding]:
    if _suspended(desired, actual, now):
        return []
    return [_finding(desired, SIGNATURE, Severity.HIGH, "SHA-256 or stronger", cert.signature_hash,
                     f"{cert.subject_cn or cert.subject}: signed with {cert.signature_hash.upper()}", "weak_signature",
                     certificate=cert.subject_cn or cert.subject, hash=cert.signature_hash)
            for cert in _weak_signatures(health(desired, actual, now).judged)]


def _views_agree(desired: Desired, actual: Actual, now: dt.datetime) -> list[Finding]:
    """The API's bound certificate and the one really served differ: pending inside the grace window, else drift."""
    cert = health(desired, actual, now)
    api, leaf = cert.api, cert.chain.leaf if cert.chain else None
    if leaf is None or _https_off(desired, actual, now):
        return []
    api_fingerprint = api.fingerprint_sha1 or (facts_from_pem(api.pem).fingerprint_sha1
                                               if api.pem and not cert.api_unreadable else None)
    if not api_fingerprint:
        return []
    expected, served = normalise_fingerprint(api_fingerprint), leaf.fingerprint_sha1
    if expected == served:
        return []
    details = {"api_fingerprint": expected, "live_fingerprint": served, "live_subject": leaf.subject_cn,
               "live_issuer": leaf.issuer}
    if api.changed_at is not None and now - api.changed_at < _policy(desired).propagation_grace:
        return [_finding(desired, VIEWS_AGREE, Severity.INFO, expected[:23], served[:23],
                         f"binding changed {_ago(now - api.changed_at)} ago; the edge still serves the previous "
                         "certificate (inside the propagation grace window)", "propagating", **details)]
    return [_finding(desired, VIEWS_AGREE, Severity.HIGH, expected[:23], served[:23],
                     f"the API says {expected[:23]}... is bound but {served[:23]}... ({leaf.subject_cn}) is served "
                     "(another service fronts the domain, or the change never propagated)", "mismatch", **details)]


def _reachable(desired: Desired, actual: Actual, now: dt.datetime) -> list[Finding]:
    cert = health(desired, actual, now)
    live = cert.live
    if live.chain_pem or _https_off(desired, actual, now):
        return []
    return [_finding(desired, REACHABLE, Severity.MEDIUM, "a handshake with SNI succeeds", live.error or "no chain",
                     f"no live view from {live.endpoint or 'the endpoint'}: {live.error or 'nothing served'}",
                     "unreachable", endpoint=live.endpoint, error=live.error or "")]


def _cdn_status(desired: Desired, actual: Actual, now: dt.datetime) -> list[Finding]:
    api = health(desired, actual, now).api
    if api.status is None or api.status.lower() == "success" or not api.https_enabled:
        return []
    return [_finding(desired, CDN_CERT_STATUS, Severity.HIGH, "success", api.status,
                     f"CDN certificate Status is {api.status!r}, not 'success'", "status", status=api.status)]


def _cdn_https(desired: Desired, actual: Actual, now: dt.datetime) -> list[Finding]:
    if not _https_off(desired, actual, now):
        return []
    return [_finding(desired, CDN_HTTPS_ENABLED, Severity.CRITICAL, "HTTPS on", "HTTPS off",
                     "HTTPS is off on a CDN domain the policy says must serve HTTPS", "https_off")]


def observe(desired: Desired, actual: Actual, now: dt.datetime) -> dict[str, Any]:
    """What a person reading a report wants to know about a domain's certificate (the ``certs`` view)."""
    cert = health(desired, actual, now)
    leaf = cert.leaf
    return {
        "cert_id": cert.api.cert_id, "https_enabled": cert.api.https_enabled,
        "subject": leaf.subject_cn if leaf else None, "issuer": leaf.issuer if leaf else None,
        "key": f"{leaf.key_algorithm}-{leaf.key_bits}" if leaf else None,
        "fingerprint": leaf.fingerprint_sha1 if leaf else None,
        "expires_at": cert.expires_at.isoformat() if cert.expires_at else None,
        "days_left": round(cert.days_left, 2) if cert.days_left is not None else None,
        "renewal_due_at": cert.renewal_due_at.isoformat() if cert.renewal_due_at else None,
        "chain": cert.chain.status.value if cert.chain else None,
        "endpoint": cert.live.endpoint or None, "live_error": cert.live.error,
    }


# -- plan: bind a better certificate from CAS ------------------------------------------------------------------
def vet_candidate(candidate: CasCandidate, domain: str, desired: Desired, actual: Actual,
                  now: dt.datetime) -> str:
    """Why ``candidate`` must not be bound ("" when it passes every check the policy applies)."""
    policy = _policy(desired)
    if not candidate.not_before <= now < candidate.not_after:
        return f"not valid now ({candidate.not_before:%Y-%m-%d} to {candidate.not_after:%Y-%m-%d})"
    if not candidate.chain_pem:
        return "its certificate could not be read from CAS"
    try:
        leaf = facts_from_pem(candidate.chain_pem[0])
    except ValueError as exc:
        return f"its certificate is not valid PEM ({exc})"
    if not covers(leaf, domain):
        return f"does not cover {domain} (names {', '.join(leaf.sans) or leaf.subject_cn})"
    if actual.trust is not None:
        chain = analyse_chain(candidate.chain_pem, actual.trust, now)
        if chain.status in (ChainStatus.UNREADABLE, ChainStatus.OVERSIZED):
            return f"its chain cannot be used ({chain.error})"
        if chain.status is ChainStatus.INCOMPLETE:
            return f"its chain is incomplete (issuer {chain.missing_issuer} missing)"
        if chain.status is not ChainStatus.VERIFIED:
            signatures = _weak_signatures(chain.served)  # the verifier refuses SHA-1: say so precisely
            if signatures:
                return f"signed with {signatures[0].signature_hash.upper()}"
            return f"its chain is not trusted ({chain.error})"
        judged = chain.served
    else:
        read = read_chain(candidate.chain_pem)
        if read.unreadable or read.oversized:
            return f"its chain cannot be used ({read.unreadable or read.oversized})"
        judged = (leaf,)
    weak = _weak_keys(judged, policy)
    if weak:
        cert, minimum = weak[0]
        return f"{cert.key_algorithm} {cert.key_bits}-bit key (minimum {minimum})"
    signatures = _weak_signatures(judged)
    if signatures:
        return f"signed with {signatures[0].signature_hash.upper()}"
    return ""


def plan_binding(desired: Desired, actual: Actual, checks: frozenset[str],
                 now: dt.datetime) -> Action | Unfixable | None:
    """Bind the best CAS certificate (latest notAfter, then newest id) that passes every check and outlives the
    bound one; the policy's backup certificate when the bound one is unusable and no renewal exists."""
    target, policy = desired.target, _policy(desired)
    cert = health(desired, actual, now)
    facet = resolve_facet(BOUND_CERTIFICATE, target.kind)
    bound_fp = cert.leaf.fingerprint_sha1 if cert.leaf else normalise_fingerprint(cert.api.fingerprint_sha1 or "")
    bound_expiry = cert.expires_at if cert.api.cert_id or cert.leaf else None
    backup_id = policy.backup_cert_ids.get(target.name)
    # HTTPS off on a CDN domain serves nothing: turning it back on with the certificate still bound (if it passes
    # every check) is a fix, so neither "not the bound one" nor "outlives the bound one" applies.
    https_off = _https_off(desired, actual, now)
    rejected: list[str] = []
    usable: list[CasCandidate] = []
    for candidate in actual["cas_candidates"]:
        if candidate.cert_id == backup_id:
            continue  # kept for failover, not consumed as a renewal
        if bound_fp and normalise_fingerprint(candidate.fingerprint_sha1) == bound_fp and not https_off:
            continue
        if bound_expiry is not None and candidate.not_after <= bound_expiry and not https_off:
            rejected.append(f"{candidate.cert_id} ({candidate.name}) does not outlive the bound one "
                            f"(ends {candidate.not_after:%Y-%m-%d})")
            continue
        why = vet_candidate(candidate, target.name, desired, actual, now)
        if why:
            rejected.append(f"{candidate.cert_id} ({candidate.name}): {why}")
        else:
            usable.append(candidate)
    chosen = max(usable, key=lambda c: (c.not_after, c.cert_id)) if usable else None
    invalid = bool(checks - {EXPIRY}) or any(f.alert_state in ("expired", "not_yet_valid") for f in
                                             _expiry(desired, actual, now))
    if chosen is None and backup_id is not None and invalid:
        backup = next((c for c in actual["cas_candidates"] if c.cert_id == backup_id), None)
        why = vet_candidate(backup, target.name, desired, actual, now) if backup else "not found in CAS"
        if backup is not None and not why and normalise_fingerprint(backup.fingerprint_sha1) != bound_fp:
            chosen = backup
        else:
            rejected.append(f"backup {backup_id}: {why or 'already bound'}")
    if chosen is None:
        days = f"{cert.days_left:.1f} days left" if cert.days_left is not None else "expiry unknown"
        if cert.days_left is not None and cert.days_left <= 0:
            days = f"expired {-cert.days_left:.1f} days ago"
        reasons = "; ".join(rejected) if rejected else f"no CAS certificate covers {target.name}"
        return Unfixable(tuple(sorted(checks)), f"{days}; no certificate in CAS can be bound ({reasons}): upload or "
                                                "issue one that covers the domain, passes the policy and outlives "
                                                "the bound one")
    return binding_action(desired, facet, cert.api, chosen, tuple(sorted(checks)))


def binding_action(desired: Desired, facet: str, api: Any, chosen: CasCandidate, checks: tuple[str, ...]) -> Action:
    target = desired.target
    region = chosen.region or "cn-hangzhou"
    leaf = facts_from_pem(chosen.chain_pem[0]) if chosen.chain_pem else None
    described = {"subject": leaf.subject_cn if leaf else chosen.common_name,
                 "not_after": chosen.not_after.isoformat(),
                 "key": f"{leaf.key_algorithm}-{leaf.key_bits}" if leaf else "",
                 "fingerprint": normalise_fingerprint(chosen.fingerprint_sha1) if chosen.fingerprint_sha1 else
                 (leaf.fingerprint_sha1 if leaf else "")}
    before = FACETS[facet].to_json(api)
    if target.kind is TargetKind.OSS_CNAME:
        new_id = f"{chosen.cert_id}-{region}"
        params: dict[str, Any] = {"Bucket": target.bucket, "Domain": target.name, "CertId": new_id,
                                  "PreviousCertId": before.get("cert_id")}
        call = "PutCname"
    else:
        new_id = str(chosen.cert_id)
        params = {"DomainName": target.name, "SSLProtocol": "on", "CertType": "cas", "CertId": chosen.cert_id,
                  "CertRegion": region}
        call = "SetCdnDomainSSLCertificate"
    after = {"cert_id": new_id, "cert_name": chosen.name, "cert_type": "CAS", "cert_region": region,
             "https_enabled": True, "status": None, **described}
    return Action(target, facet, call, params, before, after, checks,
                  f"{call}: bind CAS certificate {chosen.cert_id} ({described['subject']}, {described['key']}, "
                  f"not after {chosen.not_after:%Y-%m-%d}) in place of {before.get('cert_id') or 'nothing'}")


def live_expectation(action: Action) -> dict[str, object]:
    after = action.after if isinstance(action.after, dict) else {}
    return {"host": action.target.name, "certificate_sha1": str(after.get("fingerprint") or "")}


_DOMAIN_FACETS = (BOUND_CERTIFICATE, "served_chain")
_CERT_EVENTS = ("oss:PutCname", "oss:DeleteCname", "cdn:SetCdnDomainSSLCertificate")


def _https_required(desired: Desired) -> bool:
    return _policy(desired).https_required


CHECKS = (
    Check(PRESENT, CNAMES, "Custom domain has a certificate bound", "HIGH", _DOMAIN_FACETS, _present,
          fixes=BOUND_CERTIFICATE, events=("oss:PutCname", "oss:DeleteCname"), live="certificate",
          applies=_https_required,
          doc="A custom domain without a certificate on OSS cannot be reached over HTTPS through OSS; the fix "
              "binds a CAS certificate that covers it. Exclude (certificates.exclude) a domain served elsewhere."),
    Check(EXPIRY, DOMAINS, "Certificate is valid and renewed before it expires",
          "CRITICAL expired or not yet valid; renewal due: CRITICAL <= 1 day, HIGH <= 7 days, else MEDIUM; "
          "INFO heads-up on the alert ladder", _DOMAIN_FACETS, _expiry, fixes=BOUND_CERTIFICATE,
          events=_CERT_EVENTS, live="certificate", aliases=("cert_expired", "cert_renewal_due"),
          doc="Expiry is the verified path's earliest notAfter; renewal is due at notAfter - min(renew_before, "
              "lifetime x renew_fraction). Each alert step (30, 14, 7, 1 days) alerts once per certificate."),
    Check(HOSTNAME, DOMAINS, "Certificate covers the domain name", "CRITICAL", _DOMAIN_FACETS, _hostname,
          fixes=BOUND_CERTIFICATE, events=_CERT_EVENTS, live="certificate", aliases=("cert_hostname_not_covered",),
          doc="RFC 6125: SANs only (CN when there is none), a wildcard covers exactly one left-most label."),
    Check(CHAIN, DOMAINS, "Served chain is complete, trusted and in order",
          "HIGH incomplete, untrusted, unreadable or oversized, MEDIUM misordered", _DOMAIN_FACETS, _chain,
          fixes=BOUND_CERTIFICATE, events=_CERT_EVENTS, live="certificate",
          aliases=("cert_chain_incomplete", "cert_chain_untrusted"),
          doc="Path building (cryptography) on the chain exactly as served, against certifi's roots, bounded: at "
              "most 20 certificates of 64 KiB (256 KiB in all) are read, a path never repeats a certificate and "
              "the search gives up after 256 candidates. A certificate that is not valid DER is a finding."),
    Check(KEY_STRENGTH, DOMAINS, "Served keys are strong enough", "HIGH", _DOMAIN_FACETS, _key_strength,
          fixes=BOUND_CERTIFICATE, events=_CERT_EVENTS, live="certificate", aliases=("cert_weak_key",),
          doc="RSA/DSA >= certificates.min_rsa_bits (2048), EC >= min_ec_bits (256); self-issued roots exempt."),
    Check(SIGNATURE, DOMAINS, "No SHA-1 or MD5 signatures", "HIGH", _DOMAIN_FACETS, _signature,
          fixes=BOUND_CERTIFICATE, events=_CERT_EVENTS, live="certificate", aliases=("cert_sha1_signature",)),
    Check(VIEWS_AGREE, DOMAINS, "The served certificate is the bound one",
          "HIGH after the propagation grace window, INFO (pending) inside it", _DOMAIN_FACETS, _views_agree,
          events=_CERT_EVENTS, aliases=("cert_view_mismatch",),
          doc="Alert only: another service fronting the domain, or a binding that never propagated."),
    Check(REACHABLE, DOMAINS, "A handshake with SNI gets a certificate", "MEDIUM", _DOMAIN_FACETS, _reachable,
          aliases=("cert_live_unreachable",), doc="Alert only."),
    Check(CDN_CERT_STATUS, CDN_DOMAINS, "CDN certificate Status is success", "HIGH", _DOMAIN_FACETS, _cdn_status,
          events=("cdn:SetCdnDomainSSLCertificate",), aliases=("cdn_cert_status_not_success",), doc="Alert only."),
    Check(CDN_HTTPS_ENABLED, CDN_DOMAINS, "CDN domain serves HTTPS", "CRITICAL", _DOMAIN_FACETS, _cdn_https,
          fixes=BOUND_CERTIFICATE, events=("cdn:SetCdnDomainSSLCertificate",), live="certificate",
          applies=_https_required, aliases=("cdn_https_off",),
          doc="The fix turns HTTPS back on with the best CAS certificate for the domain."),
)

PLANNERS = {"cname_certificate": plan_binding, "cdn_certificate": plan_binding}
