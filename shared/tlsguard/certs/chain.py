"""Path building on a served chain with ``cryptography.x509.verification`` (pure: store and time passed in).

The chain is judged exactly as served: the leaf is expected first and each certificate is expected to be
followed by its issuer (RFC 8446 §4.4.2 / RFC 5246 §7.4.2). A leaf served without its intermediate is
INCOMPLETE even though clients that fetch AIA or cache intermediates cope with it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tlsguard.certs.model import CertFacts, ChainAnalysis, ChainStatus
from tlsguard.certs.x509facts import DEFAULT_LIMITS, facts, load_pem_chain, read_chain

if TYPE_CHECKING:
    import datetime as dt

    from cryptography import x509
    from cryptography.x509.verification import Store

    from tlsguard.certs.x509facts import ChainLimits


@dataclass(frozen=True)
class TrustStore:
    """Trust anchors for path building: certifi's bundle by default, or a configured PEM bundle."""

    roots: tuple[x509.Certificate, ...]
    source: str

    def store(self) -> Store:
        return self._store

    @functools.cached_property
    def _store(self) -> Store:
        """Built once per trust store (about 1 ms for certifi's roots), not once per chain judged."""
        from cryptography.x509.verification import Store

        return Store(list(self.roots))

    def contains(self, cert: x509.Certificate) -> bool:
        return any(cert == root for root in self.roots)

    @functools.cached_property
    def subjects(self) -> frozenset[x509.Name]:
        """The anchors' subject names: a path ends where a certificate's issuer is one of them."""
        return frozenset(root.subject for root in self.roots)


def load_trust_store(bundle: str | Path | None = None) -> TrustStore:
    """Load the trust anchors: ``bundle`` (a PEM file) when given, else certifi's Mozilla bundle."""
    if bundle is None:
        import certifi

        bundle = certifi.where()
    path = Path(bundle)
    roots = tuple(load_pem_chain(path.read_text()))
    if not roots:
        raise ValueError(f"trust bundle {path} holds no certificate")
    return TrustStore(roots=roots, source=str(path))


def analyse_chain(chain_pem: tuple[str, ...], trust: TrustStore, now: dt.datetime,
                  limits: ChainLimits = DEFAULT_LIMITS) -> ChainAnalysis:
    """Build a path from the served leaf to a trust anchor and say what is wrong with the served chain.

    Validity in time is the expiry checks' business, so the path is built at ``now`` clamped into the leaf's
    validity window: an expired leaf does not also make the chain "untrusted". Hostname coverage is likewise a
    separate check, so the verifier is given a name the leaf itself claims.

    The chain is untrusted input: it is read within ``limits`` (a certificate that is not valid DER is
    UNREADABLE, a chain over the limits OVERSIZED) and the path search is bounded (see :class:`ChainLimits`), so
    this never raises for what a server or CAS sends and always ends quickly.
    """
    read = read_chain(chain_pem, limits)
    certs, served = list(read.certificates), read.facts
    leaf_index = next((i for i, f in enumerate(served) if not f.is_ca), 0)
    leaf = served[leaf_index] if served else None
    if read.unreadable:
        return ChainAnalysis(status=ChainStatus.UNREADABLE, leaf=leaf, served=served, error=read.unreadable)
    if read.oversized:
        return ChainAnalysis(status=ChainStatus.OVERSIZED, leaf=leaf, served=served, error=read.oversized)
    if leaf is None:
        return ChainAnalysis(status=ChainStatus.EMPTY, leaf=None, served=(), error="no certificate served")
    leaf_cert = certs[leaf_index]
    others = [cert for i, cert in enumerate(certs) if i != leaf_index]
    when = min(max(now, leaf.not_before), leaf.not_after)
    search = _PathSearch(leaf_cert, others, trust, when, limits)
    path = search.run()
    if path is None:
        if search.gave_up:
            return ChainAnalysis(status=ChainStatus.UNTRUSTED, leaf=leaf, served=served,
                                 misordered=_misordered(served, leaf_index), error=search.gave_up)
        if search.loop and not search.error:
            return ChainAnalysis(status=ChainStatus.UNTRUSTED, leaf=leaf, served=served,
                                 misordered=_misordered(served, leaf_index),
                                 error=f"chain contains a loop ({search.loop}): no path reaches a trust anchor")
        return _diagnose(certs, served, leaf_index, trust, search.error or search.fallback_error())
    path_facts = tuple(facts(cert) for cert in path)
    served_positions = [certs.index(cert) for cert in path if cert in certs]  # in path order
    misordered = leaf_index != 0 or served_positions != list(range(len(served_positions)))
    return ChainAnalysis(status=ChainStatus.VERIFIED, leaf=leaf, served=served, verified_path=path_facts,
                         misordered=misordered)


class _PathSearch:
    """Bounded path building: a depth-first search over the served certificates by issuer name.

    A path never repeats a (subject, public key) pair (RFC 4158 loop detection), holds at most
    ``max_path_depth`` certificates, and the search stops after ``max_path_candidates`` issuer candidates. Each
    path that reaches a certificate issued by a trust anchor is handed, alone, to ``cryptography``'s verifier
    (at most ``max_verifications`` times): given one linear path it does linear work, whereas given the whole
    served set it explores every combination (a mesh of 20 cross-signed certificates took 26 s, 40 over 90 s).
    """

    def __init__(self, leaf: x509.Certificate, others: list[x509.Certificate], trust: TrustStore,
                 when: dt.datetime, limits: ChainLimits) -> None:
        self.leaf = leaf
        self.pool = _distinct([cert for cert in others if cert != leaf])
        self.trust = trust
        self.when = when
        self.limits = limits
        self.error = ""  # the verifier's reason for the first anchored path it refused
        self.loop = ""  # the first loop met, as "A -> B -> A"
        self.gave_up = ""
        self.too_deep = False

    def run(self) -> list[x509.Certificate] | None:
        from cryptography.x509.verification import PolicyBuilder, VerificationError

        limits = self.limits
        by_subject: dict[x509.Name, list[x509.Certificate]] = {}
        for cert in self.pool:
            by_subject.setdefault(cert.subject, []).append(cert)
        identity = {id(cert): _identity(cert) for cert in [self.leaf, *self.pool]}
        anchors = self.trust.subjects
        try:
            verifier = PolicyBuilder().store(self.trust.store()).time(self.when).build_server_verifier(
                _subject_for(self.leaf))
        except ValueError as exc:
            self.error = str(exc)
            return None
        candidates = verifications = 0
        stack: list[list[x509.Certificate]] = [[self.leaf]]
        while stack:
            path = stack.pop()
            tip = path[-1]
            if tip.issuer in anchors:
                if verifications >= limits.max_verifications:
                    self.gave_up = (f"path building gave up after {verifications} candidate paths to a trust anchor "
                                    "were refused")
                    return None
                verifications += 1
                try:
                    return list(verifier.verify(self.leaf, path[1:]))
                except (VerificationError, ValueError) as exc:
                    self.error = self.error or str(exc)
            issuers = by_subject.get(tip.issuer, [])
            if not issuers:
                continue
            if len(path) >= limits.max_path_depth:
                self.too_deep = True
                continue
            on_path = {identity[id(cert)] for cert in path}
            for issuer in reversed(issuers):  # pushed in reverse: the one served first is tried first
                candidates += 1
                if candidates > limits.max_path_candidates:
                    self.gave_up = (f"path building gave up after {limits.max_path_candidates} candidates: the "
                                    f"{len(self.pool) + 1} served certificates issue each other in a mesh")
                    return None
                if identity[id(issuer)] in on_path:
                    self.loop = self.loop or " -> ".join(_label(cert) for cert in [*path, issuer])
                    continue
                stack.append([*path, issuer])
        return None

    def fallback_error(self) -> str:
        if self.too_deep:
            return f"no path of at most {self.limits.max_path_depth} certificates reaches a trust anchor"
        return "no served issuer chain reaches a trust anchor"


def _identity(cert: x509.Certificate) -> tuple[bytes, bytes]:
    """(subject, public key): a path that repeats it is a loop."""
    from cryptography.hazmat.primitives import serialization

    key = cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.subject.public_bytes(), key


def _distinct(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    """``certs`` without repeats (a server may send one intermediate twice), in served order."""
    seen: set[bytes] = set()
    out = []
    for cert in certs:
        fingerprint = cert.tbs_certificate_bytes + cert.signature
        if fingerprint not in seen:
            seen.add(fingerprint)
            out.append(cert)
    return out


def _label(cert: x509.Certificate) -> str:
    from cryptography import x509

    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def _misordered(served: tuple[CertFacts, ...], leaf_index: int) -> bool:
    return leaf_index != 0 or any(
        served[i].issuer != served[i + 1].subject for i in range(len(served) - 1) if not served[i].self_issued)


def _subject_for(leaf: x509.Certificate) -> x509.verification.Subject:
    """A name the leaf claims, so hostname matching never fails path building."""
    from cryptography import x509

    try:
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        sans = None
    if sans is not None:
        for name in sans.get_values_for_type(x509.DNSName):
            if name.startswith("*."):
                return x509.DNSName("tlsguard-wildcard-probe." + name[2:])
            return x509.DNSName(name)
        for ip in sans.get_values_for_type(x509.IPAddress):
            return x509.IPAddress(ip)
    return x509.DNSName("tlsguard-no-san.invalid")


def _diagnose(certs: list[x509.Certificate], served: tuple[CertFacts, ...], leaf_index: int, trust: TrustStore,
              error: str) -> ChainAnalysis:
    """Explain a failed path build: a missing issuer (INCOMPLETE) or an untrusted/rejected path (UNTRUSTED)."""
    leaf = served[leaf_index]
    misordered = _misordered(served, leaf_index)
    current, visited = certs[leaf_index], [certs[leaf_index]]
    while not trust.contains(current):
        if current.issuer == current.subject:
            return ChainAnalysis(status=ChainStatus.UNTRUSTED, leaf=leaf, served=served, misordered=misordered,
                                 error=f"path ends at a self-signed certificate no trust anchor matches: "
                                       f"{current.subject.rfc4514_string()}")
        issuer = next((c for c in certs if c.subject == current.issuer and c != current), None)
        if issuer is None:
            if any(root.subject == current.issuer for root in trust.roots):
                break
            return ChainAnalysis(status=ChainStatus.INCOMPLETE, leaf=leaf, served=served, misordered=misordered,
                                 missing_issuer=current.issuer.rfc4514_string(),
                                 error=f"issuer not served: {current.issuer.rfc4514_string()}")
        if issuer in visited:
            break
        visited.append(issuer)
        current = issuer
    return ChainAnalysis(status=ChainStatus.UNTRUSTED, leaf=leaf, served=served, misordered=misordered, error=error)
