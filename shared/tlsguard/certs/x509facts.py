"""Read the facts tlsguard checks from X.509 certificates (PEM in, :class:`CertFacts` out).

Chains from a TLS server or from CAS are untrusted input: :func:`read_chain` reads them within
:class:`ChainLimits` and reports a certificate that is not valid PEM/DER, or a chain over the limits, as data (a
reason) instead of raising, so one broken domain becomes a finding and never stops a run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tlsguard.certs.model import CertFacts
from tlsguard.errors import CertificateUnreadable

if TYPE_CHECKING:
    from cryptography import x509

_BEGIN = "-----BEGIN CERTIFICATE-----"
_END = "-----END CERTIFICATE-----"


@dataclass(frozen=True)
class ChainLimits:
    """How much of a served (or CAS) chain tlsguard reads and how hard it tries to build a path through it.

    Real chains hold 2 to 4 certificates of 1 to 3 KB; anything near these limits is broken or hostile. Path
    building is a depth-first search over the served certificates that never repeats a (subject, key) pair, stops
    at ``max_path_depth`` certificates, and gives up after ``max_path_candidates`` issuer candidates or
    ``max_verifications`` full path validations: a looped or meshed set ends quickly with a reason.
    """

    max_certificates: int = 20
    max_certificate_bytes: int = 64 * 1024
    max_chain_bytes: int = 256 * 1024
    max_path_depth: int = 8
    max_path_candidates: int = 256
    max_verifications: int = 8


DEFAULT_LIMITS = ChainLimits()


@dataclass(frozen=True)
class ReadChain:
    """What :func:`read_chain` could read: the certificates considered (in order) and their facts, and why it
    stopped early (``unreadable``: a certificate is not valid PEM/DER; ``oversized``: over :class:`ChainLimits`)."""

    certificates: tuple[x509.Certificate, ...] = ()
    facts: tuple[CertFacts, ...] = ()
    served: int = 0  # PEM blocks in the text, whether considered or not
    unreadable: str | None = None
    oversized: str | None = None


def read_chain(pems: tuple[str, ...] | list[str] | str, limits: ChainLimits = DEFAULT_LIMITS) -> ReadChain:
    """Read the certificates of ``pems`` (leaf first) within ``limits``; never raises for their content.

    Stops at the first certificate that cannot be read or breaks a limit, keeping those read before it (so a
    readable leaf is still judged for expiry and hostname).
    """
    texts = [pems] if isinstance(pems, str) else list(pems)
    served = sum(text.count(_BEGIN) for text in texts)
    certificates: list[x509.Certificate] = []
    read_facts: list[CertFacts] = []
    total = 0

    def stopped(*, unreadable: str | None = None, oversized: str | None = None) -> ReadChain:
        return ReadChain(tuple(certificates), tuple(read_facts), served, unreadable, oversized)

    if not served:
        sample = next((text.strip() for text in texts if text.strip()), "")
        if sample:
            return stopped(unreadable=f"no PEM certificate block (the text starts {sample[:24]!r})")
        return stopped()
    # Base64 is 4/3 of the DER plus a newline every 64 characters: reject an oversized block before decoding it.
    max_block_chars = limits.max_certificate_bytes * 4 // 3 + limits.max_certificate_bytes // 48 + 64
    index = 0
    for text in texts:
        position = 0
        while True:
            start = text.find(_BEGIN, position)
            if start < 0:
                break
            index += 1
            where = f"certificate {index} of {served}"
            if index > limits.max_certificates:
                return stopped(oversized=f"{served} certificates served; at most {limits.max_certificates} are "
                                         "considered")
            end = text.find(_END, start)
            if end < 0:
                return stopped(unreadable=f"{where} has no END CERTIFICATE line")
            body = text[start + len(_BEGIN):end]
            position = end + len(_END)
            if len(body) > max_block_chars:
                return stopped(oversized=f"{where} is over the {limits.max_certificate_bytes}-byte limit "
                                         f"(about {len(body) * 3 // 4} bytes)")
            der, problem = _decode_base64(body)
            if der is None:
                return stopped(unreadable=f"{where} is not valid PEM ({problem})")
            if len(der) > limits.max_certificate_bytes:
                return stopped(oversized=f"{where} is {len(der)} bytes, over the "
                                         f"{limits.max_certificate_bytes}-byte limit")
            total += len(der)
            if total > limits.max_chain_bytes:
                return stopped(oversized=f"the chain is over the {limits.max_chain_bytes}-byte limit at {where}")
            try:
                certificate, certificate_facts = _parse_der(der)
            except CertificateUnreadable as exc:
                return stopped(unreadable=f"{where} {exc}")
            certificates.append(certificate)
            read_facts.append(certificate_facts)
    return stopped()


def _decode_base64(body: str) -> tuple[bytes | None, str]:
    import base64
    import binascii

    try:
        return base64.b64decode("".join(body.split()), validate=True), ""
    except (binascii.Error, ValueError) as exc:
        return None, f"bad base64: {exc}"


def _parse_der(der: bytes) -> tuple[x509.Certificate, CertFacts]:
    """One DER certificate and its facts; :class:`CertificateUnreadable` says why it cannot be read."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CertificateUnreadable(f"is not valid DER ({_short(exc)})") from exc
    try:  # extensions and keys are parsed lazily: a malformed one surfaces here
        return certificate, facts(certificate)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateUnreadable(f"cannot be read ({_short(exc)})") from exc


def _short(exc: Exception, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."


def load_pem_chain(pems: tuple[str, ...] | list[str] | str) -> list[x509.Certificate]:
    """Every certificate in ``pems`` (one PEM string holding several, or a sequence of PEM strings), in order.

    No limits: for trusted local input (the trust bundle). Served or CAS chains go through :func:`read_chain`.
    """
    from cryptography import x509

    texts = [pems] if isinstance(pems, str) else list(pems)
    certs: list[x509.Certificate] = []
    for text in texts:
        if text.strip():
            certs.extend(x509.load_pem_x509_certificates(text.encode()))
    return certs


def colon_hex(digest: bytes) -> str:
    """``DE:01:CF:...``: the fingerprint format OSS's ListCname shows."""
    return ":".join(f"{b:02X}" for b in digest)


def normalise_fingerprint(value: str) -> str:
    """A fingerprint in any common spelling (colons or not, any case) as upper-case colon hex."""
    hexdigits = "".join(ch for ch in value if ch.isalnum()).upper()
    return ":".join(hexdigits[i:i + 2] for i in range(0, len(hexdigits), 2))


def facts(cert: x509.Certificate) -> CertFacts:
    """The :class:`CertFacts` of one certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    cn_attrs = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    common_name = str(cn_attrs[0].value) if cn_attrs else ""
    try:
        san_ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        sans: tuple[str, ...] = tuple(san_ext.value.get_values_for_type(x509.DNSName)) + tuple(
            str(ip) for ip in san_ext.value.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        sans = ()
    try:
        is_ca = bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        is_ca = False
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        algorithm, bits = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        algorithm, bits = "EC", key.curve.key_size
    elif isinstance(key, ed25519.Ed25519PublicKey):
        algorithm, bits = "Ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        algorithm, bits = "Ed448", 456
    elif isinstance(key, dsa.DSAPublicKey):
        algorithm, bits = "DSA", key.key_size
    else:
        algorithm, bits = type(key).__name__, 0
    hash_algorithm = cert.signature_hash_algorithm
    return CertFacts(
        subject_cn=common_name,
        sans=sans,
        issuer=cert.issuer.rfc4514_string(),
        subject=cert.subject.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        fingerprint_sha1=colon_hex(cert.fingerprint(hashes.SHA1())),  # the format OSS shows
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        serial=format(cert.serial_number, "x"),
        is_ca=is_ca,
        self_issued=cert.issuer == cert.subject,
        key_algorithm=algorithm,
        key_bits=bits,
        signature_hash=hash_algorithm.name if hash_algorithm is not None else "",
    )


def facts_from_pem(pem: str) -> CertFacts:
    """The facts of the first certificate in ``pem``; :class:`CertificateUnreadable` (a ValueError) when it cannot
    be read or is over the size limit."""
    read = read_chain(pem, ChainLimits(max_certificates=1))
    if read.facts:
        return read.facts[0]
    raise CertificateUnreadable(read.unreadable or read.oversized or "no certificate in PEM text")


def utc(value: dt.datetime) -> dt.datetime:
    """``value`` as an aware UTC datetime (naive values are taken to be UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)
