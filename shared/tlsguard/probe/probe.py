"""Probe one endpoint (or many) with the fewest connections that decide a TLS policy.

Connections per endpoint:

* one per protocol version (a ClientHello at exactly that version offering every suite the probe knows);
* per accepted version the policy constrains, one ClientHello offering exactly the disallowed suites: an alert
  settles it, a ServerHello names one accepted disallowed suite, which is removed before asking again (bounded by
  ``max_cipher_rounds``); a suite the version probe already saw chosen is not asked for twice;
* the served chain comes from the TLS 1.2 probe's plaintext Certificate message, or, for a TLS 1.3-only endpoint,
  from the TLS 1.3 probe itself by decrypting the server's handshake (:mod:`tlsguard.probe.tls13`); only when that
  is impossible (a HelloRetryRequest: the server wants neither X25519 nor P-256) does one stdlib ``ssl``
  handshake fetch it.
"""

from __future__ import annotations

import socket
import ssl
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tlsguard.probe.errors import ProbeConnectError, ProbeError, ProbeProtocolError, ProbeTimeout
from tlsguard.probe.model import PROBED_VERSIONS, CipherCheck, ProbeReport, ProbeTarget, ServedChain, VersionResult
from tlsguard.probe.suites import LEGACY_SUITES, TLS13_SUITES, CipherSuite, name_of
from tlsguard.probe.tls13 import KeyShares
from tlsguard.probe.wire import (
    VERSION_CODES,
    VERSION_NAMES,
    Limits,
    ServerAnswer,
    build_client_hello,
    read_server_answer,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from tlsguard.probe.policy import TlsPolicy


@dataclass(frozen=True)
class ProbeOptions:
    """Budgets: ``timeout`` per connection (connect + answer), ``total_timeout`` per endpoint, byte limits."""

    timeout: float = 5.0
    total_timeout: float = 30.0
    limits: Limits = field(default_factory=Limits)
    max_cipher_rounds: int = 16
    versions: tuple[str, ...] = PROBED_VERSIONS
    collect_chain: bool = True


def _preference(suite: CipherSuite) -> tuple[int, int, int]:
    """Offer forward-secret AEAD suites first, so a client-preference server picks a realistic suite."""
    name = suite.iana_name
    forward_secret = "ECDHE" in name or "DHE" in name or suite.tls13
    aead = "GCM" in name or "CHACHA20" in name or "CCM" in name
    return (0 if forward_secret else 1, 0 if aead else 1, 1 if "NULL" in name or "anon" in name else 0)


_LEGACY_OFFER: tuple[int, ...] = tuple(s.code for s in sorted(LEGACY_SUITES, key=_preference))
_TLS13_OFFER: tuple[int, ...] = tuple(s.code for s in TLS13_SUITES)


class _Session:
    """The connections of one endpoint's probe: counts them and enforces the endpoint's overall deadline."""

    def __init__(self, target: ProbeTarget, options: ProbeOptions) -> None:
        self.target = target
        self.options = options
        self.connections = 0
        self.deadline = time.monotonic() + options.total_timeout

    def _connect(self, deadline: float) -> socket.socket:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProbeTimeout(f"probe budget of {self.options.total_timeout:.1f} s for this endpoint is spent")
        host, port = self.target.address
        self.connections += 1
        family = self.target.address_family
        try:
            if family is None:  # a name: resolve (and try each address) the usual way
                return socket.create_connection((host, port), timeout=remaining)
            sock = socket.socket(family, socket.SOCK_STREAM)  # an IP literal: skip the resolver (sweeps add up)
            try:
                sock.settimeout(remaining)
                sock.connect((host, port))
            except BaseException:
                sock.close()
                raise
            return sock
        except TimeoutError as exc:
            raise ProbeTimeout(f"TCP connect to {host}:{port} timed out") from exc
        except OSError as exc:
            raise ProbeConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc

    def _connection_deadline(self) -> float:
        return min(time.monotonic() + self.options.timeout, self.deadline)

    def hello(self, version: str, suites: Sequence[int], *, want_certificate: bool = False) -> ServerAnswer:
        """One connection: send a ClientHello, read the answer, close."""
        # Keep the key shares' private halves when the chain is wanted from a TLS 1.3 answer.
        key_shares = KeyShares() if want_certificate and version == "TLSv1.3" else None
        client_hello = build_client_hello(version, suites, self.target.server_name, key_shares=key_shares)
        deadline = self._connection_deadline()
        sock = self._connect(deadline)
        try:
            try:
                sock.sendall(client_hello)
            except OSError as exc:
                raise ProbeProtocolError(f"server dropped the connection before the ClientHello: {exc}") from exc
            answer = read_server_answer(sock, deadline, self.options.limits, want_certificate=want_certificate,
                                        client_hello=client_hello, key_shares=key_shares)
        finally:
            sock.close()
        hello = answer.hello
        if hello is not None:
            if hello.cipher not in suites:
                raise ProbeProtocolError(f"server chose {name_of(hello.cipher)}, which the ClientHello did not offer")
            if hello.version > VERSION_CODES[version]:
                raise ProbeProtocolError(f"server answered {VERSION_NAMES.get(hello.version, hex(hello.version))} "
                                         f"to a {version} ClientHello")
        return answer

    def stdlib_chain(self) -> ServedChain:
        """The chain of a TLS 1.3-only endpoint: a real handshake (certificate not verified: we report, not trust).

        ``get_unverified_chain()`` exists from Python 3.13; before that only the leaf is available.
        """
        deadline = self._connection_deadline()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        sock = self._connect(deadline)
        try:
            # Since Python 3.5 a socket timeout bounds the whole handshake, not each read (the ssl module's
            # do_handshake documentation), so a server dribbling bytes cannot stretch it past the deadline.
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            with context.wrap_socket(sock, server_hostname=self.target.server_name) as tls:
                if sys.version_info >= (3, 13):
                    chain = tls.get_unverified_chain() or []  # type: ignore[attr-defined,unused-ignore]
                    der = tuple(c if isinstance(c, bytes) else c.public_bytes(ssl.ENCODING_DER) for c in chain)
                    return ServedChain(der=der, source="ssl-unverified-chain")
                leaf = tls.getpeercert(binary_form=True)
                return ServedChain(der=(leaf,) if leaf else (), source="ssl-leaf-only")
        except TimeoutError:
            return ServedChain(source="none", error="TLS 1.3 handshake for the chain timed out")
        except (ssl.SSLError, OSError) as exc:
            return ServedChain(source="none", error=f"TLS 1.3 handshake for the chain failed: {exc}")
        finally:
            sock.close()


def _version_result(version: str, answer: ServerAnswer) -> VersionResult:
    hello = answer.hello
    if hello is not None:
        if hello.version == VERSION_CODES[version] or (version == "TLSv1.3" and hello.hello_retry):
            return VersionResult(version, True, cipher=name_of(hello.cipher), hello_retry=hello.hello_retry)
        negotiated = VERSION_NAMES.get(hello.version, f"0x{hello.version:04X}")
        return VersionResult(version, False, negotiated=negotiated)
    if answer.alert is not None:
        return VersionResult(version, False, alert=answer.alert_name)
    return VersionResult(version, False, alert="connection closed without an alert")


def _enumerate_disallowed(session: _Session, version: str, disallowed: Sequence[CipherSuite],
                          already_seen: str | None) -> CipherCheck:
    """Offer only disallowed suites until the server refuses them all (or the round limit is reached)."""
    remaining = [suite.code for suite in disallowed]
    accepted: list[str] = []
    if already_seen is not None:
        seen = next((suite for suite in disallowed if suite.iana_name == already_seen), None)
        if seen is not None:
            accepted.append(seen.iana_name)
            remaining.remove(seen.code)
    offered = len(remaining)
    rounds = 0
    while remaining:
        if rounds >= session.options.max_cipher_rounds:
            return CipherCheck(version, offered, tuple(accepted), complete=False)
        rounds += 1
        try:
            answer = session.hello(version, remaining)
        except ProbeError as exc:
            return CipherCheck(version, offered, tuple(accepted), complete=False, error=exc.reason)
        hello = answer.hello
        chosen_version = hello is not None and (hello.version == VERSION_CODES[version] or hello.hello_retry)
        if hello is None or not chosen_version:
            break  # an alert, a close or a fallback to another version: none of the remaining suites is accepted
        if hello.cipher not in remaining:
            return CipherCheck(version, offered, tuple(accepted), complete=False,
                               error=f"server chose {name_of(hello.cipher)}, which was not offered")
        accepted.append(name_of(hello.cipher))
        remaining.remove(hello.cipher)
    return CipherCheck(version, offered, tuple(accepted))


def probe(target: ProbeTarget, policy: TlsPolicy | None = None, options: ProbeOptions | None = None) -> ProbeReport:
    """Probe one endpoint: accepted versions, disallowed suites per accepted version (if the policy constrains
    suites) and the served chain. Never raises for endpoint behaviour: failures land in the report."""
    options = options or ProbeOptions()
    session = _Session(target, options)
    started = time.monotonic()
    versions: list[VersionResult] = []
    chain = ServedChain()
    for version in options.versions:
        legacy = version != "TLSv1.3"
        want_certificate = options.collect_chain and not chain.der
        try:
            answer = session.hello(version, _LEGACY_OFFER if legacy else _TLS13_OFFER,
                                   want_certificate=want_certificate)
        except ProbeConnectError as exc:
            return ProbeReport(target, tuple(versions), connections=session.connections,
                               seconds=time.monotonic() - started, error=exc.reason)
        except ProbeError as exc:
            versions.append(VersionResult(version, None, error=exc.reason))
            continue
        result = _version_result(version, answer)
        versions.append(result)
        if result.accepted and answer.certificates:
            source = "tls12-certificate-message" if legacy else "tls13-decrypted-certificate"
            chain = ServedChain(der=answer.certificates, source=source)
    accepted = [result for result in versions if result.accepted]
    if options.collect_chain and not chain.der and accepted:
        if all(result.version == "TLSv1.3" for result in accepted):
            try:
                chain = session.stdlib_chain()
            except ProbeError as exc:
                chain = ServedChain(error=exc.reason)
        else:
            chain = ServedChain(error="the server sent no certificate in its TLS 1.0-1.2 hello flight")
    ciphers: list[CipherCheck] = []
    if policy is not None and policy.ciphers is not None:
        for result in accepted:
            disallowed = policy.ciphers.disallowed_for(result.version)
            if disallowed:
                ciphers.append(_enumerate_disallowed(session, result.version, disallowed, result.cipher))
    return ProbeReport(target, tuple(versions), tuple(ciphers), chain, session.connections,
                       time.monotonic() - started)


def probe_ciphers(target: ProbeTarget, policy: TlsPolicy, accepted: dict[str, str | None],
                  options: ProbeOptions | None = None) -> tuple[tuple[CipherCheck, ...], int]:
    """Only the cipher half of :func:`probe`, for versions a version probe already found accepted (with the suite
    each chose): one connection per constrained version and round. Returns the checks and the connections made."""
    session = _Session(target, options or ProbeOptions())
    checks: list[CipherCheck] = []
    for version, seen in accepted.items():
        disallowed = policy.ciphers.disallowed_for(version) if policy.ciphers is not None else ()
        if disallowed:
            checks.append(_enumerate_disallowed(session, version, disallowed, seen))
    return tuple(checks), session.connections


def probe_many(targets: Iterable[ProbeTarget], policy: TlsPolicy | None = None, options: ProbeOptions | None = None,
               *, concurrency: int = 64,
               on_report: Callable[[ProbeReport], None] | None = None) -> list[ProbeReport]:
    """Probe many endpoints ``concurrency`` at a time; one bad endpoint never stops the sweep.

    Reports come back in the order of ``targets``; ``on_report`` sees each as it completes.
    """
    target_list = list(targets)

    def run(target: ProbeTarget) -> ProbeReport:
        try:
            report = probe(target, policy, options)
        except Exception as exc:  # a bug in the probe must not sink the sweep; report it as the endpoint's error
            report = ProbeReport(target, (), error=f"probe failed: {type(exc).__name__}: {exc}")
        if on_report is not None:
            on_report(report)
        return report

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(target_list) or 1))) as pool:
        return list(pool.map(run, target_list))
