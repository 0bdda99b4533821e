"""Certificate building blocks: hostname coverage, the renewal point, the alert ladder, a domain's health.

Pure functions of (views, trust store, policy, now); the cert.* checks (:mod:`tlsguard.checks.cert`) judge them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tlsguard.certs.chain import analyse_chain
from tlsguard.certs.x509facts import facts_from_pem
from tlsguard.errors import CertificateUnreadable

if TYPE_CHECKING:
    from tlsguard.certs.chain import TrustStore
    from tlsguard.certs.model import ApiView, CertFacts, CertPolicy, ChainAnalysis, LiveView

DAY = dt.timedelta(days=1)


# -- building blocks -----------------------------------------------------------------------------------------
def hostname_covered(host: str, names: tuple[str, ...], common_name: str = "") -> bool:
    """Whether a certificate naming ``names`` (its DNS SANs) covers ``host`` (RFC 6125 §6.4).

    The common name is consulted only when there is no SAN at all. A wildcard is honoured only as the whole
    left-most label, matches exactly one label (``*.example.com`` covers ``a.example.com``, not
    ``example.com`` nor ``a.b.example.com``) and needs at least two labels after it.
    """
    host = host.lower().rstrip(".")
    candidates = names if names else ((common_name,) if common_name else ())
    for name in candidates:
        pattern = name.lower().rstrip(".")
        if pattern == host:
            return True
        if pattern.startswith("*."):
            suffix = pattern[2:]
            if suffix.count(".") < 1 or "*" in suffix:
                continue
            label, _, rest = host.partition(".")
            if label and rest == suffix:
                return True
    return False


def renewal_due_at(not_before: dt.datetime, not_after: dt.datetime, policy: CertPolicy) -> dt.datetime:
    """``notAfter - min(renew_before, lifetime * renew_fraction)``: lifetime-aware, so 47-day certificates work."""
    window = min(policy.renew_before, (not_after - not_before) * policy.renew_fraction)
    return not_after - window


@dataclass(frozen=True)
class LadderDecision:
    """The alert ladder's answer: the step to alert now (or None) and the steps alerted once this is sent."""

    step: int | None
    alerted: frozenset[int]


def ladder_step(days_left: float, alerted: frozenset[int] | set[int],
                steps: tuple[int, ...] = (30, 14, 7, 1)) -> LadderDecision:
    """Which step of the alert ladder to alert now, each step at most once.

    Every step ``s`` with ``days_left <= s`` is due. If some due step has not been alerted, one alert is sent
    for the tightest such step and every due step is marked alerted (a certificate first seen with 5 days left
    gets one "7 days" alert, not three). ``alerted`` is per certificate (key it by fingerprint), so a renewal
    starts a fresh ladder.
    """
    done = frozenset(alerted)
    due = frozenset(step for step in steps if days_left <= step)
    fresh = due - done
    if not fresh:
        return LadderDecision(step=None, alerted=done)
    return LadderDecision(step=min(fresh), alerted=done | due)


# -- the health of one domain's certificate (computed once, judged by every cert.* check) ------------------------
@dataclass(frozen=True)
class CertHealth:
    """What is known about one domain's certificate: the two views, the chain verdict, the leaf and its expiry.

    The leaf comes from the served chain when a handshake got one, else from the API's PEM (CDN returns it).
    ``expires_at`` is the verified path's earliest notAfter (when clients stop trusting the domain), so an
    expiring cross-signed root that is served but not on the path does not count.
    """

    api: ApiView
    live: LiveView
    chain: ChainAnalysis | None
    leaf: CertFacts | None
    judged: tuple[CertFacts, ...]
    expires_at: dt.datetime | None
    days_left: float | None
    renewal_due_at: dt.datetime | None
    api_unreadable: str | None = None  # why the API's PEM of the bound certificate cannot be read


def assess_health(api: ApiView, live: LiveView, trust: TrustStore | None, policy: CertPolicy,
                  now: dt.datetime) -> CertHealth:
    """Build the chain analysis and expiry figures of one domain (pure: trust store and time passed in).

    Never raises for what was served or returned: an unreadable or oversized certificate is recorded (the chain's
    status, ``api_unreadable``) for the cert.chain check to report.
    """
    chain: ChainAnalysis | None = None
    leaf: CertFacts | None = None
    judged: tuple[CertFacts, ...] = ()
    api_unreadable: str | None = None
    if live.chain_pem and trust is not None:
        chain = analyse_chain(live.chain_pem, trust, now)
        leaf, judged = chain.leaf, chain.served
    elif api.pem:
        try:
            leaf = facts_from_pem(api.pem)
        except CertificateUnreadable as exc:  # one broken certificate is a finding for its domain, never a crash
            api_unreadable = str(exc)
        else:
            judged = (leaf,)
    expires_at: dt.datetime | None = None
    due_at: dt.datetime | None = None
    if leaf is not None:
        expires_at = chain.effective_not_after if chain is not None and chain.effective_not_after else leaf.not_after
        due_at = min(renewal_due_at(leaf.not_before, leaf.not_after, policy), expires_at)
    elif api.not_after is not None:
        expires_at = api.not_after
    days_left = (expires_at - now) / DAY if expires_at is not None else None
    return CertHealth(api, live, chain, leaf, judged, expires_at, days_left, due_at, api_unreadable)


def _is_ip(name: str) -> bool:
    return name.replace(".", "").isdigit() or ":" in name


def _ago(delta: dt.timedelta) -> str:
    seconds = abs(delta.total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes"
