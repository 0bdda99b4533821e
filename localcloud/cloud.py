"""LocalCloud: the whole emulator in one object, in-process (tests) or as a server (``python -m localcloud``).

It owns the shared pieces (clock, identities, faults, call statistics, ActionTrail, the TLS registry) and
one backend plus one HTTP service per emulated product. Backends hold state and rules; services translate
the wire format; the HTTP frame (:mod:`localcloud.http`) runs each service on its own loopback port.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from localcloud.clock import Clock
from localcloud.faults import FaultRegistry
from localcloud.http import CallStats, Frame, Service, ServiceHTTPServer, require_loopback, serve_in_thread
from localcloud.iam import IdentityStore
from localcloud.statedir import StateDir
from localcloud.tlsregistry import TlsRegistry
from localcloud.trail import TrailRecorder

DEFAULT_SEED = Path(__file__).parent / "seeds" / "example.yaml"
DEFAULT_REGION = "cn-hangzhou"
#: localcloud's default propagation delay for TLS changes (the cloud documents "within 30 minutes").
DEFAULT_PROPAGATION_SECONDS = 3.0


class LocalCloud:
    """The emulator. Construct, :meth:`seed`, :meth:`start`; :meth:`stop` when done."""

    def __init__(self, region: str = DEFAULT_REGION, propagation_seconds: float = DEFAULT_PROPAGATION_SECONDS,
                 state_dir: str | None = None) -> None:
        from localcloud.cas import CasBackend
        from localcloud.cdn import CdnBackend
        from localcloud.certs import CertAuthorityStore
        from localcloud.chat import ChatSinks
        from localcloud.eventbridge import EventBus
        from localcloud.fc import FcBackend
        from localcloud.oss import OssBackend
        from localcloud.smtp import SmtpSink

        self.region = region
        #: CA bundle, TLS keys and other files; a folder localcloud made is removed by :meth:`stop` (and at exit).
        self._state = StateDir(state_dir)
        self.state_dir = self._state.path
        self.clock = Clock()
        self.iam = IdentityStore()
        self.faults = FaultRegistry()
        self.stats = CallStats()
        self.tls = TlsRegistry(propagation_seconds)
        self.trail = TrailRecorder(self.clock.time, lambda: self.region)
        self.lock = threading.RLock()
        self.default_account_id = ""
        self.default_access_key: tuple[str, str] = ("", "")
        #: Certificate authorities (localcloud's "public" roots and the factory's CAs).
        self.certs = CertAuthorityStore(self)
        self.cas = CasBackend(self)
        self.oss = OssBackend(self)
        self.cdn = CdnBackend(self)
        self.fc = FcBackend(self)
        self.events = EventBus(self)
        #: Chat robot sinks (DingTalk, WeCom, Lark, Slack) and the SMTP sink, for the alert channels' tests.
        self.chat = ChatSinks(self)
        self.smtp = SmtpSink(self)
        self.trail.subscribe(self.events.publish)
        self._servers: list[ServiceHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self.tls_plane: Any = None
        self.endpoints: dict[str, Any] = {}

    # -- state ---------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every resource, identity, event, fault and statistic (servers keep running)."""
        with self.lock:
            self.faults.clear()
            self.stats.reset()
            self.trail.reset()
            self.tls.reset()
            self.clock.reset()
            self.fc.reset()
            self.events.reset()
            self.oss.reset()
            self.cdn.reset()
            self.cas.reset()
            self.iam.reset()
            self.chat.reset()
            self.smtp.reset()
            self.default_account_id = ""
            self.default_access_key = ("", "")

    def seed(self, document: dict[str, Any]) -> None:
        """Load a seed document (see ``localcloud/seeds/README.md``)."""
        from localcloud.seed import apply_seed

        with self.lock:
            apply_seed(self, document)

    def seed_file(self, path: str | os.PathLike[str]) -> None:
        from localcloud.seed import load_seed_file

        self.seed(load_seed_file(Path(path)))

    def snapshot(self) -> dict[str, Any]:
        """Everything the control API's ``GET /state`` returns."""
        return {
            "region": self.region,
            "accounts": self.iam.accounts(),
            "oss": self.oss.snapshot(),
            "cdn": self.cdn.snapshot(),
            "cas": self.cas.snapshot(),
            "fc": self.fc.snapshot(),
            "eventbridge": self.events.snapshot(),
            "tls": {"propagation_seconds": self.tls.propagation_seconds, "hosts": self.tls.hosts()},
            "chat": self.chat.snapshot(),
            "smtp": self.smtp.snapshot(),
            "clock_offset": self.clock.offset,
        }

    # -- servers -------------------------------------------------------------------------------------------
    def services(self) -> dict[str, Service]:
        from localcloud.cas import CasService
        from localcloud.cdn import CdnService
        from localcloud.control import ControlService
        from localcloud.fc import FcService
        from localcloud.oss import OssService

        return {
            "oss": OssService(self),
            "cdn": CdnService(self),
            "cas": CasService(self),
            "fc": FcService(self),
            "control": ControlService(self),
        }

    def ops_services(self) -> dict[str, Service]:
        """The operations APIs ``tlsguard doctor`` reads (STS, ActionTrail, EventBridge), on ports ``+9..+11``."""
        from localcloud.actiontrail import ActionTrailService
        from localcloud.eventbridge.api import EventBridgeService
        from localcloud.sts import StsService

        return {"sts": StsService(self), "actiontrail": ActionTrailService(self),
                "eventbridge": EventBridgeService(self)}

    def start(self, host: str = "127.0.0.1", port: int = 0, endpoints_file: str | None = None,
              tls: bool = True) -> dict[str, Any]:
        """Start every service on loopback; returns (and optionally writes) the endpoints document.

        With ``port`` 0 every service gets an ephemeral port; otherwise OSS listens on ``port``, CDN on
        ``port+1``, CAS ``+2``, FC ``+3``, control ``+4``, the TLS plane ``+5``, the CDN edge's
        plain-HTTP listener ``+6``, the chat robots ``+7``, SMTP ``+8``, then STS, ActionTrail and EventBridge
        ``+9..+11``.
        """
        require_loopback(host)
        ports: dict[str, int] = {}
        for offset, (name, service) in enumerate(self.services().items()):
            frame = Frame(service, self.faults, self.stats)
            server = ServiceHTTPServer(host, port + offset if port else 0, frame)
            self._servers.append(server)
            self._threads.append(serve_in_thread(server, f"localcloud-{name}"))
            ports[name] = server.port
        from localcloud.chat import CHAT_SERVICES, build_chat_frame
        from localcloud.chat.backend import BASE_PATHS

        chat = ServiceHTTPServer(host, port + 7 if port else 0, build_chat_frame(self.chat, self.faults, self.stats))
        self._servers.append(chat)
        self._threads.append(serve_in_thread(chat, "localcloud-chat"))
        smtp_port = self.smtp.start(host, port + 8 if port else 0)
        for offset, (name, service) in enumerate(self.ops_services().items(), start=9):
            frame = Frame(service, self.faults, self.stats)
            server = ServiceHTTPServer(host, port + offset if port else 0, frame)
            self._servers.append(server)
            self._threads.append(serve_in_thread(server, f"localcloud-{name}"))
            ports[name] = server.port
        account = self.default_account_id
        ak, sk = self.default_access_key
        self.endpoints = {
            "oss": f"http://{host}:{ports['oss']}",
            "cdn": f"{host}:{ports['cdn']}",
            "cas": f"{host}:{ports['cas']}",
            "fc": f"http://{host}:{ports['fc']}",
            "control": f"http://{host}:{ports['control']}",
            "host": host,
            "region": self.region,
            "account_id": account,
            "access_key_id": ak,
            "access_key_secret": sk,
            "chat": {service: f"http://{host}:{chat.port}{BASE_PATHS[service]}" for service in CHAT_SERVICES},
            "smtp": {"host": host, "port": smtp_port},
            **{name: f"{host}:{ports[name]}" for name in ("sts", "actiontrail", "eventbridge")},
        }
        if tls:
            from localcloud.tls import TlsPlane

            self.tls_plane = TlsPlane(self)
            tls_port = self.tls_plane.start(host, port + 5 if port else 0)
            self.endpoints["tls_port"] = tls_port
            self.endpoints["oss_https"] = f"https://{host}:{tls_port}"
            self.endpoints["edge_http_port"] = self.tls_plane.edge_http_port
        self.endpoints["ca_bundle"] = str(self.certs.write_ca_bundle(self.state_dir / "ca-bundle.pem"))
        if endpoints_file:
            write_endpoints(Path(endpoints_file), self.endpoints)
        return self.endpoints

    def stop(self) -> None:
        if self.tls_plane is not None:
            self.tls_plane.stop()
            self.tls_plane = None
        self.smtp.stop()
        self.fc.stop()
        self.events.stop()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()
        self._threads.clear()
        self._state.remove()

    def __enter__(self) -> LocalCloud:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_endpoints(path: Path, endpoints: dict[str, Any]) -> None:
    """Write the endpoints file atomically (readers never see a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(endpoints, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
