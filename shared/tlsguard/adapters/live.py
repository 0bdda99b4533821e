"""The live port: what an endpoint really does, asked with SNI, within time and byte limits.

Handshakes use tlsguard's own probe (hand-built ClientHellos, :mod:`tlsguard.probe`); plain requests (HSTS header,
HTTP-to-HTTPS redirect) use ``http.client`` under one deadline for the whole answer and a cap on the header bytes.
``connect`` / ``http_connect`` dial fixed addresses (localcloud's TLS plane and CDN edge) while SNI and ``Host``
stay the domain; without them the domain itself is dialled on 443 / 80.
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any

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
        """``GET /`` with ``Host: host``: (status, lower-cased headers, error). The body is never read.

        Bounded as a whole, not per read: connect, TLS handshake, request and headers all end by one deadline
        (``timeout`` seconds), and at most :data:`MAX_HEADER_BYTES` are read, so an endpoint that stalls,
        dribbles one byte at a time or sends headers without end answers with an error, never a hang.
        """
        address = (self.connect if https else self.http_connect) or (host, 443 if https else 80)
        timeout = self.timeout
        deadline = time.monotonic() + timeout

        class Pinned(http.client.HTTPConnection):
            def connect(self) -> None:
                raw = socket.create_connection(address, timeout=timeout)
                sock: socket.socket = raw
                if https:
                    context = ssl.create_default_context()
                    context.check_hostname = False  # an observation of what is served, not a trust decision
                    context.verify_mode = ssl.CERT_NONE
                    # The socket timeout bounds the whole handshake (Python >= 3.5), so it gets what is left.
                    raw.settimeout(max(deadline - time.monotonic(), 0.001))
                    try:
                        sock = context.wrap_socket(raw, server_hostname=host)
                    except BaseException:
                        raw.close()
                        raise
                self.sock = _DeadlineSocket(sock, deadline, MAX_HEADER_BYTES)

        connection = Pinned(host, timeout=timeout)
        try:
            connection.request("GET", "/", headers={"Host": host, "User-Agent": "tlsguard-verify/2"})
            response = connection.getresponse()
            headers = {k.lower(): v for k, v in response.getheaders()}
            return response.status, headers, ""
        except _HeadersTooLarge as exc:
            return 0, {}, str(exc)
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            return 0, {}, f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()


class _HeadersTooLarge(Exception):
    """The answer's status line and headers went past :data:`MAX_HEADER_BYTES`."""


class _DeadlineSocket:
    """The socket ``http.client`` uses: every read ends by one deadline and at most ``max_bytes`` are read.

    ``http.client`` itself limits a header line to 64 KiB and the count to 100, but each read only by the socket
    timeout; this bounds the whole answer in time and bytes.
    """

    def __init__(self, sock: socket.socket, deadline: float, max_bytes: int) -> None:
        self.sock = sock
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.received = 0

    _LATE = "no complete answer before the deadline (endpoint stalled or too slow)"

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(self._LATE)
        return remaining

    def sendall(self, data: bytes) -> None:
        self.sock.settimeout(self._remaining())
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise TimeoutError(self._LATE) from None

    def recv_into(self, buffer: memoryview) -> int:
        if self.received >= self.max_bytes:
            raise _HeadersTooLarge(f"headers over the {self.max_bytes}-byte limit")
        self.sock.settimeout(self._remaining())
        try:
            count = self.sock.recv_into(buffer[:self.max_bytes - self.received])
        except TimeoutError:
            raise TimeoutError(self._LATE) from None
        self.received += count
        return count

    def makefile(self, mode: str, *args: object, **kwargs: object) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        self.sock.close()


class _DeadlineReader(io.RawIOBase):
    def __init__(self, owner: _DeadlineSocket) -> None:
        self.owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self.owner.recv_into(memoryview(buffer).cast("B"))
