"""Composition root: the ports (OSS, custom domains, CDN, CAS, live probes), the state bucket, the notifier, the
run context and the alert path, from a policy and where to reach the cloud.

Shared by the CLI and the functions so both run exactly the same code. ``localcloud`` is an endpoints document
(or its path): every client then targets localcloud over HTTP(S) on loopback, handshakes go to its TLS plane
and chains are judged against its CA bundle.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlsguard import settings
from tlsguard.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from tlsguard.adapters.oss import OssConnection
    from tlsguard.alerts.channels import Dispatcher
    from tlsguard.alerts.path import AlertPath
    from tlsguard.certs._rpc import RpcConnection
    from tlsguard.lifecycle import RunContext
    from tlsguard.model import Mode
    from tlsguard.policy.model import Policy
    from tlsguard.ports import NotifierPort, Ports
    from tlsguard.retry import RetryPolicy
    from tlsguard.state import State

DEFAULT_LEASE_SECONDS = 20.0


@dataclass
class Wiring:
    """Everything one run talks to."""

    policy: Policy
    ports: Ports
    state: State | None
    notifier: Dispatcher | NotifierPort | None


def read_endpoints(localcloud: str | Path | dict[str, Any]) -> dict[str, Any]:
    """localcloud's endpoints document, from a dict or its JSON file."""
    if isinstance(localcloud, dict):
        return localcloud
    try:
        data = json.loads(Path(localcloud).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read localcloud endpoints file: {exc}", file=str(localcloud)) from exc
    if not isinstance(data, dict) or not data.get("oss"):
        raise ConfigError("endpoints file lacks oss", file=str(localcloud))
    return data


def oss_connection(localcloud: str | None = None, region: str | None = None) -> OssConnection:
    """localcloud when an endpoints file is given (argument or TLSGUARD_LOCALCLOUD), else real endpoints."""
    from tlsguard.adapters.oss import connection_from_endpoints, connection_from_environment

    endpoints = settings.resolve(localcloud, settings.LOCALCLOUD)
    if endpoints:
        return connection_from_endpoints(endpoints)
    return connection_from_environment(region)


def build(policy: Policy, *, localcloud: str | dict[str, Any] | None = None,
          connection: OssConnection | None = None, rpc: RpcConnection | None = None,
          concurrency: int = settings.DEFAULT_CONCURRENCY, retry: RetryPolicy | None = None,
          notifier: Dispatcher | NotifierPort | None = None, rate_share: float = 1.0) -> Wiring:
    """Ports, state and notifier for ``policy``: localcloud (an endpoints file or document), else the real cloud.

    ``connection`` / ``rpc`` override the OSS and RPC connections (the functions pass their role's STS keys).
    ``rate_share``: the fraction of the policy's rate limits this process may use (a sweep worker process).
    """
    from tlsguard.adapters.cas import AliyunCas
    from tlsguard.adapters.cdn import AliyunCdn
    from tlsguard.adapters.live import LiveProber
    from tlsguard.adapters.oss import AliyunOss, connection_from_endpoint_data
    from tlsguard.adapters.oss_cname import AliyunOssCname
    from tlsguard.ports import Ports
    from tlsguard.ratelimit import RateLimiter

    source = localcloud if localcloud is not None else settings.env(settings.LOCALCLOUD)
    endpoints = read_endpoints(source) if source else None
    if connection is None:
        connection = connection_from_endpoint_data(endpoints) if endpoints else oss_connection(None)
    oss = AliyunOss(connection, limiter=RateLimiter(dict(policy.rate_limits), share=rate_share), retry=retry,
                    max_connections=max(concurrency, 8) + 4)
    if rpc is None:
        rpc = rpc_connection(endpoints, connection)
    ports = Ports(oss=oss, cname=AliyunOssCname(oss), account=connection.account_id)
    if rpc is not None:
        import dataclasses

        cdn_rpc = dataclasses.replace(rpc, domain=str(endpoints["cdn"])) if endpoints and endpoints.get("cdn") else rpc
        cas_rpc = dataclasses.replace(rpc, domain=str(endpoints["cas"])) if endpoints and endpoints.get("cas") else rpc
        ports.cdn = AliyunCdn(cdn_rpc)
        ports.cas = AliyunCas(cas_rpc)
    if endpoints and endpoints.get("tls_port"):
        host = str(endpoints.get("host") or "127.0.0.1")
        http_port = endpoints.get("edge_http_port")
        ports.live = LiveProber(connect=(host, int(endpoints["tls_port"])),
                                http_connect=(host, int(http_port)) if http_port else None)
        ports.trust_bundle = str(endpoints.get("ca_bundle") or "")
    else:
        ports.live = LiveProber()
    state = open_state(policy, oss)
    if notifier is None:
        notifier = alert_channels(policy)
    return Wiring(policy, ports, state, notifier)


def rpc_connection(endpoints: dict[str, Any] | None, oss: OssConnection) -> RpcConnection | None:
    """CDN and CAS are reached with the same keys as OSS: localcloud over plain HTTP, else the public endpoints
    over HTTPS. None when no explicit keys are known (the default credential chain serves OSS only)."""
    from tlsguard.certs._rpc import RpcConnection

    if not oss.access_key_id or not oss.access_key_secret:
        return None
    if endpoints is not None:
        return RpcConnection(region=str(endpoints.get("region") or oss.region), access_key_id=oss.access_key_id,
                             access_key_secret=oss.access_key_secret, security_token=oss.security_token,
                             domain=None, protocol="http")
    return RpcConnection(region=oss.region, access_key_id=oss.access_key_id, access_key_secret=oss.access_key_secret,
                         security_token=oss.security_token)


def open_state(policy: Policy, oss: Any) -> State | None:
    from tlsguard.state import State

    if not policy.state_bucket:
        return None
    return State.open(oss, policy.state_bucket, policy.state_prefix, lease_seconds=settings.number(
        settings.EVENT_LEASE_SECONDS, DEFAULT_LEASE_SECONDS, minimum=0.1, maximum=3600))


def alert_channels(policy: Policy) -> Dispatcher | None:
    """The policy's alert channels and routes; without any, a signed webhook when ``TLSGUARD_WEBHOOK_URL`` is set.

    Secrets and robot URLs are read from the environment here, and registered so that no log line shows them.
    """
    from dataclasses import replace

    from tlsguard.alerts.channels import build_dispatcher
    from tlsguard.policy.model import ChannelSpec

    alerts = policy.alerts
    if not alerts.channels:
        url = settings.env(settings.WEBHOOK_URL)
        if not url:
            return None
        from tlsguard.log import register_secret
        from tlsguard.netsafe import check_outbound_url

        register_secret(url)
        check_outbound_url(url, settings.WEBHOOK_URL)  # https:// only (http:// to loopback); names the variable
        alerts = replace(alerts, channels=(ChannelSpec("webhook", "webhook", secret_env=settings.WEBHOOK_SECRET,
                                                       url=url),))
    return build_dispatcher(alerts)


def context(wiring: Wiring, *, apply: bool, mode: Mode | None = None, parallel_reads: bool = False,
            clock: Callable[[], float] = time.time) -> RunContext:
    """A run context over ``wiring`` (``apply=False``: plan, which never writes anything, not even state)."""
    from tlsguard.lifecycle import DEFAULT_RECONCILE_AFTER_SECONDS, RunContext

    return RunContext(ports=wiring.ports, policy=wiring.policy, state=wiring.state, clock=clock, mode_override=mode,
                      apply=apply, parallel_reads=parallel_reads,
                      reconcile_after_seconds=settings.number(settings.RECONCILE_AFTER_SECONDS,
                                                              DEFAULT_RECONCILE_AFTER_SECONDS, minimum=0,
                                                              maximum=86400))


def alert_path(wiring: Wiring, clock: Callable[[], float] = time.time) -> AlertPath:
    from tlsguard.alerts.outbox import Outbox
    from tlsguard.alerts.path import AlertPath

    outbox = (Outbox(wiring.state.bucket, max_age_seconds=wiring.policy.alerts.outbox_hours * 3600)
              if wiring.state is not None else None)
    return AlertPath(wiring.state.alerts if wiring.state is not None else None, wiring.notifier,
                     wiring.policy.alerts, clock, wiring.policy.verify.attempts_before_alert, outbox)
