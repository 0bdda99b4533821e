"""The SDK's HTTP transport on urllib3 directly: what ``RequestsHttpClient`` does, without the requests layer.

alibabacloud-oss-v2 signs and serialises a request, then hands it to ``config.http_client.send``. Its default
client goes through ``requests.Session.request``, which re-merges session settings, re-parses the URL, checks
cookies, proxies and hooks and runtime-checks protocols on every call: about a third of the client CPU of a
fleet sweep (profiled on a 500-bucket sweep). This client sends the already signed request through one urllib3
``PoolManager`` (pooled keep-alive connections per host, one shared ``SSLContext``, verification always on) and
maps urllib3's failures to the SDK's own exceptions, exactly as the SDK's requests client does, so tlsguard's
error mapping sees the same types. With ``pinned_address`` (localcloud only) every HTTPS connection is made to
that address while SNI, Host and the certificate check keep the real hostname (see ``_pinned``).
"""

from __future__ import annotations

import json
import ssl
from typing import Any

#: Kept-alive connections per host (see :func:`urllib3_http_client`).
CONNECTIONS_PER_HOST = 4


def client_side_error(exc: BaseException | None) -> bool:
    """Whether ``exc`` is a client refusing its own input before sending anything: a ValueError (IDNA's
    UnicodeError for a label over 63 characters, "embedded null character", urllib3's LocationParseError) or a
    TypeError. The same call fails the same way, so it is never retried. A body that cannot be decoded
    (UnicodeDecodeError, JSONDecodeError) is the server's answer, not the client's input: not counted here."""
    if isinstance(exc, (UnicodeDecodeError, json.JSONDecodeError)):
        return False
    return isinstance(exc, (ValueError, TypeError))


def resuming_context(ca_bundle: str) -> ssl.SSLContext:
    """A client context that offers the most recent TLS session ticket it received on every new connection.

    NOT the default, and not wired into the CLI: an evaluated variant (``bench_sweep.py --variant tls-resumption``).
    Each bucket is its own host, so this resumes *across* bucket hosts. RFC 8446 section 4.6.1 allows that only
    when the new name is valid for the original certificate (true for ``*.oss-<region>.aliyuncs.com``) and says a
    client SHOULD resume only with the same SNI; whether OSS's front ends honour such tickets is undocumented (a
    server that does not simply runs a full handshake). Certificate and hostname checks still apply.
    """

    class ResumingSSLSocket(ssl.SSLSocket):
        def close(self) -> None:
            try:
                session = self.session
                if session is not None and session.has_ticket:
                    context.latest_session = session
            except (OSError, ValueError):
                pass
            super().close()

    class ResumingContext(ssl.SSLContext):
        latest_session: ssl.SSLSession | None = None

        def wrap_socket(self, sock: Any, server_side: bool = False, do_handshake_on_connect: bool = True,
                        suppress_ragged_eofs: bool = True, server_hostname: Any = None,
                        session: ssl.SSLSession | None = None) -> ssl.SSLSocket:
            return super().wrap_socket(sock, server_side, do_handshake_on_connect, suppress_ragged_eofs,
                                       server_hostname, session or self.latest_session)

    context = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=ca_bundle)
    context.sslsocket_class = ResumingSSLSocket
    return context


def urllib3_http_client(*, max_connections: int, ca_bundle: str | None = None,
                        pinned_address: tuple[str, int] | None = None, resume_tls_sessions: bool = False) -> Any:
    """An alibabacloud-oss-v2 ``HttpClient`` over one urllib3 PoolManager sized for ``max_connections`` threads.

    ``resume_tls_sessions``: see :func:`resuming_context` (an evaluated variant, off by default).
    """
    import urllib3
    from alibabacloud_oss_v2 import defaults, exceptions
    from alibabacloud_oss_v2.types import HttpClient, HttpRequest, HttpResponse
    from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError

    if ca_bundle is None:  # the trust anchors requests used for real endpoints: certifi's bundle
        import certifi

        ca_bundle = certifi.where()
    context = resuming_context(ca_bundle) if resume_tls_sessions else ssl.create_default_context(cafile=ca_bundle)
    # Every bucket is its own host, and one bucket's calls run one after the other on one thread: a host needs
    # one kept-alive connection, so the per-host pool is small (urllib3 pre-fills and drains a queue of
    # ``maxsize`` slots each time a bucket's pool is created and evicted: 36 slots cost ~1 ms CPU per bucket).
    # Extra concurrent connections to one host (the state bucket) are still made, just not kept (block=False).
    # Hosts kept: 4x the threads, so that a bucket being remediated (its reads, then the state bucket, then its
    # writes and re-reads) still finds its connection while the other threads move through new buckets.
    manager = urllib3.PoolManager(num_pools=4 * max_connections, maxsize=CONNECTIONS_PER_HOST, block=False,
                                  retries=False, ssl_context=context, cert_reqs="CERT_REQUIRED")
    if pinned_address is not None:
        from tlsguard.adapters._pinned import pinned_pool_classes

        manager.pool_classes_by_scheme = pinned_pool_classes(pinned_address)

    class Urllib3Response(HttpResponse):  # type: ignore[misc]
        """The SDK's response view of a urllib3 response (body read at once unless streamed)."""

        def __init__(self, request: HttpRequest, response: urllib3.BaseHTTPResponse, block_size: int) -> None:
            super().__init__()
            self._request = request
            self._response = response
            self._block_size = block_size
            self._content: bytes | None = None
            self._closed = False
            self._consumed = False

        @property
        def request(self) -> HttpRequest:
            return self._request

        @property
        def is_closed(self) -> bool:
            return self._closed

        @property
        def is_stream_consumed(self) -> bool:
            return self._consumed

        @property
        def status_code(self) -> int:
            return int(self._response.status)

        @property
        def headers(self) -> Any:
            return self._response.headers  # HTTPHeaderDict: case-insensitive, like requests' headers

        @property
        def reason(self) -> str:
            return str(self._response.reason or "")

        @property
        def content(self) -> bytes:
            if self._content is None:
                raise exceptions.ResponseNotReadError()
            return self._content

        def __enter__(self) -> Urllib3Response:
            return self

        def __exit__(self, *args: Any) -> None:
            self.close()

        def close(self) -> None:
            if not self._closed:
                self._closed = True
                self._response.release_conn()

        def read(self) -> bytes:
            if self._content is None:
                try:
                    self._content = bytes(self._response.read())
                except HTTPError as exc:  # truncated body, reset mid-body: the SDK's "response" failure
                    raise exceptions.ResponseError(error=exc) from exc
            self._consumed = True
            self.close()
            return self._content

        def iter_bytes(self, **kwargs: Any) -> Any:
            return self._response.stream(kwargs.pop("block_size", self._block_size))

    class Urllib3HttpClient(HttpClient):  # type: ignore[misc]
        """Sends signed SDK requests through the shared PoolManager; no redirects, no retries (tenacity's job)."""

        def __init__(self) -> None:
            self.connect_timeout = defaults.DEFAULT_CONNECT_TIMEOUT
            self.read_timeout = defaults.DEFAULT_READWRITE_TIMEOUT
            self.block_size = defaults.DEFAULT_BLOCK_SIZE
            self.manager = manager

        def open(self) -> None:
            """Nothing to open: the pool manager exists for the client's lifetime."""

        def close(self) -> None:
            manager.clear()

        def send(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
            timeout = urllib3.Timeout(connect=kwargs.pop("connect_timeout", self.connect_timeout),
                                      read=kwargs.pop("readwrite_timeout", self.read_timeout))
            stream = bool(kwargs.pop("stream", False))
            headers = {k: v for k, v in request.headers.items() if v is not None}
            body = request.body
            if body is not None and not isinstance(body, (bytes, str)) \
                    and not any(k.lower() == "content-length" for k in headers):
                # The SDK wraps upload bodies in a CRC-tracking iterator; like requests, send its known length
                # rather than chunked transfer encoding, which OSS does not accept for every operation.
                length = _known_length(body)
                if length is not None:
                    headers["Content-Length"] = str(length)
            try:
                raw = manager.urlopen(request.method, request.url, body=body, headers=headers,
                                      redirect=False, retries=False, timeout=timeout, preload_content=False,
                                      assert_same_host=False)
            except (NewConnectionError, ConnectTimeoutError) as exc:
                raise exceptions.RequestError(error=exc) from exc
            except ReadTimeoutError as exc:
                raise exceptions.ResponseError(error=exc) from exc
            except HTTPError as exc:
                raise exceptions.RequestError(error=exc) from exc
            response = Urllib3Response(request, raw, self.block_size)
            if not stream:
                response.read()
            return response

    return Urllib3HttpClient()


def _known_length(body: Any) -> int | None:
    """The length of an upload body when it states one (``__len__`` or ``len``), as requests' ``super_len`` finds."""
    if hasattr(body, "__len__"):
        return len(body)
    length = getattr(body, "len", None)
    return length if isinstance(length, int) else None
