"""Data types of certificate health: a certificate's facts, the two views of a domain, the policy, candidates.

Frozen dataclasses and ``str`` Enums only; nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True)
class CertFacts:
    """What tlsguard needs to know about one X.509 certificate (read by :mod:`tlsguard.certs.x509facts`)."""

    subject_cn: str
    sans: tuple[str, ...]
    issuer: str
    subject: str
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint_sha1: str  # upper-case colon hex, as OSS shows it
    sha256: str  # lower-case hex
    serial: str
    is_ca: bool
    self_issued: bool
    key_algorithm: str  # "RSA" | "EC" | "Ed25519" | ...
    key_bits: int
    signature_hash: str  # "sha256", "sha1", ... ("" when the algorithm carries no separate hash)

    @property
    def lifetime(self) -> dt.timedelta:
        return self.not_after - self.not_before


@dataclass(frozen=True)
class ApiView:
    """The control plane's view of the bound certificate (OSS ListCname Certificate / CDN certificate info).

    ``changed_at`` is when the binding last changed (OSS ``CreationDate``, CDN ``CertUpdateTime``): the start
    of the propagation grace window. ``status`` is OSS's certificate Status or CDN's ``Status``.
    """

    cert_id: str | None = None
    cert_name: str | None = None
    fingerprint_sha1: str | None = None
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    status: str | None = None
    https_enabled: bool = True
    pem: str | None = None
    changed_at: dt.datetime | None = None
    cert_type: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class LiveView:
    """What a TLS handshake to the domain's endpoint (with SNI) served: the chain exactly as sent, leaf first."""

    chain_pem: tuple[str, ...] = ()
    endpoint: str = ""
    error: str | None = None


DEFAULT_ALERT_STEPS: tuple[int, ...] = (30, 14, 7, 1)


@dataclass(frozen=True)
class CertPolicy:
    """Thresholds of the certificate checks (the policy file's ``certificates:`` section).

    Renewal is due at ``notAfter - min(renew_before, lifetime * renew_fraction)`` (Go autocert's rule, so a
    47-day certificate renews with ~16 days left, a 398-day one with 30). ``backup_cert_ids`` maps a domain to
    the CAS certificate id to fall back to when the bound one is invalid and no renewal exists.
    """

    renew_before: dt.timedelta = dt.timedelta(days=30)
    renew_fraction: float = 1 / 3
    alert_steps: tuple[int, ...] = DEFAULT_ALERT_STEPS
    propagation_grace: dt.timedelta = dt.timedelta(minutes=30)
    min_rsa_bits: int = 2048
    min_ec_bits: int = 256
    backup_cert_ids: dict[str, int] = field(default_factory=dict, hash=False)
    include_domains: tuple[str, ...] = ()
    exclude_domains: tuple[str, ...] = ()
    https_required: bool = True
    discovery_interval: dt.timedelta = dt.timedelta(hours=24)  # full custom-domain discovery at most this often

    def in_scope(self, domain: str) -> bool:
        """Whether ``domain`` is watched: in ``include_domains`` (when given) and not in ``exclude_domains``.

        Entries may be exact names or ``*.suffix`` patterns (any depth below the suffix).
        """
        name = domain.lower().rstrip(".")
        if self.include_domains and not any(_scope_match(name, p) for p in self.include_domains):
            return False
        return not any(_scope_match(name, p) for p in self.exclude_domains)


def _scope_match(name: str, pattern: str) -> bool:
    pattern = pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern


class ChainStatus(str, Enum):
    """The outcome of path building on the served chain."""

    VERIFIED = "VERIFIED"
    INCOMPLETE = "INCOMPLETE"
    UNTRUSTED = "UNTRUSTED"
    EMPTY = "EMPTY"
    UNREADABLE = "UNREADABLE"  # a certificate is not valid PEM/DER (no client can use the chain)
    OVERSIZED = "OVERSIZED"  # more certificates or bytes than tlsguard considers: path building not attempted


@dataclass(frozen=True)
class ChainAnalysis:
    """Path building's verdict on a served chain.

    ``verified_path`` is the path the verifier built (leaf first, ending at a trust anchor); its earliest
    ``not_after`` is when clients stop trusting the domain, which is what expiry is measured against: a
    certificate that is served but not on that path (e.g. an expiring cross-signed root) does not count.
    """

    status: ChainStatus
    leaf: CertFacts | None
    served: tuple[CertFacts, ...]
    verified_path: tuple[CertFacts, ...] = ()
    misordered: bool = False
    missing_issuer: str | None = None
    error: str | None = None

    @property
    def effective_not_after(self) -> dt.datetime | None:
        if self.verified_path:
            return min(cert.not_after for cert in self.verified_path)
        return self.leaf.not_after if self.leaf else None


@dataclass(frozen=True)
class CasCandidate:
    """A CAS certificate that could be bound (ListUserCertificateOrder + GetUserCertificateDetail CertFilter=true)."""

    cert_id: int
    name: str
    common_name: str
    sans: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint_sha1: str = ""
    region: str = ""
    chain_pem: tuple[str, ...] = ()  # the public chain, leaf first (fetched only to vet a candidate)
