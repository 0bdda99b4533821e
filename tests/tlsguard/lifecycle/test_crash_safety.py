"""Nothing is lost when a process dies (issue 13, item 4), proven the hard way: the official SDKs against localcloud.

1. Lost responses (localcloud's ``lost_response`` fault: the write lands, the answer never arrives): a write is
   settled by re-reading before any retry, so it lands exactly once (counted in localcloud's ActionTrail) and the
   journal says the response was lost; a facet somebody else changed meanwhile is not overwritten (superseded).
2. SIGKILL of ``tlsguard apply`` (the real CLI in a subprocess, localcloud in another process) at seeded random
   points, then a rerun: no change without a journal record, no drift left, no open intent left.
3. SIGKILL of an on_change invocation (the real handler in a subprocess, a real CloudEvent from localcloud's trail,
   the role's STS keys): FC's retry of the same event finishes the work under the event's lease; a completed event
   stays a duplicate. And the lease rules themselves.
4. The intent is journaled before the write: with every write attempt reset, the open intent with the planned
   document exists at each attempt, the outcome is failed and nothing changed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from tlsguard.adapters.oss import AliyunOss, connection_from_endpoints
from tlsguard.cli import cli
from tlsguard.errors import Transient
from tlsguard.lifecycle import RunContext
from tlsguard.model import Outcome, TargetKind, TargetRef
from tlsguard.policy.loader import load_policy
from tlsguard.policy.model import RawHttpsConfig
from tlsguard.ports import BucketRef, Ports
from tlsguard.retry import RetryPolicy
from tlsguard.runs import EventGate
from tlsguard.state import LeaseState, State

from localcloud.pytest_plugin import BASE_SEED
from tests.support import ACCOUNT, STATE_BUCKET, lifecycle_for, outsider, write_policy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tlsguard.lifecycle import Lifecycle

ROOT = Path(__file__).resolve().parents[3]
ROOT_KEY_ID = "LCTESTROOTKEY0000001"
REGION = "cn-hangzhou"
WRITES = ("PutBucketHttpsConfig", "PutBucketPolicy", "PutBucketEncryption")

POLICY = """
version: 1
mode: enforce
defaults:
  tls_versions: [TLSv1.2, TLSv1.3]
  cipher_suites: {mode: strong}
  https_only: true
  encryption: {algorithm: AES256}
state: {bucket: tlsguard-state}
certificates:
  renew_before_days: 30
  cdn_https:
    https_force: true
    tls_versions: [TLSv1.2, TLSv1.3]
    cipher_suite_group: strict
"""

LEGACY_HTTPS = {"tls": {"enable": True, "versions": ["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]},
                "cipher_suite": {"enable": True, "strong": True}}
COMPLIANT_HTTPS = {"tls": {"enable": True, "versions": ["TLSv1.2", "TLSv1.3"]},
                   "cipher_suite": {"enable": True, "strong": True}}
OUTSIDER_HTTPS = RawHttpsConfig(True, ("TLSv1.1", "TLSv1.2"), True, True, True)


def https_only_policy(bucket: str) -> str:
    return json.dumps({"Version": "1", "Statement": [{
        "Effect": "Deny", "Principal": ["*"], "Action": ["oss:*"],
        "Resource": [f"acs:oss:*:*:{bucket}", f"acs:oss:*:*:{bucket}/*"],
        "Condition": {"Bool": {"acs:SecureTransport": ["false"]}}}]})


def bucket_item(name: str, *, https: bool = True, policy: bool = True, encryption: bool = True) -> dict[str, Any]:
    """A bucket drifted in the facets named False (legacy TLS, no HTTPS-only policy, no default encryption)."""
    item: dict[str, Any] = {"name": name, "region": REGION, "https_config": COMPLIANT_HTTPS if https else LEGACY_HTTPS}
    if policy:
        item["policy"] = https_only_policy(name)
    if encryption:
        item["encryption"] = {"algorithm": "AES256"}
    return item


def bucket(name: str) -> TargetRef:
    return TargetRef(TargetKind.OSS_BUCKET, name, REGION, ACCOUNT)


def _resources(record: dict[str, Any]) -> list[str]:
    """The resources an ActionTrail record names (``referencedResources``, in ActionTrail's documented shape)."""
    return [name for names in (record.get("referencedResources") or {}).values() for name in names]


def trail_writes(events: list[dict[str, Any]], *, key_id: str | None = None, resource: str | None = None,
                 names: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """Successful ActionTrail write records (optionally by one access key, on one resource, of some names)."""
    found = []
    for envelope in events:
        data = envelope["data"]
        if data.get("errorCode"):
            continue
        if key_id is not None and data["userIdentity"].get("accessKeyId") != key_id:
            continue
        if resource is not None and resource not in _resources(data):
            continue
        if names is not None and data["eventName"] not in names:
            continue
        found.append(data)
    return found


def plan_outcomes(policy_path: Path, endpoints: Path | str, *targets: str) -> tuple[int, dict[str, str]]:
    """``tlsguard plan --json`` (the real command, in-process): exit code and outcome per target."""
    args = ["plan", "--policy", str(policy_path), "--localcloud", str(endpoints), "--json"]
    for name in targets:
        args += ["--target", name]
    result = CliRunner().invoke(cli, args, env=_clean_env())
    report = json.loads(result.stdout)
    return result.exit_code, {f"{item['target']['kind']}/{item['target']['name']}": item["outcome"]
                              for item in report["targets"]}


def journal_list(policy_path: Path, endpoints: Path | str, target: str = "") -> list[dict[str, Any]]:
    """``tlsguard journal list --json`` (the real command, in-process)."""
    args = ["journal", "list", "--policy", str(policy_path), "--localcloud", str(endpoints), "--json"]
    if target:
        args += ["--target", target]
    result = CliRunner().invoke(cli, args, env=_clean_env())
    assert result.exit_code == 0, result.output
    entries: list[dict[str, Any]] = json.loads(result.stdout)
    return entries


def _clean_env(**extra: str) -> dict[str, str | None]:
    """No TLSGUARD_* setting leaks in from the environment the tests run in."""
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("TLSGUARD_")}
    env.update(extra)
    return env


# ==================================================================================================================
# 1. Lost responses
# ==================================================================================================================
@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    return write_policy(tmp_path, POLICY)


def _seed_state(cloud: Any, *items: dict[str, Any], **sections: Any) -> None:
    cloud.seed({"buckets": [{"name": STATE_BUCKET, "region": REGION}, *items], **sections})


def _entry(lifecycle: Lifecycle, journal_id: str) -> Any:
    assert lifecycle.ctx.state is not None
    entry = lifecycle.ctx.state.journal.read(journal_id)
    assert entry is not None and entry.complete, journal_id
    return entry


def _wrap(obj: Any, name: str, after_failure: Callable[[], None]) -> None:
    """Run ``after_failure`` each time ``obj.name`` raises a Transient (the moment the client saw no answer)."""
    original = getattr(obj, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        except Transient:
            after_failure()
            raise

    setattr(obj, name, wrapped)


@pytest.mark.parametrize("times", ["once", "twice"])
def test_a_lost_https_write_response_lands_exactly_once_and_is_journaled(cloud: Any, policy_path: Path,
                                                                           times: str) -> None:
    _seed_state(cloud, bucket_item("lost-https", https=False, policy=False, encryption=False))
    lifecycle = lifecycle_for(cloud, policy_path)
    # GIVEN the answer to PutBucketHttpsConfig is lost (once; or twice: a second rule stays armed for any blind
    # retry, and the re-read that settles the write loses its answer too)
    cloud.faults.add_dict({"kind": "lost_response", "service": "oss", "operation": "PutBucketHttpsConfig",
                           "resource": "lost-https", "remaining": 1 if times == "once" else 2})
    if times == "twice":
        _wrap(lifecycle.ctx.ports.oss, "put_https_config", lambda: cloud.faults.add_dict(
            {"kind": "lost_response", "service": "oss", "operation": "GetBucketHttpsConfig",
             "resource": "lost-https", "remaining": 1}))
    # WHEN tlsguard remediates the bucket
    result = lifecycle.run(bucket("lost-https"))
    # THEN the write landed exactly once (ActionTrail), and nothing was written twice
    writes = trail_writes(cloud.trail.events(), resource="lost-https", names=("PutBucketHttpsConfig",))
    assert len(writes) == 1
    assert writes[0]["userIdentity"]["accessKeyId"] == ROOT_KEY_ID
    assert all(rule.hits == 1 for rule in cloud.faults.rules())
    # AND the target is remediated and verified by re-reading through the API
    assert result.outcome is Outcome.REMEDIATED, result.reason
    assert cloud.oss.get("lost-https").https.tls_versions == ("TLSv1.2", "TLSv1.3")
    code, outcomes = plan_outcomes(policy_path, _endpoints_file(cloud, policy_path), "lost-https")
    assert code == 0 and outcomes["oss-bucket/lost-https"] in ("compliant", "pending")
    # AND the journal holds one complete entry whose outcome says the response was lost and the re-read found it
    entries = journal_list(policy_path, _endpoints_file(cloud, policy_path), "lost-https")
    assert [e["status"] for e in entries] == ["applied"]
    entry = _entry(lifecycle, result.journal_id)
    https = next(a for a in entry.outcome["actions"] if a["call"] == "PutBucketHttpsConfig")
    assert https["status"] == "written"
    assert "response was lost" in https["detail"] and "landed" in https["detail"]
    assert entry.outcome["verified"] is True and entry.outcome["reconciled"] is False
    # AND the other writes of the target were made once each, normally
    assert Counter(w["eventName"] for w in trail_writes(cloud.trail.events(), resource="lost-https")) == {
        "PutBucketHttpsConfig": 1, "PutBucketPolicy": 1, "PutBucketEncryption": 1}


def test_a_lost_response_then_an_outsider_change_is_not_overwritten(cloud: Any, policy_path: Path) -> None:
    _seed_state(cloud, bucket_item("lost-rival", https=False, policy=False, encryption=False))
    lifecycle = lifecycle_for(cloud, policy_path)
    alice = outsider(cloud)
    cloud.faults.add_dict({"kind": "lost_response", "service": "oss", "operation": "PutBucketHttpsConfig",
                           "resource": "lost-rival", "remaining": 1})
    # GIVEN tlsguard's write lands but its answer is lost, and before tlsguard re-reads, ops-alice sets her own
    _wrap(lifecycle.ctx.ports.oss, "put_https_config",
          lambda: alice.put_https_config(BucketRef("lost-rival", REGION), OUTSIDER_HTTPS))
    # WHEN tlsguard settles the lost write
    result = lifecycle.run(bucket("lost-rival"))
    # THEN it does not write again: alice's configuration stands
    events = cloud.trail.events()
    ours = trail_writes(events, key_id=ROOT_KEY_ID, resource="lost-rival", names=("PutBucketHttpsConfig",))
    theirs = trail_writes(events, key_id="LCTESTUSERKEY0000001", resource="lost-rival")
    assert len(ours) == 1 and len(theirs) == 1
    assert cloud.oss.get("lost-rival").https.tls_versions == ("TLSv1.1", "TLSv1.2")
    # AND the run says so, and so does the journal: superseded, the later writes not attempted
    assert result.outcome is Outcome.FAILED and result.error_code == "Superseded", result.reason
    entry = _entry(lifecycle, result.journal_id)
    statuses = {a["call"]: a["status"] for a in entry.outcome["actions"]}
    assert statuses["PutBucketHttpsConfig"] == "superseded"
    assert set(statuses.values()) <= {"superseded", "not_attempted"}
    assert "someone else" in entry.outcome["reason"]
    assert not trail_writes(events, key_id=ROOT_KEY_ID, resource="lost-rival",
                            names=("PutBucketPolicy", "PutBucketEncryption"))


def test_a_lost_cdn_write_response_lands_exactly_once(cloud: Any, policy_path: Path) -> None:
    cloud.seed({"buckets": [{"name": STATE_BUCKET, "region": REGION}],
                "certificates": [{"name": "lost-www", "kind": "valid", "domains": ["www.lost-cdn.example"]}],
                "cdn_domains": [{"name": "www.lost-cdn.example", "certificate": "lost-www", "configs": {
                    "https_tls_version": {"tls10": "on", "tls11": "on", "tls12": "on", "tls13": "off",
                                          "ciphersuitegroup": "all"}}}]})
    cloud.faults.add_dict({"kind": "lost_response", "service": "cdn", "operation": "BatchSetCdnDomainConfig",
                           "remaining": 2})
    lifecycle = lifecycle_for(cloud, policy_path)
    result = lifecycle.run(TargetRef(TargetKind.CDN_DOMAIN, "www.lost-cdn.example", "", ACCOUNT))
    writes = trail_writes(cloud.trail.events(), resource="www.lost-cdn.example", names=("BatchSetCdnDomainConfig",))
    assert len(writes) == 1
    assert result.outcome is Outcome.REMEDIATED, result.reason
    entry = _entry(lifecycle, result.journal_id)
    [action] = entry.outcome["actions"]
    assert action["call"] == "BatchSetCdnDomainConfig" and action["status"] == "written"
    assert "response was lost" in action["detail"]
    code, outcomes = plan_outcomes(policy_path, _endpoints_file(cloud, policy_path), "cdn-domain:www.lost-cdn.example")
    assert code == 0 and outcomes["cdn-domain/www.lost-cdn.example"] in ("compliant", "pending")


def test_a_lost_put_cname_response_binds_the_renewed_certificate_once(cloud: Any, policy_path: Path) -> None:
    cloud.seed({"buckets": [{"name": STATE_BUCKET, "region": REGION},
                            {"name": "lost-cname", "region": REGION, "https_config": COMPLIANT_HTTPS,
                             "policy": https_only_policy("lost-cname"), "encryption": {"algorithm": "AES256"},
                             "cnames": [{"domain": "img.lost-cname.example", "certificate": "img-old"}]}],
                "certificates": [
                    {"name": "img-old", "kind": "expiring", "days": 9, "domains": ["img.lost-cname.example"]},
                    {"name": "img-new", "kind": "valid", "domains": ["img.lost-cname.example"]}]})
    cloud.faults.add_dict({"kind": "lost_response", "service": "oss", "operation": "PutCname", "remaining": 2})
    lifecycle = lifecycle_for(cloud, policy_path)
    target = TargetRef(TargetKind.OSS_CNAME, "img.lost-cname.example", REGION, ACCOUNT, "lost-cname")
    result = lifecycle.run(target)
    writes = trail_writes(cloud.trail.events(), resource="lost-cname", names=("PutCname",))
    assert len(writes) == 1
    assert result.outcome is Outcome.REMEDIATED, result.reason
    entry = _entry(lifecycle, result.journal_id)
    [action] = entry.outcome["actions"]
    assert action["call"] == "PutCname" and action["status"] == "written"
    assert "response was lost" in action["detail"]
    [planned] = entry.actions
    bound = cloud.oss.get("lost-cname").cnames["img.lost-cname.example"]
    assert str(planned.after["cert_id"]).split("-")[0] == str(bound.cert_id)
    assert str(planned.before["cert_id"]).split("-")[0] != str(bound.cert_id)


def _endpoints_file(cloud: Any, near: Path) -> Path:
    """The in-process localcloud's endpoints as a file (for the CLI's --localcloud)."""
    from localcloud.cloud import write_endpoints

    path = near.parent / "endpoints.json"
    write_endpoints(path, cloud.endpoints)
    return path


# ==================================================================================================================
# 4. The intent is journaled before the write
# ==================================================================================================================
def test_the_intent_is_journaled_before_every_write_attempt(cloud: Any, policy_path: Path) -> None:
    _seed_state(cloud, bucket_item("reset-every", https=False, policy=True, encryption=True))
    lifecycle = lifecycle_for(cloud, policy_path)
    assert lifecycle.ctx.state is not None
    journal = lifecycle.ctx.state.journal
    # GIVEN every PutBucketHttpsConfig is answered by a reset (the request is never carried out)
    cloud.faults.add_dict({"kind": "reset", "service": "oss", "operation": "PutBucketHttpsConfig"})
    seen: list[list[dict[str, Any]]] = []
    oss_port = lifecycle.ctx.ports.oss
    original = oss_port.put_https_config

    def observed(ref: BucketRef, config: RawHttpsConfig) -> None:
        # at the moment of each attempt: which intents are open, and what they plan
        entries = [journal.read(i) for i in journal.open_ids(bucket("reset-every"))]
        seen.append([entry.intent for entry in entries if entry is not None])
        original(ref, config)

    setattr(oss_port, "put_https_config", observed)  # noqa: B010 - the adapter instance, observed
    result = lifecycle.run(bucket("reset-every"))
    # THEN every attempt (the lifecycle's own settle-and-retry: 3) found the open intent with the planned document
    assert len(seen) == lifecycle.ctx.write_attempts == 3
    for intents in seen:
        [intent] = intents
        [action] = intent["actions"]
        assert action["call"] == "PutBucketHttpsConfig"
        assert action["before"]["tls"]["versions"] == ["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
        assert action["after"]["tls"]["versions"] == ["TLSv1.2", "TLSv1.3"]
        assert intent["journal_id"] == result.journal_id
    # AND the outcome is failed (a transient error: FC would retry), and nothing was changed
    assert result.outcome is Outcome.FAILED and result.retryable, result.reason
    assert trail_writes(cloud.trail.events(), resource="reset-every") == []
    assert cloud.oss.get("reset-every").https.tls_versions == ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
    entries = journal_list(policy_path, _endpoints_file(cloud, policy_path), "reset-every")
    assert [(e["status"], e["calls"]) for e in entries] == [("failed", ["PutBucketHttpsConfig"])]
    entry = _entry(lifecycle, result.journal_id)
    assert entry.outcome["actions"] == [{"call": "PutBucketHttpsConfig", "status": "failed",
                                         "detail": entry.outcome["actions"][0]["detail"]}]
    assert journal.open_ids(bucket("reset-every")) == []


def test_a_process_dying_at_its_first_write_leaves_the_open_intent_with_the_planned_document(
        cloud: Any, policy_path: Path) -> None:
    _seed_state(cloud, bucket_item("dies-at-write", https=False))
    lifecycle = lifecycle_for(cloud, policy_path)

    _die_on(lifecycle.ctx.ports.oss, "put_https_config")
    with pytest.raises(Died):
        lifecycle.run(bucket("dies-at-write"))
    endpoints = _endpoints_file(cloud, policy_path)
    [entry] = journal_list(policy_path, endpoints, "dies-at-write")
    assert entry["status"] == "incomplete" and entry["calls"] == ["PutBucketHttpsConfig"]
    shown = CliRunner().invoke(cli, ["journal", "show", entry["journal_id"], "--policy", str(policy_path),
                                     "--localcloud", str(endpoints), "--json"], env=_clean_env())
    document = json.loads(shown.stdout)
    assert document["outcome"] is None
    assert document["intent"]["actions"][0]["after"]["tls"]["versions"] == ["TLSv1.2", "TLSv1.3"]
    assert trail_writes(cloud.trail.events(), resource="dies-at-write") == []


class Died(BaseException):
    """Nothing in tlsguard catches this: the process is gone at this point."""


def _die_on(obj: Any, name: str) -> None:
    def die(*args: Any, **kwargs: Any) -> None:
        raise Died(name)

    setattr(obj, name, die)


@pytest.mark.parametrize("dies_in", ["write_outcome", "pending.add"])
def test_a_write_that_landed_before_the_process_died_keeps_its_live_verification(
        cloud: Any, policy_path: Path, dies_in: str) -> None:
    from tlsguard.runs import start_run

    _seed_state(cloud, bucket_item("dies-after-write", https=False))
    first = lifecycle_for(cloud, policy_path)
    assert first.ctx.state is not None
    # GIVEN a run that dies after its write landed: before filing the outcome, or before the pending verification
    _die_on(first.ctx.state.journal if dies_in == "write_outcome" else first.ctx.state.pending, dies_in.split(".")[-1])
    with pytest.raises(Died):
        first.run(bucket("dies-after-write"))
    assert cloud.oss.get("dies-after-write").https.tls_versions == ("TLSv1.2", "TLSv1.3")
    # WHEN the next run reconciles it
    rerun = lifecycle_for(cloud, policy_path)
    rerun.ctx.reconcile_after_seconds = 0
    start_run(rerun)
    result = rerun.run(bucket("dies-after-write"))
    # THEN the journal is complete, nothing was written twice, and the live proof of the write is still due
    assert rerun.ctx.state is not None
    [entry] = list(rerun.ctx.state.journal.iterate(target_name="dies-after-write"))
    assert entry.status == "applied"
    assert len(trail_writes(cloud.trail.events(), resource="dies-after-write")) == 1
    [pending] = rerun.ctx.state.pending.all(bucket("dies-after-write"))
    assert pending.journal_id == entry.journal_id and pending.expect["tls_versions"]
    assert result.outcome is Outcome.PENDING, result.reason


def test_a_retry_finishes_the_journal_of_a_claimant_that_died_after_writing(
        cloud: Any, policy_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tlsguard.functions.events import Change, classify
    from tlsguard.runs import handle_change

    monkeypatch.setenv("TLSGUARD_EVENT_LEASE_SECONDS", "1")
    _seed_state(cloud, bucket_item("retry-journal"))
    alice = outsider(cloud)
    alice.put_https_config(BucketRef("retry-journal", REGION), OUTSIDER_HTTPS)
    envelope = cloud.trail.events()[-1]
    change = classify(envelope)
    assert isinstance(change, Change)
    own = ("tlsguard-fc-role",)
    # GIVEN the invocation handling the event wrote its fix, then died before filing the outcome (lease still held)
    first = lifecycle_for(cloud, policy_path, parallel_reads=True)
    assert first.ctx.state is not None
    _die_on(first.ctx.state.journal, "write_outcome")
    with pytest.raises(Died):
        handle_change(first, change, own)
    # WHEN FC retries the event (the target is already compliant)
    retry = lifecycle_for(cloud, policy_path, parallel_reads=True)
    [result] = handle_change(retry, change, own)
    assert result.outcome in (Outcome.COMPLIANT, Outcome.PENDING), result.reason
    # THEN it took over the dead claimant's lease and finished its journal (no open intent waits for a sweep)
    assert retry.ctx.state is not None
    assert retry.ctx.state.journal.open_ids(bucket("retry-journal")) == []
    [entry] = list(retry.ctx.state.journal.iterate(target_name="retry-journal"))
    assert entry.status == "applied" and entry.outcome is not None and entry.outcome["reconciled"]
    # AND the event is done: delivered again after new drift, it is a duplicate and writes nothing
    writes = len(trail_writes(cloud.trail.events(), key_id=ROOT_KEY_ID))
    alice.put_https_config(BucketRef("retry-journal", REGION), OUTSIDER_HTTPS)
    [again] = handle_change(lifecycle_for(cloud, policy_path, parallel_reads=True), change, own)
    assert again.error_code == "DuplicateEvent", again.reason
    assert len(trail_writes(cloud.trail.events(), key_id=ROOT_KEY_ID)) == writes


# ==================================================================================================================
# 3a. Event leases (the state bucket's create-if-absent objects, through the SDK, against localcloud)
# ==================================================================================================================
class FakeClock:
    """A clock that only moves when something sleeps (the gate's polling), so waits are exact and instant."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []
        self.on_sleep: Callable[[], None] | None = None

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep()


def _state(cloud: Any, lease_seconds: float) -> tuple[State, AliyunOss]:
    _seed_state(cloud)
    from tests.support import connection_for

    oss_port = AliyunOss(connection_for(cloud.endpoints), retry=RetryPolicy(attempts=3, initial_seconds=0.01,
                                                                             max_seconds=0.02, jitter_seconds=0.0))
    return State.open(oss_port, STATE_BUCKET, "tlsguard/", lease_seconds=lease_seconds), oss_port


def test_concurrent_deliveries_of_one_event_acquire_it_exactly_once(cloud: Any) -> None:
    state, _ = _state(cloud, 20.0)
    barrier = threading.Barrier(8)
    decisions: list[Any] = []
    lock = threading.Lock()

    def deliver() -> None:
        barrier.wait()
        decision = state.leases.acquire("EVENT-CONCURRENT", now=1000.0)
        with lock:
            decisions.append(decision)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    states = Counter(d.state for d in decisions)
    assert states == {LeaseState.ACQUIRED: 1, LeaseState.BUSY: 7}
    [winner] = [d for d in decisions if d.state is LeaseState.ACQUIRED]
    assert winner.lease is not None and winner.lease.generation == 1 and not winner.lease.taken_over
    assert {d.holder_expires_at for d in decisions if d.state is LeaseState.BUSY} == {1020.0}


def test_lease_rules_takeover_done_forever_and_release(cloud: Any) -> None:
    state, _ = _state(cloud, 1.0)
    leases = state.leases
    first = leases.acquire("EVENT-A", now=100.0)
    assert first.state is LeaseState.ACQUIRED and first.lease is not None and first.lease.generation == 1
    # a live claimant: busy, with its expiry
    busy = leases.acquire("EVENT-A", now=100.5)
    assert busy.state is LeaseState.BUSY and busy.holder_expires_at == 101.0
    # the claimant died (no done, no release): after its expiry the next delivery takes over as generation 2
    second = leases.acquire("EVENT-A", now=101.5)
    assert second.state is LeaseState.ACQUIRED and second.lease is not None
    assert second.lease.generation == 2 and second.lease.taken_over
    assert leases.acquire("EVENT-A", now=102.0).state is LeaseState.BUSY
    # done: every later delivery is a duplicate, forever
    leases.complete(second.lease)
    for later in (102.0, 5_000.0, 10_000_000.0):
        assert leases.acquire("EVENT-A", now=later).state is LeaseState.DUPLICATE
    # released (a transient failure): the next delivery acquires at once, inside the released lease
    held = leases.acquire("EVENT-B", now=200.0)
    assert held.lease is not None
    leases.release(held.lease)
    again = leases.acquire("EVENT-B", now=200.1)
    assert again.state is LeaseState.ACQUIRED and again.lease is not None and again.lease.generation == 2
    # a completed generation 1 is a duplicate too
    fresh = leases.acquire("EVENT-C", now=300.0)
    assert fresh.lease is not None
    leases.complete(fresh.lease)
    assert leases.acquire("EVENT-C", now=300.1).state is LeaseState.DUPLICATE


def _gate(cloud: Any, state: State, oss_port: AliyunOss, clock: FakeClock, policy_path: Path,
          event_id: str) -> EventGate:
    ctx = RunContext(ports=Ports(oss=oss_port, account=ACCOUNT), policy=load_policy(policy_path), state=state,
                     clock=clock.time, apply=True, sleep=clock.sleep)
    return EventGate(ctx, event_id, {"event_name": "PutBucketHttpsConfig", "actor": "ram-user:ops-alice"})


def test_a_live_holder_makes_the_gate_wait_then_take_over_once_expired(cloud: Any, policy_path: Path) -> None:
    state, oss_port = _state(cloud, 3.0)
    clock = FakeClock()
    holder = state.leases.acquire("EVENT-WAIT", now=clock.time())
    assert holder.state is LeaseState.ACQUIRED
    gate = _gate(cloud, state, oss_port, clock, policy_path, "EVENT-WAIT")
    decision = gate()
    # THEN it polled while the holder's lease ran (never past it by more than one poll) and then took over
    assert decision.state is LeaseState.ACQUIRED and decision.lease is not None
    assert decision.lease.generation == 2 and decision.lease.taken_over
    assert len(clock.slept) >= 2 and all(0 < s <= 0.5 for s in clock.slept)
    assert 3.0 <= sum(clock.slept) <= 3.5
    # AND the decision is shared by every target of the event (no second claim)
    assert gate() is decision
    gate.finish(retry=False)
    assert state.leases.acquire("EVENT-WAIT", now=clock.time() + 100).state is LeaseState.DUPLICATE


def test_a_holder_that_finishes_while_the_gate_waits_makes_it_a_duplicate(cloud: Any, policy_path: Path) -> None:
    state, oss_port = _state(cloud, 3.0)
    clock = FakeClock()
    holder = state.leases.acquire("EVENT-FINISH", now=clock.time())
    assert holder.lease is not None
    lease = holder.lease

    def holder_finishes() -> None:
        if len(clock.slept) == 2:
            state.leases.complete(lease)

    clock.on_sleep = holder_finishes
    decision = _gate(cloud, state, oss_port, clock, policy_path, "EVENT-FINISH")()
    assert decision.state is LeaseState.DUPLICATE
    assert len(clock.slept) == 2 and sum(clock.slept) < 3.0


# ==================================================================================================================
# localcloud in another process, driven through its control API
# ==================================================================================================================
FLEET_SIZE = 40
FLEET_SEED = 1304
KILL_SEED = 20261207
LATENCY_MS = 5


def _fleet() -> list[dict[str, Any]]:
    """~40 drifted buckets; each drifts in a seeded, non-empty subset of https config, policy and encryption."""
    rng = random.Random(FLEET_SEED)
    items = []
    for index in range(FLEET_SIZE):
        drift = {facet: rng.random() < chance for facet, chance in (("https", 0.8), ("policy", 0.6),
                                                                      ("encryption", 0.6))}
        if not any(drift.values()):
            drift["https"] = True
        items.append(bucket_item(f"crash-{index:03d}", https=not drift["https"], policy=not drift["policy"],
                                 encryption=not drift["encryption"]))
    return items


def _seed_document(*items: dict[str, Any]) -> dict[str, Any]:
    return {"region": REGION, "propagation_seconds": 0, "accounts": BASE_SEED["accounts"],
            "buckets": [{"name": STATE_BUCKET, "region": REGION}, *items]}


@dataclasses.dataclass
class Served:
    """localcloud running as ``python -m localcloud serve`` in its own process."""

    proc: subprocess.Popen[bytes]
    endpoints_file: Path
    endpoints: dict[str, Any]
    base: Path
    policy_path: Path

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.endpoints["control"] + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def reset(self, document: dict[str, Any]) -> None:
        self.control("POST", "/reset")
        self.control("POST", "/seed", document)

    def mutations(self) -> int:
        """Write calls OSS has received so far (state objects included): where a run is, to kill it there."""
        stats = self.control("GET", "/stats")
        return sum(n for name, n in stats.items() if name.startswith(("oss:Put", "oss:Delete")))

    def events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.control("GET", "/events")
        return events

    def state(self) -> State:
        oss_port = AliyunOss(connection_from_endpoints(self.endpoints_file),
                             retry=RetryPolicy(attempts=4, initial_seconds=0.05, max_seconds=0.2))
        return State.open(oss_port, STATE_BUCKET, "tlsguard/")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("crash-safety")
    seed_file = base / "seed.json"
    seed_file.write_text(json.dumps(_seed_document(*_fleet())))
    endpoints_file = base / "endpoints.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "shared")]))
    with open(base / "localcloud.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "localcloud", "serve", "--seed", str(seed_file),
                                 "--endpoints-file", str(endpoints_file), "--propagation-seconds", "0"],
                                cwd=base, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while not endpoints_file.exists():
            assert proc.poll() is None, (base / "localcloud.log").read_text()
            assert time.monotonic() < deadline, "localcloud wrote no endpoints file within 60 s"
            time.sleep(0.05)
        endpoints = json.loads(endpoints_file.read_text())
        yield Served(proc, endpoints_file, endpoints, base, write_policy(base, POLICY))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _kill_when(proc: subprocess.Popen[Any], reached: Callable[[], bool], timeout: float = 90.0) -> bool:
    """SIGKILL ``proc`` as soon as ``reached()``; False when it finished first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if reached():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        assert time.monotonic() < deadline, "the run neither finished nor reached its kill point"
        time.sleep(0.004)
    return False


def _journal_by_action(entries: list[Any]) -> dict[tuple[str, str], list[tuple[float, str]]]:
    """(bucket, call) → [(intent time, status)] for every journal action: filed, or open (status "open")."""
    found: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    for entry in entries:
        statuses = (entry.outcome or {}).get("actions") or []
        for index, action in enumerate(entry.intent.get("actions") or []):
            status = statuses[index]["status"] if index < len(statuses) else "open"
            found[(entry.target.name, str(action["call"]))].append((entry.epoch, status))
    return found


def _unjournaled(writes: list[dict[str, Any]], journal: dict[tuple[str, str], list[tuple[float, str]]]
                 ) -> list[str]:
    """The writes that no journal action accounts for: each write is matched, in time order, to an action of its
    bucket and call journaled (as intent) no later than the write and recorded as written (or still open)."""
    by_key: dict[tuple[str, str], list[float]] = defaultdict(list)
    for write in writes:
        stamp = dt.datetime.strptime(write["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
        by_key[(";".join(_resources(write)), write["eventName"])].append(stamp.timestamp())
    missing = []
    for key, times in by_key.items():
        candidates = sorted(t for t, status in journal.get(key, []) if status in ("written", "not_verified", "open"))
        for when in sorted(times):
            # ActionTrail times have one-second resolution: an intent within that second counts as before
            match = next((t for t in candidates if int(t) <= when), None)
            if match is None:
                missing.append(f"{key[0]} {key[1]} at {when}")
            else:
                candidates.remove(match)
    return missing


def _cli(served: Served, *args: str) -> list[str]:
    return [sys.executable, "-m", "tlsguard", *args, "--policy", str(served.policy_path), "--localcloud",
            str(served.endpoints_file)]


def _cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TLSGUARD_")}
    env.update({"TLSGUARD_LOG_LEVEL": "WARNING", **extra})
    return env


# ==================================================================================================================
# 2. SIGKILL during `tlsguard apply`
# ==================================================================================================================
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigkill_during_apply_then_a_rerun_loses_nothing(served: Served) -> None:
    rng = random.Random(KILL_SEED)
    document = _seed_document(*_fleet())
    # OSS write calls of one whole run (intent, writes, outcome and its copy, open-intent delete, pending record)
    writes_per_run = sum(5 + sum(1 for key in ("policy", "encryption") if key not in item)
                         + (1 if item["https_config"] is LEGACY_HTTPS else 0) for item in document["buckets"][1:])
    state = served.state()
    counts: Counter[str] = Counter()
    started = time.monotonic()
    rounds = 0
    while counts["kills"] < 20 and rounds < 8:
        rounds += 1
        served.reset(document)
        done_in_round = 0
        for attempt in range(5):  # kills in a row: a later run is killed while it reconciles what the last one left
            served.control("POST", "/faults", {"kind": "latency", "service": "oss", "latency_ms": LATENCY_MS})
            base = served.mutations()
            point = rng.randint(1, max(2, (writes_per_run - done_in_round) * 2 // 3))
            proc = subprocess.Popen(_cli(served, "apply"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env=_cli_env(**({"TLSGUARD_RECONCILE_AFTER_SECONDS": "0"} if attempt else {})))
            killed = _kill_when(proc, lambda: served.mutations() - base >= point)  # noqa: B023
            done_in_round += served.mutations() - base
            served.control("DELETE", "/faults")
            if not killed:
                counts["finished_before_kill"] += 1
                continue
            counts["kills"] += 1
            if state.journal.open_ids():
                counts["kills_mid_write"] += 1
        # THEN a rerun (reconciling at once) finishes the work
        rerun = subprocess.run(_cli(served, "apply", "--json"), capture_output=True, timeout=120,
                               env=_cli_env(TLSGUARD_RECONCILE_AFTER_SECONDS="0"))
        report = json.loads(rerun.stdout)
        assert rerun.returncode == 0, (rerun.stderr.decode()[-2000:], report["summary"])
        # AND no open intent is left (`tlsguard journal list --json` in the last round; the open/ listing in each)
        assert state.journal.open_ids() == []
        if counts["kills"] >= 20:
            entries = journal_list(served.policy_path, served.endpoints_file)
            assert entries and [e["journal_id"] for e in entries if e["status"] == "incomplete"] == []
        # AND no drift is left
        code, outcomes = plan_outcomes(served.policy_path, served.endpoints_file)
        assert code == 0 and set(outcomes.values()) <= {"compliant", "pending"}, outcomes
        assert len(outcomes) == FLEET_SIZE
        # AND every change tlsguard made has its journal record
        entries_read = list(state.journal.iterate())
        assert all(entry.complete for entry in entries_read)
        writes = trail_writes(served.events(), key_id=ROOT_KEY_ID, names=WRITES)
        missing = _unjournaled(writes, _journal_by_action(entries_read))
        assert missing == [], missing
        counts["changes"] += len(writes)
        counts["changes_without_journal_record"] += len(missing)
        # AND every TLS change that landed still has its live verification due (none lost with the process)
        pending = {item.journal_id for item in state.pending.all()}
        for entry in entries_read:
            assert entry.outcome is not None
            landed = [a for a, s in zip(entry.actions, entry.outcome["actions"], strict=True)
                      if s["status"] == "written"]
            if any(a.facet == "https_config" for a in landed):
                assert entry.journal_id in pending, entry.journal_id
                counts["live_verifications_due"] += 1
            if entry.outcome.get("reconciled"):
                counts["reconciled_entries"] += 1
                counts["writes_landed_before_their_outcome"] += bool(landed)
    elapsed = time.monotonic() - started
    print(f"\ncrash-safety apply: {rounds} rounds, {counts['kills']} SIGKILLs ({counts['kills_mid_write']} left an "
          f"open intent, i.e. mid-write; {counts['writes_landed_before_their_outcome']} intents whose writes had "
          f"landed without an outcome), {counts['finished_before_kill']} runs finished first, "
          f"{counts['reconciled_entries']} intents reconciled, {counts['live_verifications_due']} live "
          f"verifications due, {counts['changes']} changes, "
          f"{counts['changes_without_journal_record']} changes without a journal record, {elapsed:.1f} s")
    assert counts["kills"] >= 20
    assert counts["kills_mid_write"] >= 1 and counts["writes_landed_before_their_outcome"] >= 1
    assert counts["changes_without_journal_record"] == 0


# ==================================================================================================================
# 3b. SIGKILL during on_change: FC's retry of the same event finishes the work
# ==================================================================================================================
#: A function instance: imports the handler, says "ready", then runs on_change for each event it is handed (one
#: JSON line in, one JSON line out), with an FC-shaped context; the role's keys come from ALIBABA_CLOUD_* (as on
#: python3.12, and as localcloud's sdeploy sets them).
FUNCTION_INSTANCE = r"""
import json, sys, types
from tlsguard.functions import handlers
import tlsguard.adapters.oss, tlsguard.lifecycle, tlsguard.runs, tlsguard.wiring, alibabacloud_oss_v2  # warm
print("ready", flush=True)
for line in sys.stdin:
    message = json.loads(line)
    context = types.SimpleNamespace(request_id=message["request_id"], region="cn-hangzhou",
                                    account_id=message["account_id"],
                                    function=types.SimpleNamespace(name="tlsguard-on-change"))
    try:
        answer = {"ok": True, "result": handlers.on_change(json.dumps(message["event"]).encode(), context)}
    except Exception as exc:
        answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(answer, default=str), flush=True)
"""
EVENT_TRIALS = 20


class FunctionInstance:
    """One on_change instance in its own process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        with open(log, "ab") as stderr:
            self.proc = subprocess.Popen([sys.executable, "-c", FUNCTION_INSTANCE], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=stderr, env=env, text=True, bufsize=1)
        self._ready = False

    def _line(self, timeout: float) -> str | None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline() if ready else None

    def wait_ready(self, timeout: float = 60.0) -> None:
        if not self._ready:
            line = self._line(timeout)
            assert line == "ready\n", f"function instance did not start: {line!r}"
            self._ready = True

    def deliver(self, event: dict[str, Any], request_id: str) -> None:
        self.wait_ready()
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"event": event, "request_id": request_id, "account_id": ACCOUNT}) + "\n")
        self.proc.stdin.flush()

    def answer(self, timeout: float = 90.0) -> dict[str, Any]:
        line = self._line(timeout)
        assert line, "the invocation did not answer in time"
        document: dict[str, Any] = json.loads(line)
        return document

    def finished(self) -> bool:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 0)
        return bool(ready)

    def invoke(self, event: dict[str, Any], request_id: str) -> dict[str, Any]:
        self.deliver(event, request_id)
        return self.answer()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def _event_done(state: State, event_id: str) -> bool:
    """Whether some claimant marked the event handled (a ``.done`` generation under claims/)."""
    import hashlib

    prefix = state.bucket.key("claims", hashlib.sha256(event_id.encode()).hexdigest() + ".")
    return any(key.endswith(".done") for key in state.bucket.keys(prefix))


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigkill_during_on_change_then_fc_retry_finishes_the_work(served: Served) -> None:
    rng = random.Random(KILL_SEED + 1)
    names = [f"evt-{index:03d}" for index in range(EVENT_TRIALS + 5)]
    served.reset(_seed_document(*(bucket_item(name) for name in names)))
    role = served.control("POST", "/sts/assume-role", {"role": "tlsguard-fc-role", "session": "on-change"})
    env = _cli_env(TLSGUARD_LOCALCLOUD=str(served.endpoints_file), TLSGUARD_POLICY=str(served.policy_path),
                   TLSGUARD_EVENT_LEASE_SECONDS="1", ALIBABA_CLOUD_ACCESS_KEY_ID=role["AccessKeyId"],
                   ALIBABA_CLOUD_ACCESS_KEY_SECRET=role["AccessKeySecret"],
                   ALIBABA_CLOUD_SECURITY_TOKEN=role["SecurityToken"])
    log = served.base / "on_change.log"
    alice = AliyunOss(dataclasses.replace(connection_from_endpoints(served.endpoints_file),
                                          access_key_id="LCTESTUSERKEY0000001",
                                          access_key_secret="lc-test-user-secret-0000000000001"),
                      retry=RetryPolicy(attempts=3, initial_seconds=0.05))
    state = served.state()
    retrying = FunctionInstance(env, log)  # a warm instance FC sends the retries to
    doomed = FunctionInstance(env, log)
    counts: Counter[str] = Counter()
    started = time.monotonic()

    def drift(name: str) -> dict[str, Any]:
        """ops-alice drifts the bucket; returns the CloudEvent EventBridge delivers for her https change."""
        ref = BucketRef(name, REGION)
        alice.put_https_config(ref, RawHttpsConfig(True, ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"), True, True,
                                                   True))
        alice.delete_policy(ref)
        envelope: dict[str, Any] = next(e for e in reversed(served.events())
                                        if e["data"]["eventName"] == "PutBucketHttpsConfig"
                                        and _resources(e["data"]) == [name])
        assert envelope["data"]["userIdentity"]["userName"] == "ops-alice"
        return envelope

    def role_writes(name: str) -> list[dict[str, Any]]:
        return trail_writes(served.events(), key_id=role["AccessKeyId"], resource=name)

    try:
        for trial in range(EVENT_TRIALS):
            name = names[trial]
            event = drift(name)
            # WHEN the invocation handling the event is SIGKILLed at a seeded random point of its writes
            point = rng.randint(1, 9)
            doomed.wait_ready()
            served.control("POST", "/faults", {"kind": "latency", "service": "oss", "latency_ms": 15})
            base = served.mutations()
            doomed.deliver(event, f"first-{trial}")
            deadline = time.monotonic() + 60
            while not doomed.finished() and served.mutations() - base < point:
                assert time.monotonic() < deadline, "the invocation neither finished nor reached its kill point"
                time.sleep(0.003)
            finished_first = doomed.finished()
            doomed.kill()
            served.control("DELETE", "/faults")
            counts["finished_before_kill" if finished_first else "kills"] += 1
            if not finished_first and state.journal.open_ids(bucket(name)):
                counts["kills_mid_write"] += 1
            doomed = FunctionInstance(env, log)  # the next trial's instance starts while the retry runs
            # THEN FC's retry of the same event finishes the work (waiting out the dead claimant's lease)
            answer = retrying.invoke(event, f"retry-{trial}")
            assert answer["ok"], answer
            [handled] = answer["result"]["handled"]
            assert handled["outcome"] in ("remediated", "compliant", "pending"), handled
            counts[f"retry_{handled['outcome']}"] += 1
            # AND no drift is left
            code, outcomes = plan_outcomes(served.policy_path, served.endpoints_file, name)
            assert code == 0 and outcomes[f"oss-bucket/{name}"] in ("compliant", "pending"), outcomes
            # AND every change the role made has its journal record (filed, or the dead claimant's open intent)
            writes = role_writes(name)
            missing = _unjournaled(writes, _journal_by_action(list(state.journal.iterate(target_name=name))))
            assert missing == [], missing
            counts["changes"] += len(writes)
            counts["changes_without_journal_record"] += len(missing)
            # AND no open intent is left: the retry took the dead claimant's lease over and finished its journal
            assert state.journal.open_ids(bucket(name)) == []
            # AND a third delivery of the completed event writes nothing
            third = retrying.invoke(event, f"third-{trial}")
            assert third["ok"], third
            [handled_again] = third["result"]["handled"]
            assert handled_again["outcome"] in ("compliant", "pending"), handled_again
            assert len(role_writes(name)) == len(writes)
            # AND once the event is marked done, it stays a duplicate: even after new drift it is not acted on
            if _event_done(state, event["id"]):
                counts["events_marked_done"] += 1
                drift(name)
                again = retrying.invoke(event, f"again-{trial}")
                assert again["ok"], again
                [duplicate] = again["result"]["handled"]
                assert duplicate["error_code"] == "DuplicateEvent", duplicate
                assert len(role_writes(name)) == len(writes)
    finally:
        retrying.kill()
        doomed.kill()
    elapsed = time.monotonic() - started
    print(f"\ncrash-safety on_change: {EVENT_TRIALS} trials, {counts['kills']} SIGKILLs "
          f"({counts['kills_mid_write']} left an open intent), {counts['finished_before_kill']} invocations finished "
          f"first; retries: {counts['retry_remediated']} remediated, {counts['retry_compliant']} compliant, "
          f"{counts['retry_pending']} pending; {counts['changes']} changes, {counts['changes_without_journal_record']} "
          f"without a journal record; {counts['events_marked_done']} events marked done (duplicates after new "
          f"drift); {elapsed:.1f} s")
    assert counts["kills"] >= EVENT_TRIALS // 2 and counts["kills_mid_write"] >= 1
    assert counts["changes_without_journal_record"] == 0
