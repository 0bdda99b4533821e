"""The HTTP frame every emulated service runs in: parse, route, inject faults, handle, render errors.

Each service implements :class:`Service`; the frame owns sockets, keep-alive, request ids, fault injection
and call statistics, so services only translate between the wire format and their backend.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from localcloud.errors import ServiceError

if TYPE_CHECKING:
    from collections.abc import Callable

    from localcloud.faults import FaultRegistry


def new_request_id() -> str:
    """A request id shaped like the cloud's (24 upper-case hex characters for OSS, UUID for RPC)."""
    return uuid.uuid4().hex[:24].upper()


class Headers:
    """Case-insensitive, single-valued view of request headers (the last value wins)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._items: dict[str, str] = {}
        self._names: dict[str, str] = {}
        for name, value in pairs:
            self._items[name.lower()] = value
            self._names[name.lower()] = name

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._items.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def items(self) -> list[tuple[str, str]]:
        """Lower-cased names with their values."""
        return list(self._items.items())


@dataclass
class Request:
    """One parsed HTTP request as a service sees it."""

    method: str
    raw_path: str  # path and query exactly as sent
    path: str  # percent-decoded path without the query
    raw_query: str
    query_pairs: list[tuple[str, str]]  # decoded, in order, blank values kept
    headers: Headers
    body: bytes
    client_ip: str
    scheme: str = "http"
    request_id: str = field(default_factory=new_request_id)
    #: Set by the service's auth step: the authenticated principal (see :mod:`localcloud.iam`).
    principal: object | None = None

    @property
    def query(self) -> dict[str, str]:
        """Decoded query parameters (the last value wins)."""
        return dict(self.query_pairs)

    @property
    def host(self) -> str:
        return (self.headers.get("host") or "").lower()

    @property
    def user_agent(self) -> str:
        return self.headers.get("user-agent") or ""


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Route:
    """What a request is: its API operation, the resource it touches, and the callable that serves it."""

    operation: str
    resource: str | None
    handler: Callable[[Request], Response]


class Service(Protocol):
    """A protocol-level emulated service (OSS REST, CDN RPC, CAS RPC, FC 3.0, control API)."""

    name: str

    def route(self, request: Request) -> Route:
        """Identify the operation; raise :class:`ServiceError` for unknown ones (NotImplemented)."""

    def render_error(self, request: Request, error: ServiceError) -> Response:
        """Render an error in this service's wire format, with its request id."""

    def throttle_error(self) -> ServiceError:
        """The error this service answers when it throttles a caller."""

    def decorate(self, request: Request, response: Response) -> None:
        """Add per-service headers every response carries (e.g. ``x-oss-request-id``)."""


class CallStats:
    """Counts of handled calls per service and operation, read by benchmarks through the control API."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, service: str, operation: str) -> None:
        with self._lock:
            self._counts[f"{service}:{operation}"] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


def parse_target(target: str) -> tuple[str, str, list[tuple[str, str]]]:
    """Split a request target into (decoded path, raw query, decoded query pairs with blank values kept)."""
    parts = urlsplit(target)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    return unquote(parts.path), parts.query, pairs


#: The stdlib's limits for a request's header block (http.client._MAXLINE, _MAXHEADERS).
_MAX_HEADER_LINE = 65536
_MAX_HEADERS = 100


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ServiceHTTPServer

    def setup(self) -> None:
        super().setup()
        try:
            # Responses go out in one write; never hold a small one back waiting for an ACK.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, format: str, *args: object) -> None:
        """Silence the default stderr access log; the control API exposes what happened."""

    def parse_request(self) -> bool:
        """The stdlib's request parsing, with a direct header reader instead of the ``email`` parser.

        ``http.client.parse_headers`` runs every request's header block through ``email.parser``, which costs
        several times what localcloud spends serving a call; header lines are read here instead (same limits:
        65,536 bytes per line, 100 headers; obsolete line folding joins the previous value).
        """
        self.command = ""
        self.request_version = version = self.default_request_version
        self.close_connection = True
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")  # type: ignore[attr-defined]
        self.requestline = requestline
        words = requestline.split()
        if not words:
            return False
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            # HTTP/0.9, HTTP/2+ and malformed request lines: let the stdlib answer them as it always has.
            return bool(super().parse_request())
        version = words[2]
        minor = version[len("HTTP/1."):]
        if not minor.isdigit() or len(minor) > 10:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
            return False
        if int(minor) >= 1:
            self.close_connection = False
        self.request_version = version
        self.command, self.path = words[0], words[1]
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")
        headers = http.client.HTTPMessage()
        last: str | None = None
        count = 0
        while True:
            line = self.rfile.readline(_MAX_HEADER_LINE + 1)
            if len(line) > _MAX_HEADER_LINE:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            text = line.decode("iso-8859-1").rstrip("\r\n")
            if text[:1] in (" ", "\t") and last is not None:
                value = headers[last] + " " + text.strip()
                del headers[last]
                headers[last] = value
                continue
            name, sep, value = text.partition(":")
            if not sep or not name or name != name.strip():
                self.send_error(HTTPStatus.BAD_REQUEST, "Bad header line")
                return False
            count += 1
            if count > _MAX_HEADERS:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
                return False
            headers[name] = value.strip()
            last = name
        self.headers = headers
        conntype = (headers.get("Connection") or "").lower()
        if conntype == "close":
            self.close_connection = True
        elif conntype == "keep-alive":
            self.close_connection = False
        if (headers.get("Expect") or "").lower() == "100-continue" and int(minor) >= 1:
            return bool(self.handle_expect_100())
        return True

    def _dispatch(self) -> None:
        frame = self.server.frame
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:
            # The client went away mid-body (a process killed while sending): the cloud never acts on a request
            # that did not arrive whole (no object is created from the part that came).
            self.close_connection = True
            return
        path, raw_query, pairs = parse_target(self.path)
        request = Request(
            method=self.command,
            raw_path=self.path,
            path=path,
            raw_query=raw_query,
            query_pairs=pairs,
            headers=Headers(list(self.headers.items())),
            body=body,
            client_ip=self.client_address[0],
            scheme=frame.scheme,
        )
        outcome = frame.serve(request)
        if outcome.reset:
            self._reset()
            return
        response = outcome.response
        body_out = response.body
        headers = dict(response.headers)
        present = {name.lower() for name in headers}
        if "content-length" not in present:
            headers["Content-Length"] = str(len(body_out))
        if "connection" not in present:
            headers["Connection"] = "keep-alive"
        if "server" not in present:
            headers["Server"] = self.version_string()
        if "date" not in present:
            headers["Date"] = self.date_time_string()
        # One write for status line, headers and body: separate small writes on a keep-alive connection meet
        # Nagle's algorithm and the client's delayed ACK, which caps a connection at ~25 requests/s.
        reason = self.responses.get(response.status, ("",))[0]
        lines = [f"{self.protocol_version} {response.status} {reason}\r\n"]
        for name, value in headers.items():
            lines.append(f"{name}: {value}\r\n")
            if name.lower() == "connection" and value.lower() == "close":
                self.close_connection = True
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1", "replace")
        if self.command == "HEAD":
            self.wfile.write(head)
        elif outcome.truncate:
            self.wfile.write(head + body_out[: len(body_out) // 2])
            self.wfile.flush()
            self._reset()
        else:
            self.wfile.write(head + body_out)

    def _reset(self) -> None:
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    do_GET = _dispatch
    do_PUT = _dispatch
    do_POST = _dispatch
    do_DELETE = _dispatch
    do_HEAD = _dispatch
    do_PATCH = _dispatch
    do_OPTIONS = _dispatch


@dataclass
class Outcome:
    response: Response
    reset: bool = False
    truncate: bool = False


class Frame:
    """Runs one :class:`Service`: routing, fault injection, error rendering and statistics."""

    def __init__(self, service: Service, faults: FaultRegistry, stats: CallStats, scheme: str = "http") -> None:
        self.service = service
        self.faults = faults
        self.stats = stats
        self.scheme = scheme

    def serve(self, request: Request) -> Outcome:
        service = self.service
        reset = truncate = malformed = lost = False
        try:
            route = service.route(request)
            self.stats.add(service.name, route.operation)
            for rule in self.faults.match(service.name, route.operation, route.resource):
                if rule.kind == "latency":
                    time.sleep(self.faults.latency_seconds(rule))
                elif rule.kind == "error":
                    raise ServiceError(rule.status, rule.code, rule.message)
                elif rule.kind == "throttle":
                    raise service.throttle_error()
                elif rule.kind == "reset":
                    reset = True
                elif rule.kind == "truncate":
                    truncate = True
                elif rule.kind == "malformed":
                    malformed = True
                elif rule.kind == "lost_response":
                    lost = True
            if reset:
                return Outcome(Response(), reset=True)
            response = route.handler(request)
            if lost:
                return Outcome(Response(), reset=True)  # the request took effect; its answer never arrives
        except ServiceError as error:
            response = service.render_error(request, error)
        except Exception as exc:  # a handler bug answers 500 InternalError, never a silent disconnect
            response = service.render_error(request, ServiceError(
                500, "InternalError", f"localcloud internal error: {type(exc).__name__}: {exc}"))
        service.decorate(request, response)
        if malformed:
            response.body = b"<<<\x00garbage: localcloud injected a malformed body\xff"
        return Outcome(response, truncate=truncate)


class ServiceHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 server bound to loopback only."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, host: str, port: int, frame: Frame) -> None:
        require_loopback(host)
        self.frame = frame
        super().__init__((host, port), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def require_loopback(host: str) -> None:
    """localcloud never listens beyond loopback."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ValueError(f"localcloud binds loopback only; {host!r} is not a loopback address") from None
        return
    if not address.is_loopback:
        raise ValueError(f"localcloud binds loopback only; {host!r} is not a loopback address")


def serve_in_thread(server: ServiceHTTPServer, name: str) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name=name, daemon=True)
    thread.start()
    return thread
