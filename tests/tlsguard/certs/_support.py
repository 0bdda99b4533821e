"""Helpers for the certificate tests.

* A tiny PKI built with ``cryptography`` (roots, intermediates, leaves, cross-signatures, SHA-1 re-signing) for the
  pure tests of the ``cert.*`` checks and of the binding planner.
* Pure evaluation: a :class:`~tlsguard.policy.model.Desired` and a :class:`~tlsguard.facets.Actual` for one
  domain, judged by :func:`tlsguard.checks.evaluate` exactly as the lifecycle judges it.
* localcloud helpers: seed custom domains, CDN domains and CAS certificates, and run the one lifecycle over them
  (wired as the CLI wires it, :func:`tests.support.wiring_for`) at localcloud's time plus an offset.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tlsguard import runs
from tlsguard.certs.chain import TrustStore
from tlsguard.certs.model import ApiView, CasCandidate, CertPolicy, LiveView
from tlsguard.certs.x509facts import facts_from_pem
from tlsguard.checks import REGISTRY, evaluate
from tlsguard.facets import CERTIFICATE_FACET, Actual
from tlsguard.lifecycle import Lifecycle
from tlsguard.model import Finding, Mode, Severity, TargetKind, TargetRef
from tlsguard.policy.model import CdnHttpsPolicy, Desired

from tests.support import ACCOUNT, STATE_BUCKET, lifecycle_for, write_policy

if TYPE_CHECKING:
    from pathlib import Path

    from tlsguard.model import TargetResult
    from tlsguard.wiring import Wiring

    from localcloud.cloud import LocalCloud

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
REGION = "cn-hangzhou"


# -- a tiny PKI ------------------------------------------------------------------------------------------------
def _key(kind: str = "rsa", bits: int = 2048) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1() if bits == 256 else ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@dataclass
class Issued:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def fingerprint(self) -> str:
        return facts_from_pem(self.pem).fingerprint_sha1


class Pki:
    """Builds certificates: ``root()``, ``intermediate(root)``, ``leaf(issuer, ...)``, ``cross_sign(...)``."""

    def __init__(self) -> None:
        self._rsa = _key()

    def _build(self, subject: str, issuer: Issued | None, *, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
               ca: bool, sans: tuple[str, ...] = (), not_before: dt.datetime = NOW - 30 * DAY,
               not_after: dt.datetime = NOW + 335 * DAY, hash_algorithm: hashes.HashAlgorithm | None = None) -> Issued:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tlsguard tests")])
        signer_name = issuer.cert.subject if issuer else name
        signer_key = issuer.key if issuer else key
        builder = (x509.CertificateBuilder().subject_name(name).issuer_name(signer_name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before).not_valid_after(not_after)
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        if issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),  # type: ignore[arg-type]
                critical=False)
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=not ca, data_encipherment=False,
            key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False),
            critical=True)
        if not ca:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
        cert = builder.sign(signer_key, hashes.SHA256())  # type: ignore[arg-type]
        if isinstance(hash_algorithm, hashes.SHA1):
            cert = _resign_sha1(cert, signer_key)  # type: ignore[arg-type]
        return Issued(cert, key)

    def root(self, name: str = "Test Root CA", **kw: Any) -> Issued:
        return self._build(name, None, key=_key(), ca=True, not_before=NOW - 3650 * DAY,
                           not_after=NOW + 3650 * DAY, **kw)

    def intermediate(self, issuer: Issued, name: str = "Test Intermediate CA", **kw: Any) -> Issued:
        kw.setdefault("not_before", NOW - 365 * DAY)
        kw.setdefault("not_after", NOW + 1825 * DAY)
        return self._build(name, issuer, key=_key(), ca=True, **kw)

    def leaf(self, issuer: Issued, *sans: str, key_kind: str = "rsa", bits: int = 2048, **kw: Any) -> Issued:
        key = self._rsa if (key_kind, bits) == ("rsa", 2048) else _key(key_kind, bits)
        return self._build(sans[0] if sans else "leaf", issuer, key=key, ca=False, sans=sans, **kw)

    def cross_sign(self, subject_ca: Issued, by: Issued, *, not_after: dt.datetime) -> Issued:
        """``subject_ca``'s name and key, signed by ``by`` (the cross-signed root a chain may carry)."""
        builder = (x509.CertificateBuilder().subject_name(subject_ca.cert.subject).issuer_name(by.cert.subject)
                   .public_key(subject_ca.key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(NOW - 1000 * DAY).not_valid_after(not_after)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(
                       digital_signature=True, content_commitment=False, key_encipherment=False,
                       data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                       encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_ca.key.public_key()),
                                  critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       by.key.public_key()), critical=False))  # type: ignore[arg-type]
        return Issued(builder.sign(by.key, hashes.SHA256()), subject_ca.key)  # type: ignore[arg-type]


_SHA256_RSA_OID = bytes.fromhex("2a864886f70d01010b")  # sha256WithRSAEncryption
_SHA1_RSA_OID = bytes.fromhex("2a864886f70d010105")  # sha1WithRSAEncryption


def _resign_sha1(cert: x509.Certificate, signer_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """The same certificate signed with SHA-1 (OpenSSL 3 refuses to build one, so the DER is re-signed by hand).

    Both OIDs have the same length and an RSA signature's length depends only on the key, so swapping the
    algorithm identifier and the signature in place keeps every DER length valid.
    """
    from cryptography.hazmat.primitives.asymmetric import padding

    tbs = cert.tbs_certificate_bytes.replace(_SHA256_RSA_OID, _SHA1_RSA_OID)
    signature = signer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    der = cert.public_bytes(serialization.Encoding.DER)
    der = der.replace(cert.tbs_certificate_bytes, tbs).replace(cert.signature, signature)
    der = der.replace(_SHA256_RSA_OID, _SHA1_RSA_OID)
    return x509.load_der_x509_certificate(der)


@dataclass
class Hierarchy:
    root: Issued
    intermediate: Issued
    trust: TrustStore


def make_hierarchy(pki: Pki) -> Hierarchy:
    root = pki.root()
    inter = pki.intermediate(root)
    return Hierarchy(root, inter, TrustStore(roots=(root.cert,), source="test root"))


# -- pure evaluation ------------------------------------------------------------------------------------------
WWW = TargetRef(TargetKind.OSS_CNAME, "www.example.com", REGION, ACCOUNT, bucket="site")
CDN = TargetRef(TargetKind.CDN_DOMAIN, "cdn.example.com", "", ACCOUNT)
BOUND = ApiView(cert_id="7-cn-hangzhou", https_enabled=True)  # something is bound (cert.present is satisfied)


def cname(domain: str, bucket: str = "site") -> TargetRef:
    """A custom domain bound to ``bucket`` (in localcloud's region and default account)."""
    return TargetRef(TargetKind.OSS_CNAME, domain, REGION, ACCOUNT, bucket=bucket)


def cdn_domain(domain: str) -> TargetRef:
    return TargetRef(TargetKind.CDN_DOMAIN, domain, "", ACCOUNT)


def desired_for(target: TargetRef, policy: CertPolicy | None = None, cdn: CdnHttpsPolicy | None = None) -> Desired:
    """What the policy's ``certificates:`` section resolves to for one domain."""
    return Desired(target, Mode.ENFORCE, certs=policy or CertPolicy(),
                   cdn=(cdn or CdnHttpsPolicy()) if target.kind is TargetKind.CDN_DOMAIN else None)


def actual_for(target: TargetRef, chain: tuple[str, ...], trust: TrustStore, *, api: ApiView | None = None,
               live: LiveView | None = None, **facets: Any) -> Actual:
    """The facets the cert.* checks read: the bound certificate (API view) and the chain a handshake is served."""
    values = {CERTIFICATE_FACET[target.kind]: api or BOUND,
              "served_chain": live or LiveView(chain_pem=chain, endpoint="test"), **facets}
    return Actual(target, values, trust=trust)


def judge(chain: tuple[str, ...], trust: TrustStore, *, target: TargetRef = WWW, api: ApiView | None = None,
          live: LiveView | None = None, now: dt.datetime = NOW, policy: CertPolicy | None = None) -> list[Finding]:
    """Every applicable check on one domain, as the lifecycle evaluates it."""
    return evaluate(desired_for(target, policy), actual_for(target, chain, trust, api=api, live=live), now)


def found(findings: list[Finding] | tuple[Finding, ...] | TargetResult) -> set[str]:
    """``{"check/state"}`` of the findings (the state without the fingerprint that makes it per certificate)."""
    items = findings.findings if hasattr(findings, "findings") else findings
    return {f"{f.check}/{f.alert_state.split(':')[0]}" for f in items}


def drift(findings: list[Finding] | tuple[Finding, ...] | TargetResult) -> set[str]:
    """Like :func:`found`, without the notices (INFO findings never make a target drifted)."""
    items = findings.findings if hasattr(findings, "findings") else findings
    return found([f for f in items if f.severity is not Severity.INFO])


def one(findings: list[Finding] | tuple[Finding, ...], check: str) -> Finding:
    matching = [f for f in findings if f.check == check]
    assert len(matching) == 1, findings
    return matching[0]


def drifted_checks(findings: list[Finding], facet: str, kind: TargetKind) -> frozenset[str]:
    """The drifted checks a write of ``facet`` fixes: what the lifecycle hands that facet's planner."""
    return frozenset(f.check for f in findings if not f.waived and f.severity is not Severity.INFO
                     and REGISTRY.get(f.check).fix_facet(kind) == facet)


def cas_candidate(pki: Pki, issuer: Issued, cert_id: int, *sans: str, start: float = -1, end: float = 200,
                  **kw: Any) -> CasCandidate:
    """A CAS certificate (a real one, its public chain included) valid from NOW+start to NOW+end days."""
    names = sans or ("www.example.com",)
    leaf = pki.leaf(issuer, *names, not_before=NOW + start * DAY, not_after=NOW + end * DAY, **kw)
    return CasCandidate(cert_id=cert_id, name=f"cert-{cert_id}", common_name=names[0], sans=names,
                        not_before=NOW + start * DAY, not_after=NOW + end * DAY,
                        fingerprint_sha1=leaf.fingerprint.replace(":", ""), region=REGION,
                        chain_pem=(leaf.pem, issuer.pem))


# -- localcloud ------------------------------------------------------------------------------------------------
def domain_policy(tmp_path: Path, certificates: str = "", *, mode: str = "enforce", state: str = STATE_BUCKET,
                  extra: str = "", name: str = "tlsguard.yaml") -> Path:
    """A policy file for domains: the ``certificates:`` section given as YAML lines (already indented)."""
    text = f"version: 1\nmode: {mode}\ndefaults:\n  tls_versions: [TLSv1.2, TLSv1.3]\n"
    if state:
        text += f"state: {{bucket: {state}}}\n"
    if certificates:
        text += "certificates:\n" + certificates
    return write_policy(tmp_path, text + extra, name)


def seed_domains(cloud: LocalCloud, certs: list[dict[str, Any]], *, cnames: dict[str, str | None] | None = None,
                 cdn: dict[str, str] | None = None, bucket: str = "site") -> None:
    """Mint ``certs`` into CAS, bind them to custom domains of ``bucket`` (domain → certificate name, None: no
    certificate) and to CDN domains; the state bucket is created too."""
    cloud.seed({
        "certificates": certs,
        "buckets": [{"name": STATE_BUCKET},
                    {"name": bucket, "cnames": [{"domain": d, **({"certificate": c} if c else {})}
                                                for d, c in (cnames or {}).items()]}],
        "cdn_domains": [{"name": d, "certificate": c} for d, c in (cdn or {}).items()],
    })


def lifecycle_at(cloud: LocalCloud, policy_path: Path, *, later: float = 0.0, apply: bool = True,
                 mode: Mode | None = None, wiring: Wiring | None = None) -> Lifecycle:
    """:func:`tests.support.lifecycle_for`, judging at localcloud's time plus ``later`` seconds.

    Only tlsguard's clock moves: localcloud's own is never moved (it checks request signatures against it).
    """
    lifecycle = lifecycle_for(cloud, policy_path, apply=apply, mode=mode, wiring=wiring)
    if later:
        lifecycle.ctx.clock = lambda: cloud.clock.time() + later
    return lifecycle


def run_domains(cloud: LocalCloud, policy_path: Path, *, later: float = 0.0, apply: bool = False,
                wiring: Wiring | None = None) -> dict[str, TargetResult]:
    """One run over every custom domain and CDN domain (discovered as the sweep discovers them), by
    ``"<kind>:<name>"``."""
    lifecycle = lifecycle_at(cloud, policy_path, later=later, apply=apply, wiring=wiring)
    runs.start_run(lifecycle)
    discovery = runs.Discovery()
    kinds = frozenset({TargetKind.OSS_CNAME, TargetKind.CDN_DOMAIN})
    targets = list(runs.discover(lifecycle.ctx, kinds=kinds, report=discovery))
    results = list(runs.sweep(lifecycle, targets, concurrency=4))
    assert discovery.errors == []
    return {f"{r.target.kind.value}:{r.target.name}": r for r in results}


def served_fingerprint(wiring: Wiring, domain: str) -> str:
    """The SHA-1 fingerprint of the leaf a real handshake (SNI ``domain``) to localcloud's TLS plane gets."""
    assert wiring.ports.live is not None
    view = wiring.ports.live.served_chain(domain)
    assert view.chain_pem, view.error
    return facts_from_pem(view.chain_pem[0]).fingerprint_sha1


def cas_cert(cloud: LocalCloud, name: str) -> Any:
    cert = cloud.cas.find_by_name(cloud.default_account_id, name)
    assert cert is not None, name
    return cert


def run_one(cloud: LocalCloud, policy_path: Path, target: TargetRef, *, later: float = 0.0, apply: bool = True,
            mode: Mode | None = None, wiring: Wiring | None = None) -> TargetResult:
    """One target through the lifecycle, after the run's start (open intents reconciled, pending verifications
    listed), as ``tlsguard apply --target`` runs it."""
    lifecycle = lifecycle_at(cloud, policy_path, later=later, apply=apply, mode=mode, wiring=wiring)
    runs.start_run(lifecycle)
    return lifecycle.run(target)
