"""Hostile certificates, chains and probe replies never crash or stall tlsguard (issue 14).

Real TLS servers on loopback (stdlib ``ssl`` serving chains minted with ``cryptography``, and raw-socket servers
speaking just enough TLS or HTTP to misbehave) present: a looped chain, meshes of cross-signed certificates, a chain
of 100 certificates, a 200 KB certificate, bytes that are not DER, a handshake that stalls, bytes dribbled one at a
time, and headers without end. Each case ends with a clear finding or error-as-data, within a memory bound measured
with tracemalloc; time is bounded only by a generous hang guard (``pytest.mark.timeout``), never asserted tightly.
A renewal run (``tlsguard apply --kind oss-cname --kind cdn-domain``) where one domain serves bad DER and CAS holds
a certificate whose chain is not DER still ends every other domain with its outcome.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import ssl
import struct
import tempfile
import threading
import tracemalloc
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from tlsguard.adapters.live import MAX_HEADER_BYTES, LiveProber
from tlsguard.certs.chain import TrustStore, analyse_chain
from tlsguard.certs.live import collect_live
from tlsguard.certs.model import ChainStatus, LiveView
from tlsguard.certs.x509facts import ChainLimits, read_chain
from tlsguard.checks import Unfixable, evaluate
from tlsguard.checks.cert import plan_binding
from tlsguard.checks.registry import BOUND_CERTIFICATE, resolve_facet
from tlsguard.cli import cli
from tlsguard.model import Action, Finding, Severity

from tests.support import STATE_BUCKET
from tests.tlsguard.certs._support import NOW as CAS_NOW
from tests.tlsguard.certs._support import (
    WWW,
    Pki,
    actual_for,
    cas_candidate,
    desired_for,
    domain_policy,
    drifted_checks,
    judge,
    make_hierarchy,
)
from tests.tlsguard.probe.tls_servers import TlsTestServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from localcloud.cloud import LocalCloud

LOCALHOST = "127.0.0.1"
NOW = dt.datetime.now(dt.timezone.utc)
DAY = dt.timedelta(days=1)
#: Probe timeout per connection in these tests: small, so hostile servers cost about a second each.
TIMEOUT = 0.5
#: Peak Python heap any one hostile case may cost (tracemalloc); the inputs are up to a few hundred KB.
MEMORY_BOUND = 16 * 1024 * 1024
#: A hang guard, not a speed target: before the fix a mesh took 29 s at 21 certificates and a dribbling HTTP
#: endpoint kept a verification waiting for as long as it kept dribbling.
HANG_GUARD = 60


# -- certificates ----------------------------------------------------------------------------------------------
class Ca:
    """A name and a key that sign certificates (P-256: minting dozens of them stays fast)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def issue(subject: str, subject_key: ec.EllipticCurvePrivateKey, issuer: Ca, *, ca: bool,
          sans: tuple[str, ...] = (), extra: x509.ExtensionType | None = None) -> x509.Certificate:
    """A certificate strict enough for ``cryptography``'s verifier (SKI, AKI, key usage, EKU on leaves)."""
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer.name))
               .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - DAY).not_valid_after(NOW + 90 * DAY)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                              critical=False)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                                            crl_sign=ca, encipher_only=False, decipher_only=False), critical=True))
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False)
    if extra is not None:
        builder = builder.add_extension(extra, critical=False)
    return builder.sign(issuer.key, hashes.SHA256())


class Served:
    """A chain as a server sends it (leaf first), the leaf's key, and the anchors it is judged against."""

    def __init__(self, chain: list[x509.Certificate], key: ec.EllipticCurvePrivateKey, roots: list[Ca]) -> None:
        self.chain = chain
        self.key = key
        self.trust = TrustStore(roots=tuple(issue(r.name, r.key, r, ca=True) for r in roots), source="test")

    @property
    def pem(self) -> tuple[str, ...]:
        return tuple(c.public_bytes(serialization.Encoding.PEM).decode() for c in self.chain)


def leaf_under(issuer: Ca, host: str = WWW.name, *, extra: x509.ExtensionType | None = None) -> tuple[
        x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    return issue(host, key, issuer, ca=False, sans=(host,), extra=extra), key


def looped_chain() -> Served:
    """leaf <- A, A <- B, B <- A: every issuer is served, and none leads to a trust anchor."""
    a, b = Ca("Loop CA A"), Ca("Loop CA B")
    leaf, key = leaf_under(a)
    return Served([leaf, issue(a.name, a.key, b, ca=True), issue(b.name, b.key, a, ca=True)], key,
                  [Ca("Unrelated Root")])


def meshed_chain(count: int, names: int = 5) -> Served:
    """``count`` certificates in all: ``names`` CAs cross-signing each other in every direction, and a leaf."""
    cas = [Ca(f"Mesh CA {i}") for i in range(names)]
    mesh: list[x509.Certificate] = []
    while len(mesh) < count - 1:
        for subject in cas:
            for issuer in cas:
                if subject is not issuer and len(mesh) < count - 1:
                    mesh.append(issue(subject.name, subject.key, issuer, ca=True))
    leaf, key = leaf_under(cas[0])
    return Served([leaf, *mesh], key, [Ca("Mesh Root")])


def long_chain(count: int) -> Served:
    """Root -> I1 -> ... -> I(count-1) -> leaf, served leaf first with every intermediate."""
    root = Ca("Long Root")
    issuers = [root]
    intermediates = []
    for i in range(1, count):
        ca = Ca(f"Long CA {i}")
        intermediates.append(issue(ca.name, ca.key, issuers[-1], ca=True))
        issuers.append(ca)
    leaf, key = leaf_under(issuers[-1])
    return Served([leaf, *reversed(intermediates)], key, [root])


def huge_chain(extension_bytes: int = 200 * 1024) -> Served:
    """A valid chain whose leaf carries a ``extension_bytes`` private extension."""
    root, inter = Ca("Huge Root"), Ca("Huge Intermediate")
    big = x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x04" * extension_bytes)
    leaf, key = leaf_under(inter, extra=big)
    return Served([leaf, issue(inter.name, inter.key, root, ca=True)], key, [root])


def good_chain() -> Served:
    root, inter = Ca("Good Root"), Ca("Good Intermediate")
    leaf, key = leaf_under(inter)
    return Served([leaf, issue(inter.name, inter.key, root, ca=True)], key, [root])


# -- servers -----------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def tls_server(served: Served) -> Iterator[int]:
    """A real stdlib-ssl server on loopback sending ``served.chain`` exactly as given (OpenSSL sends extra chain
    certificates without judging them)."""
    with tempfile.TemporaryDirectory() as workdir:
        chain_file, key_file = Path(workdir) / "chain.pem", Path(workdir) / "key.pem"
        chain_file.write_text("".join(served.pem))
        key_file.write_bytes(served.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(chain_file, key_file)
        server = TlsTestServer(context)
        try:
            yield server.port
        finally:
            server.stop()


@contextlib.contextmanager
def raw_server(handler: Callable[[socket.socket, threading.Event], None]) -> Iterator[int]:
    """A loopback server answering every connection with ``handler(conn, stopping)``; yields its port."""
    listener = socket.create_server((LOCALHOST, 0), backlog=64)
    stopping = threading.Event()

    def handle(conn: socket.socket) -> None:
        try:
            handler(conn, stopping)
        except OSError:
            pass  # the client gave up and closed: what a bounded client does
        finally:
            conn.close()

    def serve() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stopping.set()
        listener.close()


def tls12_flight(certificates: list[bytes]) -> bytes:
    """ServerHello (TLS 1.2, ECDHE-RSA-AES128-GCM-SHA256), Certificate holding ``certificates``, ServerHelloDone."""
    def message(kind: int, body: bytes) -> bytes:
        return bytes([kind]) + len(body).to_bytes(3, "big") + body

    hello = struct.pack("!H", 0x0303) + os.urandom(32) + b"\x00" + struct.pack("!H", 0xC02F) + b"\x00"
    listed = b"".join(len(c).to_bytes(3, "big") + c for c in certificates)
    handshake = message(2, hello) + message(11, len(listed).to_bytes(3, "big") + listed) + message(14, b"")
    return b"".join(struct.pack("!BHH", 22, 0x0303, len(handshake[i:i + 16384])) + handshake[i:i + 16384]
                    for i in range(0, len(handshake), 16384))


def serve_not_der(conn: socket.socket, stopping: threading.Event) -> None:
    """A TLS 1.2 server whose Certificate message holds bytes that are not DER (a truncated SEQUENCE, then junk)."""
    conn.recv(65536)
    conn.sendall(tls12_flight([b"\x30\x82\x04\x00" + b"not a certificate, just bytes " * 8]))
    stopping.wait(5)


def serve_stall(conn: socket.socket, stopping: threading.Event) -> None:
    """Reads the ClientHello, sends the first bytes of a ServerHello, then nothing."""
    conn.recv(65536)
    conn.sendall(tls12_flight([b"x"])[:20])
    stopping.wait(60)


def serve_dribble(conn: socket.socket, stopping: threading.Event) -> None:
    """A plausible TLS flight, one byte every 20 ms: always alive, never done."""
    conn.recv(65536)
    for byte in tls12_flight([os.urandom(4000)]):
        conn.sendall(bytes([byte]))
        if stopping.wait(0.02):
            return


def serve_endless_headers(conn: socket.socket, stopping: threading.Event) -> None:
    """HTTP/1.1 200, then header lines of 1 KB without end (up to 64 MB, or until the client hangs up)."""
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    for _ in range(64 * 1024):
        if stopping.is_set():
            return
        conn.sendall(line)


def serve_dribbled_headers(conn: socket.socket, stopping: threading.Event) -> None:
    """HTTP/1.1 200, then short headers one byte every 20 ms: each read is quick, the answer never ends."""
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    while True:
        for byte in b"X-Slow: 1\r\n":
            conn.sendall(bytes([byte]))
            if stopping.wait(0.02):
                return


# -- measuring ---------------------------------------------------------------------------------------------------
def peak_memory(work: Callable[[], Any]) -> tuple[Any, int]:
    """``work()`` and the peak Python heap it allocated (tracemalloc)."""
    tracemalloc.start()
    try:
        result = work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def live_findings(port: int, served: Served) -> tuple[LiveView, list[Finding]]:
    """A real handshake with SNI to ``port`` (as the served_chain facet makes it), then every cert.* check."""
    live = collect_live(WWW.name, connect=(LOCALHOST, port), timeout=TIMEOUT)
    return live, judge((), served.trust, live=live, now=NOW)


def chain_finding(findings: list[Finding]) -> Finding:
    [finding] = [f for f in findings if f.check == "cert.chain" and f.severity is Severity.HIGH]
    return finding


# -- chains served by real TLS servers ---------------------------------------------------------------------------
@pytest.mark.timeout(HANG_GUARD)
def test_looped_chain_is_a_finding_naming_the_loop() -> None:
    served = looped_chain()
    with tls_server(served) as port:
        (live, findings), peak = peak_memory(lambda: live_findings(port, served))
    assert len(live.chain_pem) == 3, live.error
    finding = chain_finding(findings)
    assert finding.alert_state == "untrusted"
    assert "chain contains a loop (www.example.com -> Loop CA A -> Loop CA B -> Loop CA A)" in finding.message
    assert peak < MEMORY_BOUND


@pytest.mark.timeout(HANG_GUARD)
def test_a_mesh_within_the_count_limit_ends_with_path_building_giving_up() -> None:
    served = meshed_chain(20)  # 20 certificates: read and searched; before the fix this took ~17 s
    with tls_server(served) as port:
        (live, findings), peak = peak_memory(lambda: live_findings(port, served))
    assert len(live.chain_pem) == 20, live.error
    finding = chain_finding(findings)
    assert "path building gave up after 256 candidates" in finding.message, finding.message
    assert peak < MEMORY_BOUND


@pytest.mark.timeout(HANG_GUARD)
@pytest.mark.parametrize("count", [21, 40])
def test_a_mesh_over_the_count_limit_is_an_oversized_finding(count: int) -> None:
    served = meshed_chain(count)  # before the fix: 29 s at 21 certificates, over 60 s beyond
    with tls_server(served) as port:
        (live, findings), peak = peak_memory(lambda: live_findings(port, served))
    assert len(live.chain_pem) == count, live.error
    finding = chain_finding(findings)
    assert finding.alert_state == "oversized"
    assert f"{count} certificates served; at most 20 are considered" in finding.message
    assert peak < MEMORY_BOUND


@pytest.mark.timeout(HANG_GUARD)
def test_a_chain_of_100_certificates_is_an_oversized_finding_and_the_leaf_is_still_judged() -> None:
    served = long_chain(100)
    with tls_server(served) as port:
        (live, findings), peak = peak_memory(lambda: live_findings(port, served))
    assert len(live.chain_pem) == 100, live.error
    assert "100 certificates served; at most 20 are considered" in chain_finding(findings).message
    assert not [f for f in findings if f.check in ("cert.hostname", "cert.expiry") and f.severity
                is not Severity.INFO]  # the leaf was read: it covers the name and is valid
    assert peak < MEMORY_BOUND


@pytest.mark.timeout(HANG_GUARD)
def test_a_200_kb_certificate_stops_at_the_probe_limit_with_a_reason() -> None:
    served = huge_chain()
    with tls_server(served) as port:
        (live, findings), peak = peak_memory(lambda: live_findings(port, served))
    assert not live.chain_pem
    assert "exceeds the 131072-byte limit" in (live.error or ""), live.error
    [reachable] = [f for f in findings if f.check == "cert.reachable"]
    assert "exceeds the 131072-byte limit" in reachable.message
    assert peak < MEMORY_BOUND


@pytest.mark.timeout(HANG_GUARD)
def test_bytes_that_are_not_der_are_a_finding_not_an_exception() -> None:
    served = good_chain()  # only its trust store is used: the server sends junk
    with raw_server(serve_not_der) as port:
        (live, findings), peak = peak_memory(lambda: live_findings(port, served))
    assert len(live.chain_pem) == 1
    finding = chain_finding(findings)
    assert finding.alert_state == "unreadable"
    assert "certificate 1 of 1 is not valid DER" in finding.message
    assert peak < MEMORY_BOUND


@pytest.mark.timeout(HANG_GUARD)
def test_a_good_chain_still_verifies() -> None:
    served = good_chain()
    with tls_server(served) as port:
        live, findings = live_findings(port, served)
    assert len(live.chain_pem) == 2
    assert analyse_chain(live.chain_pem, served.trust, NOW).status is ChainStatus.VERIFIED
    assert [f for f in findings if f.severity is not Severity.INFO] == []


# -- probe replies: stalls, dribbles, endless headers -------------------------------------------------------------
@pytest.mark.timeout(HANG_GUARD)
@pytest.mark.parametrize(("handler", "reason"), [
    (serve_stall, "server stalled"),
    (serve_dribble, "before the deadline"),
])
def test_a_stalling_or_dribbling_tls_server_ends_the_live_view_with_a_reason(
        handler: Callable[[socket.socket, threading.Event], None], reason: str) -> None:
    with raw_server(handler) as port:
        live, peak = peak_memory(lambda: collect_live(WWW.name, connect=(LOCALHOST, port), timeout=TIMEOUT))
    assert not live.chain_pem and reason in (live.error or ""), live.error
    assert peak < MEMORY_BOUND


@pytest.mark.timeout(HANG_GUARD)
@pytest.mark.parametrize(("handler", "https", "reason"), [
    (serve_stall, True, "handshake operation timed out"),  # a socket timeout bounds the whole handshake
    (serve_dribble, True, "handshake operation timed out"),
    (serve_dribbled_headers, False, "no complete answer before the deadline"),
    (serve_endless_headers, False, ""),
])
def test_http_reads_of_live_verification_end_by_the_deadline_and_the_byte_cap(
        handler: Callable[[socket.socket, threading.Event], None], https: bool, reason: str) -> None:
    with raw_server(handler) as port:
        prober = LiveProber(connect=(LOCALHOST, port), http_connect=(LOCALHOST, port), timeout=TIMEOUT)
        (status, headers, error), peak = peak_memory(lambda: prober.http_answer(WWW.name, https=https))
    assert status == 0 and headers == {} and error, error
    if reason:
        assert reason in error
    else:  # http.client's 100-header limit or tlsguard's byte cap, whichever comes first
        assert "more than 100 headers" in error or f"over the {MAX_HEADER_BYTES}-byte limit" in error, error
    assert peak < MEMORY_BOUND


@pytest.mark.timeout(HANG_GUARD)
def test_long_header_lines_stop_at_the_byte_cap() -> None:
    def serve(conn: socket.socket, stopping: threading.Event) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        line = b"X-Long: " + b"b" * 60000 + b"\r\n"  # under http.client's 64 KiB line limit, 30 of them
        for _ in range(30):
            if stopping.is_set():
                return
            conn.sendall(line)

    with raw_server(serve) as port:
        prober = LiveProber(http_connect=(LOCALHOST, port), timeout=TIMEOUT)
        (status, _, error), peak = peak_memory(lambda: prober.http_answer(WWW.name, https=False))
    assert status == 0 and error == f"headers over the {MAX_HEADER_BYTES}-byte limit"
    assert peak < MEMORY_BOUND


# -- chain analysis alone (the same inputs from CAS or anywhere else) ---------------------------------------------
@pytest.mark.unit
def test_path_building_stays_bounded_even_when_the_count_limit_is_raised() -> None:
    served = meshed_chain(40)
    limits = ChainLimits(max_certificates=64)
    analysis, peak = peak_memory(lambda: analyse_chain(served.pem, served.trust, NOW, limits))
    assert analysis.status is ChainStatus.UNTRUSTED
    assert analysis.error == ("path building gave up after 256 candidates: the 40 served certificates issue each "
                              "other in a mesh")
    assert peak < MEMORY_BOUND


@pytest.mark.unit
def test_a_chain_longer_than_the_path_depth_says_so() -> None:
    served = long_chain(12)
    analysis = analyse_chain(served.pem, served.trust, NOW)
    assert analysis.status is ChainStatus.UNTRUSTED
    assert analysis.error == "no path of at most 8 certificates reaches a trust anchor"
    assert analyse_chain(long_chain(5).pem, long_chain(5).trust, NOW).status is ChainStatus.UNTRUSTED  # other root
    five = long_chain(5)
    assert analyse_chain(five.pem, five.trust, NOW).status is ChainStatus.VERIFIED


@pytest.mark.unit
def test_a_huge_certificate_from_cas_is_oversized_and_read_in_bounded_memory() -> None:
    served = huge_chain()
    analysis, peak = peak_memory(lambda: analyse_chain(served.pem, served.trust, NOW))
    assert analysis.status is ChainStatus.OVERSIZED and analysis.leaf is None
    assert analysis.error is not None and "certificate 1 of 2 is over the 65536-byte limit" in analysis.error
    assert peak < MEMORY_BOUND


@pytest.mark.unit
@pytest.mark.parametrize(("text", "reason"), [
    ("this is not a certificate", "no PEM certificate block (the text starts 'this is not a certificat')"),
    ("-----BEGIN CERTIFICATE-----\nbm90IGRlcg==\n-----END CERTIFICATE-----\n", "certificate 1 of 1 is not valid DER"),
    ("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "certificate 1 of 1 is not valid PEM"),
    ("-----BEGIN CERTIFICATE-----\nMIIB\n", "certificate 1 of 1 has no END CERTIFICATE line"),
])
def test_text_that_is_not_a_certificate_is_unreadable_with_a_reason(text: str, reason: str) -> None:
    read = read_chain((text,))
    assert read.certificates == () and read.unreadable is not None and reason in read.unreadable
    analysis = analyse_chain((text,), good_chain().trust, NOW)
    assert analysis.status is ChainStatus.UNREADABLE and analysis.leaf is None


@pytest.mark.unit
def test_a_readable_leaf_before_a_broken_intermediate_is_still_judged() -> None:
    served = good_chain()
    garbage = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n"
    findings = judge((served.pem[0], garbage), served.trust, now=NOW)
    finding = chain_finding(findings)
    assert "certificate 2 of 2 is not valid DER" in finding.message
    assert {f.check for f in findings if f.severity is not Severity.INFO} == {"cert.chain"}


# -- CAS answers that are not certificates ------------------------------------------------------------------------
@pytest.mark.unit
def test_a_cas_certificate_whose_chain_is_not_der_is_rejected_with_its_reason_and_a_good_one_bound() -> None:
    pki = Pki()
    hierarchy = make_hierarchy(pki)
    due = pki.leaf(hierarchy.intermediate, WWW.name, not_before=CAS_NOW - 380 * DAY, not_after=CAS_NOW + 10 * DAY)
    actual = actual_for(WWW, (due.pem, hierarchy.intermediate.pem), hierarchy.trust)
    desired = desired_for(WWW)
    facet = resolve_facet(BOUND_CERTIFICATE, WWW.kind)
    checks = drifted_checks(evaluate(desired, actual, CAS_NOW), facet, WWW.kind)
    assert checks == {"cert.expiry"}
    good = cas_candidate(pki, hierarchy.intermediate, 1, end=300)
    garbage = "-----BEGIN CERTIFICATE-----\nMIIBAAAAbm90IGRlcg==\n-----END CERTIFICATE-----\n"
    newer = cas_candidate(pki, hierarchy.intermediate, 2, end=400)  # would win if its chain were readable
    broken_chain = replace(newer, chain_pem=(newer.chain_pem[0], garbage))
    not_pem = replace(cas_candidate(pki, hierarchy.intermediate, 3, end=500), chain_pem=("not a certificate",))
    actual.values["cas_candidates"] = [good, broken_chain, not_pem]
    planned = plan_binding(desired, actual, checks, CAS_NOW)
    assert isinstance(planned, Action) and planned.after["cert_id"] == "1-cn-hangzhou", planned
    actual.values["cas_candidates"] = [broken_chain, not_pem]
    refused = plan_binding(desired, actual, checks, CAS_NOW)
    assert isinstance(refused, Unfixable)
    assert "2 (cert-2): its chain cannot be used (certificate 2 of 2 is not valid DER" in refused.reason
    assert "3 (cert-3): its certificate is not valid PEM (no PEM certificate block" in refused.reason


class HostileCas:
    """A loopback HTTP server answering CAS's RPC actions with hostile bodies, for the real aliyun-python-sdk-core
    client: ids that are no numbers, a TotalCount that never ends, dates out of range, a ``Cert`` that is no PEM."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        self.calls: list[str] = []
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                action = query.get("Action", "")
                hostile.calls.append(action)
                body = json.dumps(hostile.answer(action, query)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST

        self.server = ThreadingHTTPServer((LOCALHOST, 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def answer(action: str, query: dict[str, str]) -> dict[str, Any]:
        if action == "ListUserCertificateOrder":
            return {"TotalCount": 10**9, "CertificateOrderList": [{"CertificateId": "x1"}, {"CertificateId": 7},
                                                                   {"CertificateId": 8}]}
        if query.get("CertFilter") == "false":
            return {"Id": 7, "Cert": "this is not a certificate", "Key": "secret"}
        if query.get("CertId") == "8":
            return {"Id": 8, "Common": "www.example.com", "NotBefore": "9" * 30, "NotAfter": "9" * 30}
        return {"Id": 7, "Name": "ok", "Common": "www.example.com", "Sans": "www.example.com",
                "StartDate": "2026-01-01", "EndDate": "2027-01-01"}

    def cas(self) -> Any:
        from tlsguard.adapters.cas import AliyunCas
        from tlsguard.certs._rpc import RpcConnection

        port = self.server.server_address[1]
        return AliyunCas(RpcConnection(region="cn-hangzhou", access_key_id="LTAItest", access_key_secret="secret",
                                       domain=f"{LOCALHOST}:{port}", protocol="http"))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.timeout(HANG_GUARD)
def test_hostile_cas_answers_are_bounded_and_never_raise() -> None:
    from tlsguard.adapters.cas import MAX_PAGES

    hostile = HostileCas()
    try:
        cas = hostile.cas()
        candidates, peak = peak_memory(cas.candidates)
        chain = cas.certificate_chain(7)
    finally:
        hostile.stop()
    # "x1" is no id and is skipped; 8's dates are out of range: it is no candidate, and the others still are.
    assert [c.cert_id for c in candidates] == [7] * MAX_PAGES
    assert hostile.calls.count("ListUserCertificateOrder") == MAX_PAGES  # a TotalCount of 10^9 stops at the cap
    # A Cert that is not PEM reaches vetting as it is, which then says why it cannot be bound.
    assert chain == ("this is not a certificate",)
    assert read_chain(chain).unreadable == "no PEM certificate block (the text starts 'this is not a certificat')"
    assert peak < MEMORY_BOUND


# -- a renewal run where one domain serves bad DER and CAS holds a chain that is not DER --------------------------
class SniRouter:
    """A TCP front on loopback that sends each TLS connection to a server chosen by its SNI: named hosts to their
    own (hostile) server, everything else, plain HTTP included, to localcloud's TLS plane, like an edge in front of
    one broken origin."""

    def __init__(self, default: tuple[str, int], routes: dict[str, tuple[str, int]]) -> None:
        self.default = default
        self.routes = routes
        self.listener = socket.create_server((LOCALHOST, 0), backlog=256)
        self.port = int(self.listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._route, args=(conn,), daemon=True).start()

    def _route(self, conn: socket.socket) -> None:
        from localcloud.tls.clienthello import NeedMore, NotTls, parse_client_hello

        conn.settimeout(10)
        data, upstream = b"", self.default
        try:
            while len(data) < 65536:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
                try:
                    upstream = self.routes.get(parse_client_hello(data).server_name or "", self.default)
                    break
                except NeedMore:
                    continue
                except NotTls:
                    break
            with socket.create_connection(upstream, timeout=10) as peer:
                peer.sendall(data)
                pump = threading.Thread(target=self._pump, args=(peer, conn), daemon=True)
                pump.start()
                self._pump(conn, peer)
                pump.join(10)
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stop(self) -> None:
        self.listener.close()


#: The renewal run's seed: shop.example.com due (9 days left, a valid one waiting in CAS), www and cdn fine, and
#: bad.example.com, whose TLS connections the SNI router sends to a server answering with bytes that are not DER.
RENEWAL_SEED: dict[str, Any] = {
    "certificates": [
        {"name": "shop-old", "kind": "expiring", "domains": ["shop.example.com"], "days": 9},
        {"name": "shop-new", "kind": "valid", "domains": ["shop.example.com"]},
        {"name": "www", "kind": "valid", "domains": ["www.example.com"]},
        {"name": "bad", "kind": "valid", "domains": ["bad.example.com"]},
        {"name": "cdn", "kind": "valid", "domains": ["cdn.example.com"], "days": 60},
    ],
    "buckets": [{"name": STATE_BUCKET},
                {"name": "site", "cnames": [{"domain": "shop.example.com", "certificate": "shop-old"},
                                            {"domain": "www.example.com", "certificate": "www"},
                                            {"domain": "bad.example.com", "certificate": "bad"}]}],
    "cdn_domains": [{"name": "cdn.example.com", "certificate": "cdn"}],
}


@pytest.mark.timeout(HANG_GUARD * 2)
def test_a_renewal_run_where_one_domain_serves_bad_der_still_ends_every_domain(
        cloud: LocalCloud, endpoints_file: Path, tmp_path: Path) -> None:
    cloud.seed(RENEWAL_SEED)
    endpoints = json.loads(endpoints_file.read_text())
    with raw_server(serve_not_der) as hostile:
        router = SniRouter((str(endpoints.get("host") or LOCALHOST), int(endpoints["tls_port"])),
                           {"bad.example.com": (LOCALHOST, hostile)})
        try:
            routed = tmp_path / "routed-endpoints.json"
            routed.write_text(json.dumps({**endpoints, "tls_port": router.port}))
            result = CliRunner().invoke(cli, ["apply", "--policy", str(domain_policy(tmp_path)), "--localcloud",
                                              str(routed), "--kind", "oss-cname", "--kind", "cdn-domain", "--json"])
        finally:
            router.stop()
    assert "Traceback" not in result.output, result.output
    document = json.loads(result.stdout)
    items = {item["target"]["name"]: item for item in document["targets"]}
    assert {name: item["outcome"] for name, item in items.items()} == {
        "shop.example.com": "remediated", "www.example.com": "compliant", "cdn.example.com": "compliant",
        "bad.example.com": "drifted"}
    assert all(item["reason"] for item in items.values()), items
    # The renewal due elsewhere went ahead.
    shop_new = cloud.cas.find_by_name(cloud.default_account_id, "shop-new")
    assert shop_new is not None
    [action] = items["shop.example.com"]["actions"]
    assert action["params"]["CertId"] == cloud.cas.oss_cert_id(shop_new)
    # The domain serving bad DER: a finding with the reason, and no crash for anyone.
    bad = items["bad.example.com"]
    [finding] = [f for f in bad["findings"] if f["check"] == "cert.chain"]
    assert finding["severity"] == "HIGH" and "certificate 1 of 1 is not valid DER" in finding["message"]
    assert bad["error_code"] != "BUG" and "BUG" not in bad["reason"]
