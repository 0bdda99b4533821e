"""Live verification (issue 13, item 5): a write that changes what an endpoint negotiates or serves stays
``pending`` until its propagation window has passed, then real handshakes and requests against localcloud's TLS
plane and CDN edge prove it ``effective`` or ``not_effective``; hostile endpoints leave it pending (attempts
recorded) and, after ``verify.attempts_before_alert`` tries, the alert path raises ``cannot_verify``.

localcloud applies a configuration change after ``cloud.tls.propagation_seconds``; the policy's window is 1.8 s
(``propagation_minutes: 0.03``). A lagging edge propagates after 8 s (longer than the window), a prompt one after
1.5 s (shorter).
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any

import pytest
from tlsguard import verify_live
from tlsguard.adapters.live import LiveProber
from tlsguard.certs.x509facts import facts_from_pem
from tlsguard.model import LiveVerification, Outcome, TargetKind, TargetRef
from tlsguard.probe import TlsPolicy
from tlsguard.wiring import alert_path

from localcloud.faults import FaultRule
from localcloud.relay import CountingRelay
from tests.support import ACCOUNT, lifecycle_for, wiring_for, write_policy
from tests.tlsguard.lifecycle._fixtures import (
    STATE_BUCKET,
    AlertSink,
    bucket_host,
    bucket_snapshot,
    cli,
    compliant_bucket,
    drifted_bucket,
    json_out,
    reset_server,
    wait_until_due,
    webhook_yaml,
)
from tests.tlsguard.probe.tls_servers import hostile_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tlsguard.lifecycle import Lifecycle

LAGGING_EDGE = 8.0  # seconds localcloud takes to apply a change when the edge lags behind the policy's window
PROMPT_EDGE = 1.5  # ... when it is faster than the window
WINDOW_MINUTES = 0.03  # 1.8 s

BUCKET_POLICY = f"""
version: 1
mode: enforce
defaults:
  tls_versions: [TLSv1.2, TLSv1.3]
  cipher_suites: {{mode: strong}}
state: {{bucket: {STATE_BUCKET}}}
verify: {{propagation_minutes: {WINDOW_MINUTES}, attempts_before_alert: 2}}
"""

CERT_POLICY = f"""
version: 1
mode: enforce
defaults:
  tls_versions: [TLSv1.2, TLSv1.3]
state: {{bucket: {STATE_BUCKET}}}
certificates: {{renew_before_days: 30}}
verify: {{propagation_minutes: {WINDOW_MINUTES}}}
"""

CDN_POSTURE_POLICY = f"""
version: 1
mode: enforce
defaults:
  tls_versions: [TLSv1.2, TLSv1.3]
state: {{bucket: {STATE_BUCKET}}}
certificates:
  cdn_https:
    https_force: true
    hsts: {{max_age: 5184000}}
verify: {{propagation_minutes: {WINDOW_MINUTES}}}
"""



def _bucket(name: str) -> TargetRef:
    return TargetRef.bucket_target(name, "cn-hangzhou", ACCOUNT)


def _plane(cloud: Any) -> tuple[str, int]:
    return "127.0.0.1", int(cloud.endpoints["tls_port"])


def _served_leaf_sha1(cloud: Any, host: str) -> str:
    """The SHA-1 fingerprint of the leaf a stdlib handshake with SNI ``host`` is served (independent of tlsguard)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(_plane(cloud), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der
    digest = hashlib.sha1(der).hexdigest().upper()  # a fingerprint, not a signature
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _accepted_versions(cloud: Any, host: str) -> tuple[str, ...]:
    report = LiveProber(connect=_plane(cloud)).probe(host, TlsPolicy.build(versions=["TLSv1.2", "TLSv1.3"]))
    assert not report.error, report.error
    return report.accepted_versions()


def _cas_sha1(cloud: Any, name: str) -> str:
    certificate = cloud.cas.find_by_name(ACCOUNT, name)
    assert certificate is not None
    return facts_from_pem(certificate.chain_pem[0]).fingerprint_sha1


def _single(verifications: list[verify_live.Verification]) -> verify_live.Verification:
    assert len(verifications) == 1, verifications
    return verifications[0]


def _remediate(lifecycle: Lifecycle, target: TargetRef) -> Any:
    result = lifecycle.run(target)
    assert result.outcome is Outcome.REMEDIATED, result.reason
    assert result.live_verification is LiveVerification.PENDING
    assert "live verification pending" in result.reason
    return result


# -- OSS bucket TLS versions and suites --------------------------------------------------------------------------
def test_a_lagging_edge_is_pending_then_not_effective_and_alerted(cloud: Any, tmp_path: Path, endpoints_file: Path,
                                                                  sink: AlertSink) -> None:
    """Through the CLI: apply (pending), verify inside the window (nothing), plan (the target is pending), verify
    after the window while the edge still lags (not effective, alerted once in the digest)."""
    cloud.tls.propagation_seconds = LAGGING_EDGE
    cloud.seed({"buckets": [{"name": STATE_BUCKET}, drifted_bucket("edge-lag")]})
    # A 3 s window here: four CLI runs must fit inside it on a loaded machine.
    text = BUCKET_POLICY.replace(f"propagation_minutes: {WINDOW_MINUTES}", "propagation_minutes: 0.05")
    policy = str(write_policy(tmp_path, text + webhook_yaml(sink.url)))
    common = ["--policy", policy, "--localcloud", str(endpoints_file), "--json"]
    host = bucket_host("edge-lag")

    applied = cli("apply", *common, "--target", "edge-lag")
    assert applied.exit_code == 0, applied.output
    early = cli("verify", *common)  # inside the window: nothing is due, nothing is probed
    assert early.exit_code == 0, early.output
    assert json_out(early)["verifications"] == []

    (target,) = json_out(applied)["targets"]
    assert target["outcome"] == "remediated" and target["live_verification"] == "pending"
    journal_id = target["journal_id"]
    assert json_out(applied)["summary"]["live"]["pending"] == 1
    planned = cli("plan", *common)
    assert planned.exit_code == 0, planned.output
    (pending,) = [t for t in json_out(planned)["targets"] if t["target"]["name"] == "edge-lag"]
    assert pending["outcome"] == "pending" and pending["live_verification"] == "pending"
    assert "a change is still reaching the endpoint" in pending["reason"]
    tls = bucket_snapshot(cloud, "edge-lag")["https_config"]["TLS"]
    assert tls["TLSVersion"] == ["TLSv1.2", "TLSv1.3"]  # the API already says so...
    assert "TLSv1.0" in _accepted_versions(cloud, host)  # ...while the edge still accepts TLS 1.0
    state = lifecycle_for(cloud, tmp_path / "tlsguard.yaml").ctx.state
    assert state is not None
    assert [p.journal_id for p in state.pending.all()] == [journal_id]
    digests = len(sink.alerts)  # the apply's digest (what was remediated)

    wait_until_due(lifecycle_for(cloud, tmp_path / "tlsguard.yaml").ctx)
    verified = cli("verify", *common)
    assert verified.exit_code == 2, verified.output  # configured but not effective is drift
    report = json_out(verified)
    (verification,) = report["verifications"]
    assert verification["live_verification"] == "not_effective" and verification["journal_id"] == journal_id
    assert "TLSv1.0 is accepted but the policy excludes it" in verification["detail"]
    assert verification["connections"] == 4  # one handshake per version; suites are not asked while versions fail
    assert report["summary"]["live"]["not_effective"] == 1
    assert report["alerts"]["sent"] is True
    assert "TLSv1.0" in _accepted_versions(cloud, host)

    assert len(sink.alerts) == digests + 1
    digest = sink.alerts[-1]
    (problem,) = digest["needs_attention"]
    assert problem["state"] == "not_effective" and problem["id"] == str(_bucket("edge-lag"))
    assert problem["journal_id"] == journal_id and "TLSv1.0 is accepted" in problem["message"]
    assert digest["verifications"][0]["live_verification"] == "not_effective"
    assert sink.bad_signatures == 0

    # Not final: the verification stays pending, so the next run probes again.
    assert [p.journal_id for p in state.pending.all()] == [journal_id]
    assert state.pending.result(_bucket("edge-lag"), journal_id.rsplit("/", 1)[-1]) is None
    shown = cli("journal", "show", journal_id, *common)
    assert json_out(shown)["outcome"]["live_verification"] == "pending"  # the write's outcome, as journaled

    digests = len(sink.alerts)
    again = cli("verify", *common)  # probed again: still not effective, and not alerted twice (deduplicated)
    assert json_out(again)["verifications"][0]["live_verification"] == "not_effective"
    assert len(sink.alerts) == digests + 1 and sink.alerts[-1]["needs_attention"] == []

    _wait_for_edge(cloud, host)  # the edge catches up: the next run proves it and resolves the alert
    caught_up = cli("verify", *common)
    assert caught_up.exit_code == 0, caught_up.output
    (effective,) = json_out(caught_up)["verifications"]
    assert effective["live_verification"] == "effective" and effective["journal_id"] == journal_id
    assert state.pending.all() == []
    stored = state.pending.result(_bucket("edge-lag"), journal_id.rsplit("/", 1)[-1])
    assert stored is not None and stored["verdict"] == "effective"
    resolved = sink.alerts[-1]["resolved"]
    assert [(r["check"], r["state"]) for r in resolved] == [("live", "not_effective")]


def _wait_for_edge(cloud: Any, host: str, timeout: float = 30.0) -> None:
    """Until localcloud's edge refuses TLS 1.0 for ``host`` (its propagation delay has passed)."""
    deadline = time.monotonic() + timeout
    while "TLSv1.0" in _accepted_versions(cloud, host):
        assert time.monotonic() < deadline, "localcloud's edge never caught up"
        time.sleep(0.25)


def test_the_next_run_shows_the_verdict_on_the_target(cloud: Any, tmp_path: Path, endpoints_file: Path) -> None:
    """``tlsguard apply`` first probes what is due, then sweeps: the target's result carries the verdict."""
    cloud.tls.propagation_seconds = LAGGING_EDGE
    cloud.seed({"buckets": [{"name": STATE_BUCKET}, drifted_bucket("edge-verdict")]})
    text = BUCKET_POLICY.replace(f"propagation_minutes: {WINDOW_MINUTES}", "propagation_minutes: 0")
    common = ["--policy", str(write_policy(tmp_path, text)), "--localcloud", str(endpoints_file), "--json"]
    first = json_out(cli("apply", *common))
    (target,) = first["targets"]
    assert target["outcome"] == "remediated" and target["live_verification"] == "pending"

    second = cli("apply", *common)  # the window (0 here) has passed; the edge has not caught up
    assert second.exit_code == 2, second.output
    report = json_out(second)
    (verification,) = report["verifications"]
    assert verification["live_verification"] == "not_effective" and verification["journal_id"] == target["journal_id"]
    (again,) = report["targets"]
    assert again["outcome"] == "compliant"  # the API holds the policy...
    assert again["live_verification"] == "not_effective"  # ...the endpoint does not
    assert "TLSv1.0 is accepted" in again["live_detail"]

    third = json_out(cli("apply", *common))  # not final: probed again while the edge still lags
    assert third["verifications"][0]["live_verification"] == "not_effective"
    _wait_for_edge(cloud, bucket_host("edge-verdict"))
    fourth = json_out(cli("apply", *common))  # the edge caught up: effective, shown on the target, and final
    assert fourth["verifications"][0]["live_verification"] == "effective"
    assert fourth["targets"][0]["live_verification"] == "effective"
    fifth = json_out(cli("apply", *common))
    assert fifth["verifications"] == [] and fifth["targets"][0]["live_verification"] == "not_applicable"


def test_a_prompt_edge_is_effective_with_at_most_six_connections(cloud: Any, tmp_path: Path) -> None:
    cloud.tls.propagation_seconds = PROMPT_EDGE
    cloud.seed({"buckets": [{"name": STATE_BUCKET}, drifted_bucket("edge-prompt")]})
    lifecycle = lifecycle_for(cloud, write_policy(tmp_path, BUCKET_POLICY))
    ctx = lifecycle.ctx
    result = _remediate(lifecycle, _bucket("edge-prompt"))
    (pending,) = ctx.state.pending.all()  # type: ignore[union-attr]
    assert pending.journal_id == result.journal_id
    assert pending.checks == ("oss.cipher_suites", "oss.tls_versions")
    assert pending.expect == {"host": bucket_host("edge-prompt"), "tls_versions": ["TLSv1.2", "TLSv1.3"],
                              "ciphers": "strong"}
    assert pending.due_at - pending.created_at == pytest.approx(WINDOW_MINUTES * 60)

    assert verify_live.run_due(ctx) == []  # the window has not passed: nothing is probed

    wait_until_due(ctx)
    proxy = CountingRelay(_plane(cloud))
    try:
        ctx.ports.live = LiveProber(connect=("127.0.0.1", proxy.port))
        before = dict(cloud.tls_plane.counters)
        verification = _single(verify_live.run_due(ctx))
        plane = {k: v - before.get(k, 0) for k, v in cloud.tls_plane.counters.items()}
    finally:
        proxy.close()
    assert verification.verdict is LiveVerification.EFFECTIVE, verification.detail
    assert verification.detail == "accepts exactly TLSv1.2, TLSv1.3 with strong suites"
    # One handshake per TLS version (4) and at most one per cipher class (TLS 1.2 and TLS 1.3 suites: 2).
    assert verification.connections <= 4 + 2
    assert proxy.accepts == verification.connections
    # The plane saw exactly those handshakes: each is ended by the probe once the ServerHello (or alert) answers.
    assert plane.get("handshake_failed", 0) == verification.connections, plane
    assert plane.get("handshake_ok", 0) == 0, plane

    assert ctx.state.pending.all() == []  # type: ignore[union-attr]
    after = lifecycle.run(_bucket("edge-prompt"))
    assert after.outcome is Outcome.COMPLIANT
    assert after.live_verification is LiveVerification.EFFECTIVE and "accepts exactly" in after.live_detail
    assert _accepted_versions(cloud, bucket_host("edge-prompt")) == ("TLSv1.2", "TLSv1.3")


# -- certificate rebinding on a custom domain and on a CDN domain ---------------------------------------------------
def _certificate_fleet(cloud: Any, kind: TargetKind, domain: str) -> TargetRef:
    cloud.seed({"certificates": [
        {"name": "old-leaf", "kind": "expiring", "days": 5, "domains": [domain]},
        {"name": "new-leaf", "kind": "valid", "domains": [domain]}]})
    if kind is TargetKind.OSS_CNAME:
        site = compliant_bucket("site-bucket", cnames=[{"domain": domain, "certificate": "old-leaf"}])
        cloud.seed({"buckets": [{"name": STATE_BUCKET}, site]})
        return TargetRef(kind, domain, "cn-hangzhou", ACCOUNT, "site-bucket")
    cloud.seed({"buckets": [{"name": STATE_BUCKET}], "cdn_domains": [{"name": domain, "certificate": "old-leaf"}]})
    return TargetRef(kind, domain, "", ACCOUNT)


@pytest.mark.parametrize("kind", [TargetKind.OSS_CNAME, TargetKind.CDN_DOMAIN])
@pytest.mark.parametrize("lagging", [True, False], ids=["lagging-edge", "prompt-edge"])
def test_a_certificate_rebinding_is_proved_by_the_leaf_served(cloud: Any, tmp_path: Path, kind: TargetKind,
                                                              lagging: bool) -> None:
    domain = "static.example.test" if kind is TargetKind.OSS_CNAME else "edge.example.test"
    target = _certificate_fleet(cloud, kind, domain)
    old, new = _cas_sha1(cloud, "old-leaf"), _cas_sha1(cloud, "new-leaf")
    cloud.tls.propagation_seconds = LAGGING_EDGE if lagging else PROMPT_EDGE
    lifecycle = lifecycle_for(cloud, write_policy(tmp_path, CERT_POLICY))
    ctx = lifecycle.ctx

    result = _remediate(lifecycle, target)
    (action,) = result.actions
    assert action.call == ("PutCname" if kind is TargetKind.OSS_CNAME else "SetCdnDomainSSLCertificate")
    (pending,) = ctx.state.pending.all()  # type: ignore[union-attr]
    assert pending.expect == {"host": domain, "certificate_sha1": new}
    assert "cert.expiry" in pending.checks
    if lagging:
        assert _served_leaf_sha1(cloud, domain) == old  # bound through the API, not yet served
    assert verify_live.run_due(ctx) == []

    wait_until_due(ctx)
    verification = _single(verify_live.run_due(ctx))
    assert verification.connections == 1  # one handshake for a certificate
    if lagging:
        assert verification.verdict is LiveVerification.NOT_EFFECTIVE
        assert verification.detail.startswith(f"still serves {domain} ({old[:23]}...), not {new[:23]}...")
        assert _served_leaf_sha1(cloud, domain) == old
        assert len(ctx.state.pending.all()) == 1  # type: ignore[union-attr]  # not final: probed again later
        deadline = time.monotonic() + 30
        while _served_leaf_sha1(cloud, domain) != new:
            assert time.monotonic() < deadline, "localcloud's edge never caught up"
            time.sleep(0.25)
        verification = _single(verify_live.run_due(ctx))
    assert verification.verdict is LiveVerification.EFFECTIVE, verification.detail
    assert verification.detail.startswith(f"serves {domain} ({new[:23]}...)")
    assert _served_leaf_sha1(cloud, domain) == new  # the edge serves the new leaf: a stdlib handshake agrees
    assert ctx.state.pending.all() == []  # type: ignore[union-attr]


# -- CDN HSTS and forced HTTPS ----------------------------------------------------------------------------------
def _edge_http(cloud: Any, domain: str) -> tuple[int, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", int(cloud.endpoints["edge_http_port"]), timeout=5)
    try:
        connection.request("GET", "/index.html", headers={"Host": domain})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def _edge_https(cloud: Any, domain: str) -> dict[str, str]:
    """The headers of ``GET /`` over HTTPS (SNI and Host: ``domain``) from the CDN edge inside the TLS plane."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    data = b""
    with socket.create_connection(_plane(cloud), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=domain) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\n\r\n".encode())
        while b"\r\n\r\n" not in data and (chunk := tls.recv(65536)):
            data += chunk
    status_line, *header_lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    assert status_line.split()[1] == "200", status_line
    return {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}


@pytest.mark.parametrize("lagging", [True, False], ids=["lagging-edge", "prompt-edge"])
def test_cdn_hsts_and_forced_https_are_proved_by_one_request_each(cloud: Any, tmp_path: Path, lagging: bool) -> None:
    domain = "www.example.test"
    cloud.seed({"certificates": [{"name": "www-leaf", "kind": "valid", "domains": [domain]}],
                "buckets": [{"name": STATE_BUCKET}],
                "cdn_domains": [{"name": domain, "certificate": "www-leaf",
                                 "configs": {"http_force": {"enable": "on"}}}]})
    cloud.tls.propagation_seconds = LAGGING_EDGE if lagging else PROMPT_EDGE
    lifecycle = lifecycle_for(cloud, write_policy(tmp_path, CDN_POSTURE_POLICY))
    ctx = lifecycle.ctx
    assert _edge_http(cloud, domain)[0] == 200 and "strict-transport-security" not in _edge_https(cloud, domain)

    result = _remediate(lifecycle, TargetRef(TargetKind.CDN_DOMAIN, domain, "", ACCOUNT))
    (action,) = result.actions
    assert action.params["DeleteSpecificConfig"][0]["function"] == "http_force"  # the rival goes first
    (pending,) = ctx.state.pending.all()  # type: ignore[union-attr]
    assert pending.expect == {"host": domain, "hsts": 5184000, "https_redirect": True}

    wait_until_due(ctx)
    verification = _single(verify_live.run_due(ctx))
    assert verification.connections == 2  # one HTTPS request for HSTS, one plain request for the redirect
    status, headers = _edge_http(cloud, domain)
    hsts = _edge_https(cloud, domain).get("strict-transport-security", "")
    if lagging:
        assert verification.verdict is LiveVerification.NOT_EFFECTIVE
        assert verification.detail == "sends no HSTS header; HTTP answers 200, not a redirect to HTTPS"
        assert status == 200 and hsts == ""
    else:
        assert verification.verdict is LiveVerification.EFFECTIVE, verification.detail
        assert verification.detail == f"sends HSTS max-age=5184000; HTTP answers 301 to https://{domain}/"
        assert status == 301 and headers["location"] == f"https://{domain}/index.html"
        assert hsts.startswith("max-age=5184000")


# -- hostile endpoints ---------------------------------------------------------------------------------------------
@pytest.fixture
def hostile(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    behaviour = request.param
    server = reset_server() if behaviour == "reset" else hostile_server(behaviour)
    with server as port:
        yield behaviour, port


REASONS = {
    "stall": "server stalled",
    "reset": "every handshake was closed or reset without a TLS alert",
    "garbage": "not a TLS reply",
}


@pytest.mark.parametrize("hostile", ["stall", "reset", "garbage"], indirect=True)
def test_a_hostile_endpoint_leaves_the_verification_pending_then_cannot_verify(
        cloud: Any, tmp_path: Path, sink: AlertSink, hostile: tuple[str, int]) -> None:
    behaviour, port = hostile
    cloud.seed({"buckets": [{"name": STATE_BUCKET}, drifted_bucket("edge-hostile")]})
    policy = write_policy(tmp_path, BUCKET_POLICY.replace(f"propagation_minutes: {WINDOW_MINUTES}",
                                                          "propagation_minutes: 0") + webhook_yaml(sink.url))
    lifecycle = lifecycle_for(cloud, policy)
    ctx = lifecycle.ctx
    result = _remediate(lifecycle, _bucket("edge-hostile"))
    ctx.ports.live = LiveProber(connect=("127.0.0.1", port), http_connect=("127.0.0.1", port), timeout=0.3)
    wiring_alerts = alert_path(wiring_for(cloud, policy), ctx.clock)
    assert wiring_alerts.attempts_before_alert == 2

    for attempt in (1, 2, 3):
        started = time.monotonic()
        verification = _single(verify_live.run_due(ctx))
        assert time.monotonic() - started < 4.0  # bounded by the probe's time budget
        assert verification.verdict is LiveVerification.PENDING, verification.detail  # never effective
        assert verification.attempts == attempt
        assert REASONS[behaviour] in verification.detail
        alerts = alert_path(wiring_for(cloud, policy), ctx.clock)
        alerts.observe_verification(verification)
        delivery = alerts.flush(command="verify")
        if attempt == 1:
            assert not delivery.sent and delivery.message is None  # one inconclusive try is not news
        elif attempt == 2:
            assert delivery.sent, delivery.error
            (problem,) = delivery.message["needs_attention"]  # type: ignore[index]
            assert problem["state"] == "cannot_verify" and problem["severity"] == "MEDIUM"
            assert problem["journal_id"] == result.journal_id
            assert "after 2 tries" in problem["message"] and REASONS[behaviour] in problem["message"]
        else:
            assert not delivery.sent  # already alerted: deduplicated
    assert [a["needs_attention"][0]["state"] for a in sink.alerts] == ["cannot_verify"]

    state = ctx.state
    assert state is not None
    (pending,) = state.pending.all()
    assert pending.journal_id == result.journal_id and len(pending.attempts) == 3
    stamp = result.journal_id.rsplit("/", 1)[-1]
    keys = list(state.bucket.keys(state.bucket.key("verify", "oss-bucket/edge-hostile") + "/"))
    assert sorted(k.rsplit("/", 1)[-1] for k in keys) == [f"{stamp}.attempt-{n}" for n in (1, 2, 3)] + \
        [f"{stamp}.json"]
    assert state.pending.result(_bucket("edge-hostile"), stamp) is None  # no verdict was ever recorded


def test_cannot_verify_resolves_once_the_real_edge_answers(cloud: Any, tmp_path: Path, sink: AlertSink) -> None:
    """The TLS plane itself resets the handshakes (a localcloud fault); once the fault is gone the verification is
    effective and the ``cannot_verify`` alert closes with one "resolved" line."""
    cloud.seed({"buckets": [{"name": STATE_BUCKET}, drifted_bucket("edge-flaky")]})
    policy = write_policy(tmp_path, BUCKET_POLICY.replace(f"propagation_minutes: {WINDOW_MINUTES}",
                                                          "propagation_minutes: 0") + webhook_yaml(sink.url))
    lifecycle = lifecycle_for(cloud, policy)
    ctx = lifecycle.ctx
    _remediate(lifecycle, _bucket("edge-flaky"))
    host = bucket_host("edge-flaky")
    fault = cloud.faults.add(FaultRule("reset", service="tls", operation="Handshake", resource=host))

    def one_run() -> Any:
        alerts = alert_path(wiring_for(cloud, policy), ctx.clock)
        verifications = verify_live.run_due(ctx)
        for verification in verifications:
            alerts.observe_verification(verification)
        return _single(verifications), alerts.flush(command="verify")

    first, _ = one_run()
    second, delivery = one_run()
    assert first.verdict is second.verdict is LiveVerification.PENDING
    assert second.attempts == 2 and delivery.sent
    assert [p["state"] for p in delivery.message["needs_attention"]] == ["cannot_verify"]  # type: ignore[index]
    assert fault.hits >= 8  # every handshake of both tries met the reset

    cloud.faults.remove(fault.id)
    healed, delivery = one_run()
    assert healed.verdict is LiveVerification.EFFECTIVE, healed.detail
    assert delivery.sent and delivery.message is not None
    assert delivery.message["needs_attention"] == []
    (resolved,) = delivery.message["resolved"]
    assert resolved["state"] == "cannot_verify" and resolved["id"] == str(_bucket("edge-flaky"))
    assert ctx.state.alerts.open_alerts() == {}  # type: ignore[union-attr]
    assert [len(a["resolved"]) for a in sink.alerts] == [0, 1]
