"""Loop and flap safety on localcloud: own-role events, duplicate deliveries, the breaker per target and check,
signed alerts. Events are the ActionTrail envelopes localcloud recorded, handled as on_change handles them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tlsguard import runs
from tlsguard.functions.events import Change, classify
from tlsguard.lifecycle import Lifecycle
from tlsguard.model import Outcome, TargetResult
from tlsguard.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookNotifier, verify
from tlsguard.policy.model import EncryptionAlgorithm, EncryptionPolicy, RawHttpsConfig
from tlsguard.retry import RetryPolicy
from tlsguard.wiring import alert_path

from tests.tlsguard.core._support import (
    ACCOUNT,
    ALICE,
    compliant_bucket,
    connection_for,
    journal_ids,
    lifecycle_for,
    outsider,
    ref,
    sweep_buckets,
    wiring_for,
    write_events,
    write_policy,
)

SECRET = "whsec-test-0123456789"
LEGACY = RawHttpsConfig(True, ("TLSv1.0", "TLSv1.1", "TLSv1.2"), True, True, True)
MODERN = RawHttpsConfig(True, ("TLSv1.2", "TLSv1.3"), True, True, True)
BUCKET = ref("flappy")
OWN = ["tlsguard-fc-role"]


class Receiver:
    """A loopback webhook receiver that records (headers, body) and answers ``status``."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(({k: v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self) -> list[dict[str, Any]]:
        out = []
        for headers, body in self.received:
            assert verify(SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
            out.append(json.loads(body))
        return out


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def notifier(url: str) -> WebhookNotifier:
    return WebhookNotifier(url, SECRET, timeout_seconds=2.0,
                           retry=RetryPolicy(attempts=2, initial_seconds=0.01, max_seconds=0.02))


def tls_writes(cloud: Any, since: int) -> list[dict[str, Any]]:
    return [e for e in write_events(cloud, since, BUCKET.name) if e["eventName"] == "PutBucketHttpsConfig"]


def changes(cloud: Any, since: int, event_name: str = "PutBucketHttpsConfig") -> list[Change]:
    """The recorded ActionTrail events on the bucket since ``since``, classified as on_change classifies them."""
    found = []
    for envelope in cloud.trail.events(since):
        if envelope["data"]["eventName"] != event_name:
            continue
        change = classify(envelope)
        assert isinstance(change, Change), change
        if change.targets and change.targets[0].name == BUCKET.name:
            found.append(change)
    return found


def handle(lifecycle: Lifecycle, change: Change) -> TargetResult:
    (result,) = runs.handle_change(lifecycle, change, OWN)
    return result


def drift_by_alice(cloud: Any, write: Any = None) -> Change:
    """Alice (a RAM user) changes the bucket; returns her change as EventBridge would deliver it."""
    since = len(cloud.trail.events())
    alice = outsider(cloud)
    if write is None:
        alice.put_https_config(BUCKET, LEGACY)
        name = "PutBucketHttpsConfig"
    else:
        name = write(alice)
    (change,) = changes(cloud, since, name)
    assert change.record["userIdentity"]["accessKeyId"] == ALICE[0]
    return change


def test_duplicate_concurrent_deliveries_are_processed_once(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    fleet(compliant_bucket(BUCKET.name))
    change = drift_by_alice(cloud)
    since = len(cloud.trail.events())
    lifecycle = lifecycle_for(cloud, write_policy(tmp_path), parallel_reads=True)
    # Four deliveries of one event, each of which has read the drifted https config before any of them writes.
    read_https = lifecycle.ctx.ports.oss.get_https_config
    all_read = threading.Barrier(4, timeout=30)
    reads = iter(range(1_000_000))
    count = threading.Lock()

    def read_then_meet(bucket: Any) -> RawHttpsConfig:
        config = read_https(bucket)
        with count:
            number = next(reads)
        if number < 4:  # the four judging reads (one per delivery) wait for each other
            all_read.wait()
        return config

    lifecycle.ctx.ports.oss.get_https_config = read_then_meet  # type: ignore[method-assign]
    start = threading.Barrier(4)
    results: list[TargetResult] = []
    lock = threading.Lock()

    def deliver() -> None:
        start.wait()
        result = handle(lifecycle, change)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.outcome.value for r in results) == ["compliant", "compliant", "compliant", "remediated"]
    assert sum(r.error_code == "DuplicateEvent" for r in results) == 3
    assert len(tls_writes(cloud, since)) == 1
    assert len(journal_ids(cloud)) == 1
    # A late redelivery of the same event does not act again, even though the bucket has drifted once more.
    outsider(cloud).put_https_config(BUCKET, LEGACY)
    before_late = len(tls_writes(cloud, since))
    late = handle(lifecycle, change)
    assert late.error_code == "DuplicateEvent" and len(tls_writes(cloud, since)) == before_late


def test_a_delivery_that_failed_before_writing_can_be_retried(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    fleet(compliant_bucket(BUCKET.name))
    change = drift_by_alice(cloud)
    lifecycle = lifecycle_for(cloud, write_policy(tmp_path))
    cloud.faults.add_dict({"kind": "error", "service": "oss", "operation": "GetBucketHttpsConfig",
                           "resource": BUCKET.name, "status": 503, "code": "ServiceUnavailable", "remaining": 4})
    first = handle(lifecycle, change)
    assert first.outcome is Outcome.FAILED and first.error_code == "ServiceUnavailable" and first.retryable
    retried = handle(lifecycle, change)  # FC's retry of the same event
    assert retried.outcome is Outcome.REMEDIATED, retried.reason
    assert retried.trigger.event_id == change.event_id and retried.trigger.actor == "ram-user:ops-alice"
    # After that, it is a duplicate: never acted on again, even if the bucket has drifted once more meanwhile.
    outsider(cloud).put_https_config(BUCKET, LEGACY)
    since = len(cloud.trail.events())
    again = handle(lifecycle, change)
    assert again.outcome is Outcome.COMPLIANT and again.error_code == "DuplicateEvent"
    assert cloud.trail.events(since) == []


def test_own_role_events_are_compared_but_never_written_twice(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    fleet(compliant_bucket(BUCKET.name))
    role = cloud.iam.assume_role(ACCOUNT, "tlsguard-fc-role", "react", cloud.clock.time())
    as_role = connection_for(cloud.endpoints, (role.access_key_id, role.access_key_secret), role.security_token)
    lifecycle = lifecycle_for(cloud, write_policy(tmp_path), connection=as_role)
    # GIVEN an outsider's drift, delivered as its ActionTrail event
    start = len(cloud.trail.events())
    alice_change = drift_by_alice(cloud)
    first = handle(lifecycle, alice_change)
    assert first.outcome is Outcome.REMEDIATED and first.trigger.actor == "ram-user:ops-alice"
    # WHEN our own rollback's event comes back
    (own_change,) = [c for c in changes(cloud, start) if c.event_id != alice_change.event_id]
    after_own = len(cloud.trail.events())
    echoed = handle(lifecycle, own_change)
    # THEN it is compared (compliant) and nothing is written
    assert echoed.trigger.own and echoed.trigger.actor.startswith("assumed-role:tlsguard-fc-role")
    assert echoed.outcome in (Outcome.COMPLIANT, Outcome.PENDING) and not echoed.actions
    assert cloud.trail.events(after_own) == []
    # AND even if the bucket drifted again meanwhile, our own event never leads to a write
    outsider(cloud).put_https_config(BUCKET, LEGACY)
    again = len(cloud.trail.events())
    stale = handle(lifecycle, own_change)
    assert stale.outcome is Outcome.REFUSED and "not written twice" in stale.reason
    assert cloud.trail.events(again) == []
    assert len(journal_ids(cloud)) == 1


def test_flapping_check_stops_at_the_breaker_and_alerts_with_actors(
        cloud: Any, fleet: Any, tmp_path: Path, receiver: Receiver) -> None:
    fleet(compliant_bucket(BUCKET.name))
    # A 5-minute window keeps localcloud's clock within OSS's 15-minute request-time skew while we move it.
    policy = write_policy(tmp_path, """
        version: 1
        defaults: {tls_versions: [TLSv1.2, TLSv1.3]}
        state: {bucket: tlsguard-state}
        guard: {max_remediations: 3, window_minutes: 5}
        """)
    wiring = wiring_for(cloud, policy, notifier=notifier(receiver.url))
    lifecycle = lifecycle_for(cloud, policy, wiring=wiring, parallel_reads=True)
    start = len(cloud.trail.events())
    outcomes = []
    deliveries = []
    for _ in range(5):
        change = drift_by_alice(cloud)
        cloud.clock.advance(30)
        alerts = alert_path(wiring, lifecycle.ctx.clock)  # one digest per on_change invocation
        result = handle(lifecycle, change)
        alerts.observe(result)
        deliveries.append(alerts.flush(command="on_change", correlation_id=change.event_id))
        outcomes.append(result)
    assert [r.outcome for r in outcomes] == [Outcome.REMEDIATED] * 3 + [Outcome.CONTESTED] * 2
    contested = outcomes[3]
    assert contested.error_code == "Contested" and "ops-alice" in contested.reason and "5 min" in contested.reason
    assert "oss.tls_versions remediated 3 times" in contested.reason and not contested.journal_id
    ours = [e for e in tls_writes(cloud, start) if e["userIdentity"]["accessKeyId"] != ALICE[0]]
    assert len(ours) == 3  # the breaker held: no fourth rollback
    # Alerts: one signed digest per invocation; the contested state is alerted once (deduplicated), with its actor
    assert [d.sent for d in deliveries] == [True, True, True, True, False] and not any(d.error for d in deliveries)
    digests = receiver.alerts()
    assert [len(d["remediated"]) for d in digests] == [1, 1, 1, 0]
    assert all(d["remediated"][0]["actor"] == "ram-user:ops-alice" for d in digests[:3])
    assert all(d["remediated"][0]["undo"] == f"tlsguard undo {d['remediated'][0]['journal_id']}"
               for d in digests[:3])
    (attention,) = digests[3]["needs_attention"]
    assert (attention["check"], attention["state"], attention["actor"]) == (
        "oss.tls_versions", "contested", "ram-user:ops-alice")
    assert "TLSv1.0" in attention["message"] and "ops-alice" in attention["reason"]
    assert attention["id"].endswith("/flappy")
    # Once the window has passed, tlsguard defends the bucket again.
    cloud.clock.advance(6 * 60)
    released = handle(lifecycle, drift_by_alice(cloud))
    assert released.outcome is Outcome.REMEDIATED, released.reason


def test_the_breaker_counts_each_check_of_a_target_separately(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    # GIVEN a breaker that trips at 3 remediations in the window
    fleet(compliant_bucket(BUCKET.name))
    policy = write_policy(tmp_path, """
        version: 1
        defaults:
          tls_versions: [TLSv1.2, TLSv1.3]
          cipher_suites: {mode: strong}
          https_only: true
          encryption: {algorithm: AES256}
        state: {bucket: tlsguard-state}
        guard: {max_remediations: 3, window_minutes: 5}
        """)
    lifecycle = lifecycle_for(cloud, policy)

    def delete_policy(alice: Any) -> str:
        alice.delete_policy(BUCKET)
        return "DeleteBucketPolicy"

    def weaken_encryption(alice: Any) -> str:
        alice.put_encryption(BUCKET, EncryptionPolicy(EncryptionAlgorithm.SM4))
        return "PutBucketEncryption"

    # WHEN one TLS, one policy and one encryption fix are made on the same bucket (three different checks)
    fixes = [handle(lifecycle, drift_by_alice(cloud, write)) for write in (None, delete_policy, weaken_encryption)]
    assert [r.outcome for r in fixes] == [Outcome.REMEDIATED] * 3, [r.reason for r in fixes]
    assert [r.actions[0].checks for r in fixes] == [("oss.tls_versions",), ("oss.https_only",),
                                                    ("oss.default_encryption",)]
    # THEN a fourth remediation is not contested: no check has been fixed three times
    fourth = handle(lifecycle, drift_by_alice(cloud))
    assert fourth.outcome is Outcome.REMEDIATED, fourth.reason
    fifth = handle(lifecycle, drift_by_alice(cloud))
    assert fifth.outcome is Outcome.REMEDIATED, fifth.reason
    # AND once TLS has been fixed three times, TLS alone is contested while the bucket's other checks are enforced
    alice = outsider(cloud)
    alice.put_https_config(BUCKET, LEGACY)
    alice.delete_policy(BUCKET)
    since = len(cloud.trail.events())
    mixed = sweep_buckets(lifecycle, [BUCKET.name])[0]
    assert mixed.outcome is Outcome.REMEDIATED, mixed.reason
    assert "contested: oss.tls_versions remediated 3 times" in mixed.reason
    assert [a.call for a in mixed.actions] == ["PutBucketPolicy"]
    assert [e["eventName"] for e in write_events(cloud, since, BUCKET.name)] == ["PutBucketPolicy"]
    assert outsider(cloud).get_https_config(BUCKET) == LEGACY  # left as the contesting actor set it


def test_a_failed_alert_is_reported_and_never_blocks_remediation(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    fleet(compliant_bucket(BUCKET.name))
    outsider(cloud).put_https_config(BUCKET, LEGACY)
    broken = Receiver(status=500)
    try:
        policy = write_policy(tmp_path)
        wiring = wiring_for(cloud, policy, notifier=notifier(broken.url))
        lifecycle = lifecycle_for(cloud, policy, wiring=wiring)
        alerts = alert_path(wiring, lifecycle.ctx.clock)
        (result,) = sweep_buckets(lifecycle)
        alerts.observe(result)
        delivery = alerts.flush(command="apply")
    finally:
        broken.server.shutdown()
        broken.server.server_close()
    assert result.outcome is Outcome.REMEDIATED
    assert outsider(cloud).get_https_config(BUCKET) == MODERN
    assert not delivery.sent and "webhook answered 500" in delivery.error
    assert delivery.to_dict()["error"] == delivery.error and delivery.to_dict()["remediated"] == 1
    assert len(broken.received) == 2  # retried with backoff, then given up
