"""The live port: what an endpoint really does, asked with SNI, within time and byte limits.

Handshakes use tlsguard's own probe (hand-built ClientHellos, :mod:`tlsguard.probe`); plain requests (HSTS header,
HTTP-to-HTTPS redirect) use ``http.client`` with a connect timeout, a read timeout and a cap on the header bytes.
``connect`` / ``http_connect`` dial fixed addresses (localcloud's TLS plane and CDN edge) while SNI and ``Host``
stay the domain; without them the domain itself is dialled on 443 / 80.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tlsguard.certs.model import LiveView
    from tlsguard.probe import CipherCheck, ProbeOptions, ProbeReport, TlsPolicy

#: Header bytes read from an HTTP answer before giving up (a status line and headers fit easily).
MAX_HEADER_BYTES = 64 * 1024


class LiveProber:
    """Implements :class:`tlsguard.ports.LivePort`."""

    def __init__(self, *, connect: tuple[str, int] | None = None, http_connect: tuple[str, int] | None = None,
                 timeout: float = 5.0) -> None:
        self.connect = connect
        self.http_connect = http_connect
        self.timeout = timeout

    def served_chain(self, host: str) -> LiveView:
        from tlsguard.certs.live import collect_live

        return collect_live(host, connect=self.connect, timeout=self.timeout)

    def _options(self) -> ProbeOptions:
        from tlsguard.probe import ProbeOptions

        # max_cipher_rounds=1: one accepted disallowed suite already disproves a cipher policy
        return ProbeOptions(timeout=self.timeout, total_timeout=self.timeout * 4, max_cipher_rounds=1,
                            collect_chain=False)

    def probe(self, host: str, policy: TlsPolicy) -> ProbeReport:
        """One handshake per TLS version (and, if ``policy`` constrains suites, the cipher checks of accepted ones)."""
        from tlsguard.probe import ProbeTarget, probe

        return probe(ProbeTarget(host=host, port=443, sni=host, connect=self.connect), policy, self._options())

    def probe_ciphers(self, host: str, policy: TlsPolicy,
                      accepted: dict[str, str | None]) -> tuple[tuple[CipherCheck, ...], int]:
        """Per accepted version the policy constrains, one handshake offering only the suites it disallows."""
        from tlsguard.probe import ProbeTarget, probe_ciphers

        return probe_ciphers(ProbeTarget(host=host, port=443, sni=host, connect=self.connect), policy, accepted,
                             self._options())

    def http_answer(self, host: str, *, https: bool) -> tuple[int, dict[str, str], str]:
        """``GET /`` with ``Host: host``: (status, lower-cased headers, error). The body is never read."""
        address = (self.connect if https else self.http_connect) or (host, 443 if https else 80)
        timeout = self.timeout

        class Pinned(http.client.HTTPConnection):
            def connect(self) -> None:
                raw = socket.create_connection(address, timeout=timeout)
                if https:
                    context = ssl.create_default_context()
                    context.check_hostname = False  # an observation of what is served, not a trust decision
                    context.verify_mode = ssl.CERT_NONE
                    self.sock = context.wrap_socket(raw, server_hostname=host)
                else:
                    self.sock = raw

        connection = Pinned(host, timeout=timeout)
        try:
            connection.request("GET", "/", headers={"Host": host, "User-Agent": "tlsguard-verify/2"})
            response = connection.getresponse()
            headers = {k.lower(): v for k, v in response.getheaders()}
            if sum(len(k) + len(v) for k, v in headers.items()) > MAX_HEADER_BYTES:
                return 0, {}, "headers over the size limit"
            return response.status, headers, ""
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            return 0, {}, f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()
