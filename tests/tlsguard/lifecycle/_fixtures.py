"""Helpers shared by the live verification, alert path and journal/undo tests (real localcloud, real handshakes).

* :class:`AlertSink`: a loopback webhook receiver that checks tlsguard's HMAC signature and keeps every digest; it
  can answer 500 (``sink.status = 500``) or be shut down to prove a failed delivery never blocks a remediation.
* ``localcloud.relay.CountingRelay`` (used from here): a TCP relay in front of localcloud's TLS plane that counts
  the connections a live verification opens (the honest connection count).
* :func:`reset_server`: a loopback server that answers every ClientHello with a TCP RST.
* :func:`sweep_once`: one run exactly as ``tlsguard apply`` composes it (due verifications, reconcile, discovery,
  the lifecycle over every target, one digest), but on localcloud's clock so tests can move time.
* :func:`cli`: the ``tlsguard`` command through click's runner.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from click.testing import CliRunner
from tlsguard import runs, verify_live
from tlsguard.cli import cli as tlsguard_cli
from tlsguard.lifecycle import Lifecycle
from tlsguard.model import Trigger
from tlsguard.notify.webhook import verify
from tlsguard.wiring import alert_path, context

from tests.support import wiring_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from click.testing import Result
    from tlsguard.alerts.path import Delivery
    from tlsguard.model import Mode, TargetResult
    from tlsguard.verify_live import Verification
    from tlsguard.wiring import Wiring

STATE_BUCKET = "tlsguard-state"
ALERT_SECRET_ENV = "TLSGUARD_LIFECYCLE_TEST_SECRET"
ALERT_SECRET = "lifecycle-test-alert-secret-0123456789"


def https_only_statement(bucket: str) -> dict[str, Any]:
    return {"Effect": "Deny", "Principal": ["*"], "Action": ["oss:*"],
            "Resource": [f"acs:oss:*:*:{bucket}", f"acs:oss:*:*:{bucket}/*"],
            "Condition": {"Bool": {"acs:SecureTransport": ["false"]}}}


def compliant_bucket(name: str, **overrides: Any) -> dict[str, Any]:
    """A bucket on the test policies' posture: TLS 1.2+1.3, strong suites, HTTPS-only, AES256."""
    item: dict[str, Any] = {
        "name": name, "region": "cn-hangzhou",
        "https_config": {"tls": {"enable": True, "versions": ["TLSv1.2", "TLSv1.3"]},
                         "cipher_suite": {"enable": True, "strong": True}},
        "policy": {"Version": "1", "Statement": [https_only_statement(name)]},
        "encryption": {"algorithm": "AES256"}}
    item.update(overrides)
    return item


#: What a careless operator leaves: every TLS version and every suite (so TLS 1.0 really handshakes).
LEGACY_HTTPS = {"tls": {"enable": True, "versions": ["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]}}


def drifted_bucket(name: str, **overrides: Any) -> dict[str, Any]:
    return compliant_bucket(name, https_config=LEGACY_HTTPS, **overrides)


def bucket_host(name: str, region: str = "cn-hangzhou") -> str:
    return f"{name}.oss-{region}.aliyuncs.com"


def bucket_snapshot(cloud: Any, name: str) -> dict[str, Any]:
    for bucket in cloud.oss.snapshot()["buckets"]:
        if bucket["name"] == name:
            return dict(bucket)
    raise KeyError(name)


def cdn_snapshot(cloud: Any, name: str) -> dict[str, Any]:
    for domain in cloud.cdn.snapshot()["domains"]:
        if domain["name"] == name:
            return dict(domain)
    raise KeyError(name)


def webhook_yaml(url: str, attempts: int = 1) -> str:
    return (f"alerts:\n  webhook: {{url: \"{url}\", secret_env: {ALERT_SECRET_ENV}, timeout_seconds: 2, "
            f"attempts: {attempts}}}\n")


# -- the webhook sink -----------------------------------------------------------------------------------------
class AlertSink:
    """A loopback webhook receiver that checks tlsguard's signature and keeps every digest it accepted.

    ``status`` is what it answers (set 500 to make deliveries fail); ``posts`` counts every POST, accepted or not.
    """

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.posts = 0
        self.bad_signatures = 0
        self.status = 200
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink._lock:
                    sink.posts += 1
                    if not verify(ALERT_SECRET, self.headers.get("X-Tlsguard-Timestamp", ""), body,
                                  self.headers.get("X-Tlsguard-Signature", "")):
                        sink.bad_signatures += 1
                    elif sink.status == 200:
                        sink.alerts.append(json.loads(body))
                    status = sink.status
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        self._closed = False

    def close(self) -> None:
        """Stop listening: later deliveries find nobody there (connection refused)."""
        if not self._closed:
            self._closed = True
            self.server.shutdown()
            self.server.server_close()

    def items(self, section: str = "needs_attention") -> list[dict[str, Any]]:
        return [item for alert in self.alerts for item in alert.get(section) or []]


# -- connection counting and hostile endpoints ---------------------------------------------------------------




@contextlib.contextmanager
def reset_server() -> Iterator[int]:
    """A loopback server that reads the ClientHello and answers with a TCP RST; yields its port."""
    sock = socket.create_server(("127.0.0.1", 0), backlog=64)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with contextlib.suppress(OSError):
                conn.settimeout(2)
                conn.recv(65536)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stopping.set()
        sock.close()


# -- runs ---------------------------------------------------------------------------------------------------
@dataclass
class RunOutcome:
    """What one :func:`sweep_once` did."""

    results: list[TargetResult]
    verifications: list[Verification]
    delivery: Delivery
    wiring: Wiring = field(repr=False)

    def by_name(self, name: str) -> TargetResult:
        (found,) = [r for r in self.results if r.target.name == name]
        return found


def sweep_once(cloud: Any, policy_path: Path, *, mode: Mode | None = None, names: tuple[str, ...] = (),
               wiring: Wiring | None = None, concurrency: int = 8) -> RunOutcome:
    """One run composed as ``tlsguard apply`` composes it, on localcloud's clock (tests move it)."""
    wiring = wiring or wiring_for(cloud, policy_path)
    ctx = context(wiring, apply=True, mode=mode, parallel_reads=0 < len(names) <= 4, clock=cloud.clock.time)
    ctx.write_backoff_seconds = 0.01
    lifecycle = Lifecycle(ctx)
    alerts = alert_path(wiring, ctx.clock)
    verifications = verify_live.run_due(ctx)
    for verification in verifications:
        alerts.observe_verification(verification)
    runs.start_run(lifecycle)
    if names:
        found, missing = runs.named_targets(ctx, names)
        assert not missing, missing
        targets: Any = found
    else:
        targets = runs.discover(ctx)
    results = []
    for result in runs.sweep(lifecycle, targets, concurrency=concurrency, trigger=Trigger("cli", actor="tests")):
        results.append(result)
        alerts.observe(result)
    delivery = alerts.flush(command="apply", mode=(mode or wiring.policy.mode).value)
    return RunOutcome(results, verifications, delivery, wiring)


def wait_until_due(ctx: Any) -> None:
    """Sleep until every pending verification's propagation window has passed (and not much longer)."""
    assert ctx.state is not None
    pending = ctx.state.pending.all()
    assert pending, "nothing is pending"
    time.sleep(max(0.0, max(p.due_at for p in pending) - ctx.clock()) + 0.05)


def cli(*args: str) -> Result:
    """``tlsguard ARGS`` through click's runner; an exception escaping the command fails the test loudly."""
    return CliRunner().invoke(tlsguard_cli, list(args), catch_exceptions=False)


def json_out(result: Result) -> Any:
    return json.loads(result.stdout)
