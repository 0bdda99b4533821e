"""The alert path (issue 13, item 10): every run ends with at most one signed digest, deduplicated per
``(target, check, state)`` against alert state in the state bucket, with reminders on a ladder and a "resolved"
line when a problem is gone; a failed delivery is reported, never blocks a remediation, and waits in the outbox
(at least once, at most 20 entries per flush, dropped with a notice and re-alerted after ``alerts.outbox_hours``).

First through real runs against localcloud (the CLI, or :func:`sweep_once`, which composes a run exactly as
``tlsguard apply`` does but on localcloud's clock so time can move), then :class:`AlertPath` itself with
hand-made results, still against the real state bucket on localcloud and a real signed webhook.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest
from tlsguard.alerts.outbox import MAX_ENTRIES_PER_FLUSH, Outbox
from tlsguard.alerts.path import MAX_ITEMS_PER_SECTION, TARGET_CHECK, AlertPath, Delivery
from tlsguard.model import (
    Action,
    Finding,
    LiveVerification,
    Mode,
    Outcome,
    Severity,
    TargetKind,
    TargetRef,
    TargetResult,
    Trigger,
)
from tlsguard.notify.webhook import WebhookNotifier
from tlsguard.policy.model import AlertSettings, RawHttpsConfig
from tlsguard.ports import BucketRef
from tlsguard.retry import RetryPolicy
from tlsguard.state import StateBucket
from tlsguard.verify_live import Verification

from tests.support import ACCOUNT, outsider, wiring_for, write_policy
from tests.tlsguard.lifecycle._fixtures import (
    ALERT_SECRET,
    LEGACY_HTTPS,
    STATE_BUCKET,
    AlertSink,
    bucket_snapshot,
    cli,
    compliant_bucket,
    drifted_bucket,
    json_out,
    sweep_once,
    webhook_yaml,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tlsguard.state import State

HOUR = 3600.0
REMINDER_HOURS = (0.1, 0.2)  # 6 and 12 minutes: localcloud's clock moves less than the 15-minute signing skew

POLICY = f"""
version: 1
mode: alert
defaults:
  tls_versions: [TLSv1.2, TLSv1.3]
state: {{bucket: {STATE_BUCKET}}}
"""



def _policy(tmp_path: Path, sink: AlertSink, *, mode: str = "alert", attempts: int = 1) -> Path:
    text = POLICY.replace("mode: alert", f"mode: {mode}")
    text += f"alerts:\n  reminder_hours: [{', '.join(str(h) for h in REMINDER_HOURS)}]\n"
    text += webhook_yaml(sink.url, attempts).replace("alerts:\n", "")
    return write_policy(tmp_path, text)


def _bucket(name: str) -> TargetRef:
    return TargetRef.bucket_target(name, "cn-hangzhou", ACCOUNT)


def _open_alerts(cloud: Any, policy: Path) -> dict[tuple[str, str], list[Any]]:
    state = wiring_for(cloud, policy).state
    assert state is not None
    return state.alerts.open_alerts()


# -- through real runs -------------------------------------------------------------------------------------------
def test_first_occurrence_then_silence_then_reminders_then_resolved(cloud: Any, tmp_path: Path,
                                                                    sink: AlertSink) -> None:
    cloud.seed({"buckets": [{"name": STATE_BUCKET}, drifted_bucket("alert-me"), compliant_bucket("quiet-one")]})
    policy = _policy(tmp_path, sink)

    first = sweep_once(cloud, policy)
    assert first.by_name("alert-me").outcome is Outcome.DRIFTED
    assert first.delivery.sent and len(sink.alerts) == 1
    digest = sink.alerts[0]
    assert digest["kind"] == "digest" and digest["counts"] == {"compliant": 1, "drifted": 1, "targets": 2}
    (item,) = digest["needs_attention"]
    assert (item["id"], item["check"], item["state"], item["reminder"]) == (
        str(_bucket("alert-me")), "oss.tls_versions", "drifted", False)
    assert item["severity"] == "HIGH" and "TLSv1.0" in item["message"]
    assert "alert mode, nothing written" in item["reason"]

    second = sweep_once(cloud, policy)  # nothing changed: nothing is sent
    assert not second.delivery.sent and second.delivery.message is None
    assert len(sink.alerts) == 1

    cloud.clock.advance(REMINDER_HOURS[0] * HOUR + 5)
    third = sweep_once(cloud, policy)
    assert third.delivery.sent and len(sink.alerts) == 2
    (reminder,) = sink.alerts[1]["needs_attention"]
    assert reminder["reminder"] is True and reminder["check"] == "oss.tls_versions"
    ((_, alerts),) = _open_alerts(cloud, policy).items()
    assert alerts[0].reminders == {"0.1h"}

    assert not sweep_once(cloud, policy).delivery.sent  # the step was sent once
    cloud.clock.advance((REMINDER_HOURS[1] - REMINDER_HOURS[0]) * HOUR + 5)
    assert sweep_once(cloud, policy).delivery.sent  # the next step of the ladder
    assert [i["reminder"] for i in sink.alerts[2]["needs_attention"]] == [True]
    assert not sweep_once(cloud, policy).delivery.sent
    assert len(sink.alerts) == 3

    outsider(cloud).put_https_config(BucketRef("alert-me", "cn-hangzhou"),
                                     RawHttpsConfig(True, ("TLSv1.2", "TLSv1.3")))  # a person fixes it
    fixed = sweep_once(cloud, policy)
    assert fixed.by_name("alert-me").outcome is Outcome.COMPLIANT
    assert fixed.delivery.sent and len(sink.alerts) == 4
    resolved = sink.alerts[3]
    assert resolved["needs_attention"] == []
    assert [(r["id"], r["check"], r["state"]) for r in resolved["resolved"]] == [
        (str(_bucket("alert-me")), "oss.tls_versions", "drifted")]
    assert _open_alerts(cloud, policy) == {}
    assert not sweep_once(cloud, policy).delivery.sent and len(sink.alerts) == 4
    assert sink.bad_signatures == 0


def test_a_sweep_of_thirty_drifted_targets_sends_exactly_one_message(cloud: Any, tmp_path: Path,
                                                                     endpoints_file: Path, sink: AlertSink) -> None:
    names = [f"fleet-{index:02d}" for index in range(30)]
    cloud.seed({"buckets": [{"name": STATE_BUCKET}, *(drifted_bucket(name) for name in names)]})
    policy = _policy(tmp_path, sink, mode="enforce")
    common = ["--policy", str(policy), "--localcloud", str(endpoints_file), "--json"]

    result = cli("apply", "--mode", "alert", "--concurrency", "8", *common)
    assert result.exit_code == 2, result.output  # drift left (alert mode)
    report = json_out(result)
    assert report["summary"]["drifted"] == 30
    assert report["alerts"] == {"sent": True, "error": None, "new": 30, "resolved": 0, "remediated": 0, "channels": [
        {"name": "webhook", "type": "webhook", "sent": True, "messages": 1, "items": 30, "error": None, "retries": 0}]}
    assert sink.posts == 1 and len(sink.alerts) == 1
    (digest,) = sink.alerts
    assert digest["run"]["command"] == "apply" and digest["run"]["mode"] == "alert"
    assert digest["counts"] == {"drifted": 30, "targets": 30}
    assert sorted(i["target"]["name"] for i in digest["needs_attention"]) == names
    assert len(_open_alerts(cloud, policy)) == 30
    assert all(bucket_snapshot(cloud, n)["https_config"]["TLS"]["TLSVersion"] == LEGACY_HTTPS["tls"]["versions"]
               for n in names)  # alert mode writes nothing

    again = cli("apply", "--mode", "alert", *common)  # more than a handful of targets: one listing of alert state
    assert json_out(again)["alerts"]["sent"] is False
    assert sink.posts == 1


def test_a_failed_delivery_is_reported_never_blocks_a_remediation_and_waits_in_the_outbox(
        cloud: Any, tmp_path: Path, endpoints_file: Path, sink: AlertSink) -> None:
    cloud.seed({"buckets": [{"name": STATE_BUCKET}, drifted_bucket("fix-me")]})
    policy = _policy(tmp_path, sink, mode="enforce", attempts=2)
    common = ["--policy", str(policy), "--localcloud", str(endpoints_file)]
    state = wiring_for(cloud, policy).state
    assert state is not None
    outbox_keys = state.bucket.key("alerts", "outbox") + "/"

    sink.status = 500
    answered_500 = cli("apply", *common, "--json")
    report = json_out(answered_500)
    (target,) = report["targets"]
    assert target["outcome"] == "remediated"  # the alert's fate is not the target's
    assert bucket_snapshot(cloud, "fix-me")["https_config"]["TLS"]["TLSVersion"] == ["TLSv1.2", "TLSv1.3"]
    # ...but nobody heard of this run: exit 2, the channel named, the digest kept in the outbox.
    assert answered_500.exit_code == 2, answered_500.output
    assert report["alerts"]["sent"] is False and "webhook answered 500" in report["alerts"]["error"]
    assert report["alerts"]["outbox"] == {"saved": ["webhook"], "redelivered": [], "dropped": 0}
    assert report["summary"]["alert_errors"] == 1
    assert sink.posts == 2 and sink.bad_signatures == 0  # retried once, signed both times
    [waiting] = list(state.bucket.keys(outbox_keys))
    assert "/webhook/" in waiting
    assert _open_alerts(cloud, policy) == {}  # nothing to re-alert (remediated): the outbox carries the news

    # The receiver answers again: the next run delivers the delayed digest first (once), then its own.
    sink.status = 200
    outsider(cloud).put_https_config(BucketRef("fix-me", "cn-hangzhou"), RawHttpsConfig(True, ("TLSv1.0", "TLSv1.2")))
    back = cli("apply", *common, "--json")
    assert back.exit_code == 0, back.output
    again = json_out(back)
    assert again["alerts"]["outbox"] == {"saved": [], "dropped": 0, "redelivered": [
        {"name": "webhook", "entries": 1, "sent": True, "error": None}]}
    delayed, current = sink.alerts
    assert delayed["notices"][0]["kind"] == "delayed" and "webhook answered 500" in delayed["notices"][0]["message"]
    assert [r["journal_id"] for r in delayed["remediated"]] == [target["journal_id"]]
    assert [r["journal_id"] for r in current["remediated"]] == [again["targets"][0]["journal_id"]]
    assert list(state.bucket.keys(outbox_keys)) == []
    assert json_out(cli("apply", *common, "--json"))["alerts"]["sent"] is False  # nothing new, nothing delayed
    assert len(sink.alerts) == 2

    outsider(cloud).put_https_config(BucketRef("fix-me", "cn-hangzhou"), RawHttpsConfig(True, ("TLSv1.0", "TLSv1.2")))
    sink.close()  # the receiver is gone
    unreachable = cli("apply", *common)
    assert unreachable.exit_code == 2, unreachable.output
    assert "fix-me (cn-hangzhou): REMEDIATED" in unreachable.stdout
    assert "! alert digest not delivered: webhook: Transient: webhook unreachable" in unreachable.stdout
    assert "! saved in the alert outbox for webhook: the next run delivers it" in unreachable.stdout
    assert "Traceback" not in unreachable.output
    assert bucket_snapshot(cloud, "fix-me")["https_config"]["TLS"]["TLSVersion"] == ["TLSv1.2", "TLSv1.3"]
    assert len(list(state.bucket.keys(outbox_keys))) == 1


def test_concurrent_runs_open_each_alert_once(cloud: Any, tmp_path: Path, sink: AlertSink) -> None:
    names = ["race-a", "race-b", "race-c"]
    cloud.seed({"buckets": [{"name": STATE_BUCKET}, *(drifted_bucket(n) for n in names)]})
    policy = _policy(tmp_path, sink)
    outcomes: list[Any] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            outcomes.append(sweep_once(cloud, policy))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert len(outcomes) == 3
    alerted = sorted(i["target"]["name"] for digest in sink.alerts for i in digest["needs_attention"])
    assert alerted == names  # each problem alerted exactly once, whichever run opened it
    open_alerts = _open_alerts(cloud, policy)
    assert len(open_alerts) == 3
    state = wiring_for(cloud, policy).state
    assert state is not None
    for name in names:
        opened = [k for k in state.bucket.keys(state.bucket.key("alerts", "open", "oss-bucket", name) + "/")
                  if "/opened." in k]
        assert len(opened) == 1, opened


# -- AlertPath itself, on the real state bucket ----------------------------------------------------------------------
class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def state(cloud: Any, tmp_path: Path) -> State:
    cloud.seed({"buckets": [{"name": STATE_BUCKET}]})
    wired = wiring_for(cloud, write_policy(tmp_path, POLICY, "state-only.yaml")).state
    assert wired is not None
    return wired


def _notifier(sink: AlertSink) -> WebhookNotifier:
    return WebhookNotifier(sink.url, ALERT_SECRET, timeout_seconds=2, retry=RetryPolicy(attempts=1))


def _path(state: State, sink: AlertSink, clock: Clock, hours: tuple[float, ...] = (1.0, 24.0)) -> AlertPath:
    return AlertPath(state.alerts, _notifier(sink), AlertSettings(hours), clock, attempts_before_alert=2)


def _drifted(name: str, check: str = "oss.tls_versions", *, state: str = "", outcome: Outcome = Outcome.DRIFTED,
             severity: Severity = Severity.HIGH, details: dict[str, str] | None = None,
             kind: TargetKind = TargetKind.OSS_BUCKET) -> TargetResult:
    target = TargetRef(kind, name, "cn-hangzhou", ACCOUNT)
    extra = dict(details or {})
    if state:
        extra["alert_state"] = state
    finding = Finding(target, check, severity, "TLSv1.2,TLSv1.3", "TLSv1.0,TLSv1.2", details=extra)
    return TargetResult(target, outcome, "drift (alert mode, nothing written)", Mode.ALERT, (finding,),
                        checks=(check,))


def _compliant(name: str, checks: tuple[str, ...] = ("oss.tls_versions",),
               kind: TargetKind = TargetKind.OSS_BUCKET) -> TargetResult:
    return TargetResult(TargetRef(kind, name, "cn-hangzhou", ACCOUNT), Outcome.COMPLIANT, "matches the policy",
                        Mode.ALERT, checks=checks)


def _flush(path: AlertPath, *results: TargetResult, verifications: tuple[Verification, ...] = ()) -> dict[str, Any]:
    for result in results:
        path.observe(result)
    for verification in verifications:
        path.observe_verification(verification)
    delivery = path.flush(command="sweep", mode="alert")
    assert not delivery.error, delivery.error
    return delivery.message if delivery.sent and delivery.message is not None else {}


def _states(message: dict[str, Any], section: str = "needs_attention") -> list[tuple[str, str, str]]:
    return [(item["target"]["name"], item["check"], item["state"]) for item in message.get(section) or []]


def test_dedup_per_target_check_and_state_and_resolution_only_when_judged(state: State, sink: AlertSink) -> None:
    clock = Clock(1_900_000_000.0)
    assert _states(_flush(_path(state, sink, clock), _drifted("unit-a"))) == [
        ("unit-a", "oss.tls_versions", "drifted")]
    assert _flush(_path(state, sink, clock), _drifted("unit-a")) == {}  # same problem: deduplicated

    failed = TargetResult(_bucket("unit-a"), Outcome.FAILED, "oss GetBucketHttpsConfig AccessDenied", Mode.ALERT,
                          error_code="AccessDenied")
    message = _flush(_path(state, sink, clock), failed)
    assert _states(message) == [("unit-a", TARGET_CHECK, "failed")]
    assert message["resolved"] == []  # an unreadable target judged nothing: its drift stays open

    drift_to_failed = _drifted("unit-a", outcome=Outcome.FAILED)  # a write that failed: a new state of the check
    message = _flush(_path(state, sink, clock), drift_to_failed)
    assert _states(message) == [("unit-a", "oss.tls_versions", "failed")]
    assert _states(message, "resolved") == [("unit-a", TARGET_CHECK, "failed")]  # judged this time, gone
    assert {a.state for alerts in state.alerts.open_alerts().values() for a in alerts} == {"failed"}

    message = _flush(_path(state, sink, clock), _compliant("unit-a"))
    assert message["needs_attention"] == []
    assert _states(message, "resolved") == [("unit-a", "oss.tls_versions", "failed")]
    assert state.alerts.open_alerts() == {}
    assert _flush(_path(state, sink, clock), _compliant("unit-a")) == {}
    closed = list(state.bucket.keys(state.bucket.key("alerts", "closed") + "/"))
    assert len(closed) == 3  # drifted, target/failed, failed: each closed with a record
    assert len(sink.alerts) == 4


def test_reminders_follow_the_hour_ladder_once_per_step(state: State, sink: AlertSink) -> None:
    clock = Clock(1_900_000_000.0)
    opened = clock.now
    assert _flush(_path(state, sink, clock), _drifted("unit-hours"))
    clock.now = opened + 0.5 * HOUR
    assert _flush(_path(state, sink, clock), _drifted("unit-hours")) == {}
    clock.now = opened + 1.0 * HOUR
    message = _flush(_path(state, sink, clock), _drifted("unit-hours"))
    assert [i["reminder"] for i in message["needs_attention"]] == [True]
    assert _flush(_path(state, sink, clock), _drifted("unit-hours")) == {}
    clock.now = opened + 30 * HOUR
    message = _flush(_path(state, sink, clock), _drifted("unit-hours"))
    assert [i["reminder"] for i in message["needs_attention"]] == [True]  # one reminder, not one per step
    ((_, (alert,)),) = state.alerts.open_alerts().items()
    assert alert.reminders == {"1h", "24h"} and alert.opened_at == int(opened)

    late = Clock(opened + 100 * HOUR)  # a problem first seen long after: both steps fall due at once
    assert _flush(_path(state, sink, late), _drifted("unit-late"))
    late.now += 30 * HOUR
    message = _flush(_path(state, sink, late), _drifted("unit-late"))
    assert [(i["target"]["name"], i["reminder"]) for i in message["needs_attention"]] == [("unit-late", True)]
    assert _flush(_path(state, sink, late), _drifted("unit-late")) == {}


def test_certificate_expiry_reminds_on_the_policys_day_steps(state: State, sink: AlertSink) -> None:
    clock = Clock(1_900_000_000.0)
    domain = TargetKind.OSS_CNAME

    def expiring(ladder: str, severity: Severity = Severity.HIGH, alert_state: str = "renewal_due:AB:CD:EF:01",
                 outcome: Outcome = Outcome.DRIFTED) -> TargetResult:
        return _drifted("img.example.test", "cert.expiry", state=alert_state, severity=severity, outcome=outcome,
                        details={"ladder": ladder, "days_left": "6.5"}, kind=domain)

    heads_up = expiring("30d", Severity.INFO, "expiring:AB:CD:EF:01", Outcome.COMPLIANT)
    message = _flush(_path(state, sink, clock), heads_up)  # a notice on the ladder, even while compliant
    assert _states(message) == [("img.example.test", "cert.expiry", "expiring:AB:CD:EF:01")]
    assert message["needs_attention"][0]["severity"] == "LOW"
    clock.now += 48 * HOUR  # no hour-based reminders on the certificate ladder
    assert _flush(_path(state, sink, clock), heads_up) == {}
    message = _flush(_path(state, sink, clock), expiring("14d", Severity.INFO, "expiring:AB:CD:EF:01",
                                                         Outcome.COMPLIANT))
    assert [i["reminder"] for i in message["needs_attention"]] == [True]

    message = _flush(_path(state, sink, clock), expiring("7d"))  # renewal due now (alert mode): a new state
    assert _states(message) == [("img.example.test", "cert.expiry", "renewal_due:AB:CD:EF:01")]
    assert message["needs_attention"][0]["reminder"] is False
    assert _states(message, "resolved") == []  # the heads-up is superseded by the open renewal problem
    assert _flush(_path(state, sink, clock), expiring("7d")) == {}
    clock.now += 200 * HOUR
    assert _flush(_path(state, sink, clock), expiring("7d")) == {}
    message = _flush(_path(state, sink, clock), expiring("1d", Severity.CRITICAL))
    assert [(i["state"], i["reminder"], i["severity"]) for i in message["needs_attention"]] == [
        ("renewal_due:AB:CD:EF:01", True, "CRITICAL")]
    assert _flush(_path(state, sink, clock), expiring("1d", Severity.CRITICAL)) == {}
    ((_, (alert,)),) = state.alerts.open_alerts().items()
    assert alert.reminders == {"7d", "1d"}


def test_verifications_alert_not_effective_and_cannot_verify_then_resolve(state: State, sink: AlertSink) -> None:
    clock = Clock(1_900_000_000.0)
    target = _bucket("unit-live")
    checks = ("oss.cipher_suites", "oss.tls_versions")
    journal_id = "oss-bucket/unit-live/20300328T000000000000Z-0123abcd"

    def verification(verdict: LiveVerification, attempts: int = 0, detail: str = "stalled") -> Verification:
        return Verification(target, journal_id, checks, verdict, detail, 4, attempts)

    assert _flush(_path(state, sink, clock), verifications=(verification(LiveVerification.PENDING, 1),)) == {}
    message = _flush(_path(state, sink, clock), verifications=(verification(LiveVerification.PENDING, 2),))
    (problem,) = message["needs_attention"]
    assert (problem["check"], problem["state"], problem["journal_id"]) == ("live", "cannot_verify", journal_id)
    assert _flush(_path(state, sink, clock), verifications=(verification(LiveVerification.PENDING, 3),)) == {}
    clock.now += 1.5 * HOUR  # open problems of a verification are reminded like any other
    message = _flush(_path(state, sink, clock), verifications=(verification(LiveVerification.PENDING, 4),))
    assert [i["reminder"] for i in message["needs_attention"]] == [True]

    message = _flush(_path(state, sink, clock), verifications=(
        verification(LiveVerification.NOT_EFFECTIVE, detail="TLSv1.0 is accepted but the policy excludes it"),))
    assert _states(message) == [("unit-live", "live", "not_effective")]
    assert message["verifications"][0]["live_verification"] == "not_effective"
    assert [r["state"] for r in message["resolved"]] == []  # cannot_verify closed silently: the check is still bad

    message = _flush(_path(state, sink, clock), verifications=(
        verification(LiveVerification.EFFECTIVE, detail="accepts exactly TLSv1.2, TLSv1.3"),))
    assert message["needs_attention"] == []
    assert [(r["id"], r["state"]) for r in message["resolved"]] == [(str(target), "not_effective")]
    assert state.alerts.open_alerts() == {}


def test_the_digest_lists_remediations_notices_and_counts_and_skips_what_is_not_news(state: State,
                                                                                    sink: AlertSink) -> None:
    clock = Clock(1_900_000_000.0)
    target = _bucket("unit-fixed")
    action = Action(target, "https_config", "PutBucketHttpsConfig", {}, {}, {}, ("oss.tls_versions",),
                    "PutBucketHttpsConfig: TLS TLSv1.2,TLSv1.3")
    journal_id = "oss-bucket/unit-fixed/20300328T000000000000Z-89abcdef"
    remediated = TargetResult(target, Outcome.REMEDIATED, "drift in oss.tls_versions rolled back", Mode.ENFORCE,
                              actions=(action,), applied=True, journal_id=journal_id,
                              live_verification=LiveVerification.PENDING,
                              trigger=Trigger("event", "evt-1", "ram-user:ops-alice"), checks=("oss.tls_versions",))
    own = TargetResult(_bucket("unit-own"), Outcome.REFUSED, "after tlsguard's own change", Mode.ENFORCE,
                       (_drifted("unit-own").findings[0],), trigger=Trigger("event", own=True))
    duplicate = TargetResult(_bucket("unit-dup"), Outcome.COMPLIANT, "duplicate event", Mode.ENFORCE,
                             error_code="DuplicateEvent")
    path = _path(state, sink, clock)
    path.notice("listing_failed", "ListBuckets failed: throttled", region="cn-hangzhou")
    message = _flush(path, remediated, own, duplicate, _compliant("unit-quiet"))
    assert message["counts"] == {"compliant": 2, "refused": 1, "remediated": 1, "targets": 4}
    assert message["needs_attention"] == [] and message["resolved"] == []
    (fixed,) = message["remediated"]
    assert fixed["journal_id"] == journal_id and fixed["undo"] == f"tlsguard undo {journal_id}"
    assert fixed["actor"] == "ram-user:ops-alice" and fixed["event_id"] == "evt-1"
    assert fixed["live_verification"] == "pending" and fixed["checks"] == ["oss.tls_versions"]
    assert message["notices"] == [{"kind": "listing_failed", "message": "ListBuckets failed: throttled",
                                   "region": "cn-hangzhou"}]
    assert state.alerts.open_alerts() == {}  # neither tlsguard's own change nor a duplicate is a problem

    assert _flush(_path(state, sink, clock), _compliant("unit-quiet")) == {}  # nothing to say: nothing sent
    assert len(sink.alerts) == 1


def test_a_large_run_lists_fifty_items_per_section_and_counts_the_rest(state: State, sink: AlertSink) -> None:
    clock = Clock(1_900_000_000.0)
    results = [_drifted(f"unit-many-{index:03d}") for index in range(MAX_ITEMS_PER_SECTION + 12)]
    message = _flush(_path(state, sink, clock), *results)
    assert len(message["needs_attention"]) == MAX_ITEMS_PER_SECTION + 12  # the run's digest holds them all...
    [received] = sink.alerts  # ...and each channel lists fifty, counting the rest for the run's report
    assert len(received["needs_attention"]) == MAX_ITEMS_PER_SECTION and received["omitted"] == 12
    assert message["counts"]["drifted"] == received["counts"]["drifted"] == MAX_ITEMS_PER_SECTION + 12
    assert len(state.alerts.open_alerts()) == MAX_ITEMS_PER_SECTION + 12  # every one is recorded, and deduplicated
    assert _flush(_path(state, sink, clock), *results) == {}
    assert len(sink.alerts) == 1


def _flush_together(path: AlertPath, barrier: threading.Barrier, deliveries: list[Any]) -> None:
    barrier.wait(10)
    deliveries.append(path.flush(command="sweep"))


def test_concurrent_flushes_open_an_alert_once(state: State, sink: AlertSink) -> None:
    """Several runs decide at the same moment: the alert state lock (a create-if-absent object) lets one alert."""
    clock = Clock(1_900_000_000.0)
    for round_number in range(3):
        paths = [_path(state, sink, clock) for _ in range(4)]
        result = _drifted(f"unit-race-{round_number}")
        for path in paths:
            path.observe(result)
        barrier = threading.Barrier(len(paths))
        deliveries: list[Any] = []
        threads = [threading.Thread(target=_flush_together, args=(path, barrier, deliveries)) for path in paths]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(deliveries) == len(paths)
        assert sum(1 for d in deliveries if d.sent) == 1, [d.to_dict() for d in deliveries]
    assert [i["target"]["name"] for a in sink.alerts for i in a["needs_attention"]] == [
        f"unit-race-{n}" for n in range(3)]


def test_an_alert_whose_opener_has_not_recorded_when_is_not_reminded_at_once(state: State, sink: AlertSink) -> None:
    """Only the lock of an alert is there (a concurrent run holds it and is still writing, or died between the two
    objects): another run neither alerts it again nor takes "opened at epoch 0" as every reminder step being due."""
    clock = Clock(1_900_000_000.0)
    result = _drifted("unit-lock-only")
    lock = state.bucket.key("alerts", "open", "oss-bucket/unit-lock-only", "oss.tls_versions", "drifted", "lock.json")
    assert state.bucket.create_json(lock, {"check": "oss.tls_versions", "state": "drifted"})
    assert _flush(_path(state, sink, clock), result) == {}
    ((_, (alert,)),) = state.alerts.open_alerts().items()
    assert alert.reminders == set() and alert.opened_at == 0.0
    assert sink.alerts == []


def test_without_a_state_bucket_or_a_notifier(state: State, sink: AlertSink) -> None:
    clock = Clock(1_900_000_000.0)
    stateless = AlertPath(None, _notifier(sink), AlertSettings(), clock)
    assert _states(_flush(stateless, _drifted("unit-nostate")))  # nothing to deduplicate against: news
    again = AlertPath(None, _notifier(sink), AlertSettings(), clock)
    assert _states(_flush(again, _drifted("unit-nostate")))  # ...every time
    silent = AlertPath(state.alerts, None, AlertSettings(), clock)
    silent.observe(_drifted("unit-silent"))
    delivery = silent.flush(command="plan")
    assert not delivery.sent and delivery.message is not None  # composed (for the report), never sent
    assert _states(delivery.message) == [("unit-silent", "oss.tls_versions", "drifted")]
    assert len(sink.alerts) == 2


# -- the outbox: what a channel did not take waits in the state bucket, at least once, bounded ---------------------
def _with_outbox(state: State, sink: AlertSink, clock: Clock, *, hours: float = 24.0,
                 bucket: StateBucket | None = None) -> AlertPath:
    outbox = Outbox(bucket or state.bucket, max_age_seconds=hours * 3600)
    return AlertPath(state.alerts, _notifier(sink), AlertSettings((1.0, 24.0), outbox_hours=hours), clock,
                     attempts_before_alert=2, outbox=outbox)


def _outbox(state: State) -> list[str]:
    return list(state.bucket.keys(state.bucket.key("alerts", "outbox") + "/"))


def _failing_flush(path: AlertPath, *results: TargetResult, command: str = "sweep") -> Delivery:
    for result in results:
        path.observe(result)
    return path.flush(command=command, correlation_id=f"{command}:unit", mode="alert")


def test_an_undelivered_digest_waits_in_the_outbox_and_the_next_flush_delivers_it_once(state: State,
                                                                                       sink: AlertSink) -> None:
    clock = Clock(1_900_000_000.0)
    sink.status = 500
    delivery = _failing_flush(_with_outbox(state, sink, clock), _drifted("unit-wait"))
    assert delivery.unheard and delivery.saved == ["webhook"] and "webhook answered 500" in delivery.error
    [key] = _outbox(state)
    assert key.startswith(state.bucket.key("alerts", "outbox", "webhook") + "/01900000000-")
    assert len(state.alerts.open_alerts()) == 1  # still open: the outbox carries the news, no re-alert needed

    # Still down: the next run's re-delivery fails, so its own digest goes straight to the outbox, unattempted.
    clock.now += 300
    posts = sink.posts
    delivery = _failing_flush(_with_outbox(state, sink, clock), _drifted("unit-wait-too"), command="on_change")
    assert sink.posts == posts + 1 and delivery.saved == ["webhook"]
    assert delivery.channels[0].error.startswith("not attempted: its outbox could not be delivered either")
    assert delivery.outbox is not None and delivery.outbox["redelivered"] == [
        {"name": "webhook", "entries": 1, "sent": False, "error": "Transient: webhook answered 500"}]
    assert len(_outbox(state)) == 2

    sink.status = 200
    clock.now += 600
    again = _with_outbox(state, sink, clock)
    again.observe(_drifted("unit-wait"))  # judged again: open, not new, nothing due
    delivery = again.flush(command="sweep", mode="alert")
    assert delivery.outbox == {"saved": [], "dropped": 0, "redelivered": [
        {"name": "webhook", "entries": 2, "sent": True, "error": None}]}
    [delayed] = sink.alerts
    assert _states(delayed) == [("unit-wait", "oss.tls_versions", "drifted"),
                                ("unit-wait-too", "oss.tls_versions", "drifted")]
    assert delayed["notices"][0]["kind"] == "delayed" and "webhook answered 500" in delayed["notices"][0]["message"]
    assert [d["run"] for d in delayed["delayed"]] == ["sweep:unit", "on_change:unit"]
    assert _outbox(state) == []
    assert not _with_outbox(state, sink, clock).flush(command="sweep").sent  # delivered once, then gone
    assert len(sink.alerts) == 1


def test_a_flush_delivers_at_most_twenty_entries_merged_into_one_delayed_digest(state: State,
                                                                                sink: AlertSink) -> None:
    clock = Clock(1_900_000_000.0)
    outbox = Outbox(state.bucket)
    names = [f"unit-burst-{index:02d}" for index in range(MAX_ENTRIES_PER_FLUSH + 5)]
    for name in names:  # what 25 runs' digests left for the channel, as the alert path files them
        clock.now += 1
        composer = _with_outbox(state, sink, clock)
        composer.observe(_drifted(name))
        part = composer.flush(command="sweep", correlation_id=f"sweep:{name}", hold=True).message
        assert part is not None
        assert outbox.save("webhook", "webhook", part, error="webhook answered 500", origin=f"sweep:{name}",
                           now=clock.now, withdraw=[])
    assert len(_outbox(state)) == len(names)

    first = _with_outbox(state, sink, clock).flush(command="sweep")
    assert first.outbox is not None and first.outbox["redelivered"][0]["entries"] == MAX_ENTRIES_PER_FLUSH
    second = _with_outbox(state, sink, clock).flush(command="sweep")
    assert second.outbox is not None and second.outbox["redelivered"][0]["entries"] == 5
    assert sink.posts == 2  # two messages, the oldest entries first
    delivered = [name for digest in sink.alerts for name, _, _ in _states(digest)]
    assert delivered == names
    assert sink.alerts[0]["notices"][0]["message"].startswith("Delayed: 20 digests for webhook")
    assert sink.alerts[0]["run"]["command"] == "delayed" and len(sink.alerts[0]["delayed"]) == 20
    assert _outbox(state) == []
    assert list(state.bucket.keys(state.bucket.key("alerts", "outbox-claims") + "/")) == []  # nothing left behind


def test_entries_older_than_the_bound_are_dropped_with_a_notice_and_then_alerted_again(state: State,
                                                                                      sink: AlertSink) -> None:
    clock = Clock(1_900_000_000.0)
    sink.status = 500
    _failing_flush(_with_outbox(state, sink, clock, hours=1.0), _drifted("unit-old"), _drifted("unit-gone"))
    assert len(_outbox(state)) == 1 and len(state.alerts.open_alerts()) == 2

    sink.status = 200
    clock.now += 3600 + 1  # past alerts.outbox_hours: dropped, not delivered late
    path = _with_outbox(state, sink, clock, hours=1.0)
    path.observe(_drifted("unit-old"))  # still drifted: its withdrawn alert is news again in this very run
    delivery = path.flush(command="sweep", mode="alert")
    assert delivery.outbox == {"saved": [], "redelivered": [], "dropped": 1}
    [digest] = sink.alerts
    [notice] = digest["notices"]
    assert notice["kind"] == "outbox_dropped" and notice["channel"] == "webhook" and notice["runs"] == ["sweep:unit"]
    assert notice["message"].startswith("1 undelivered alert digest for webhook dropped after 1 h (2 problems")
    assert _states(digest) == [("unit-old", "oss.tls_versions", "drifted")]  # re-alerted, as new
    assert [i["reminder"] for i in digest["needs_attention"]] == [False]
    assert _outbox(state) == []
    # unit-gone was not judged in this run: its alert state was withdrawn, so the next judgment alerts it again.
    assert {key for key, _ in state.alerts.open_alerts()} == {"oss-bucket/unit-old"}
    assert _states(_flush(_with_outbox(state, sink, clock, hours=1.0), _drifted("unit-gone"))) == [
        ("unit-gone", "oss.tls_versions", "drifted")]


def test_concurrent_drains_deliver_each_entry_once(state: State, sink: AlertSink) -> None:
    clock = Clock(1_900_000_000.0)
    sink.status = 500
    for name in ("unit-twice-a", "unit-twice-b"):
        _failing_flush(_with_outbox(state, sink, clock), _drifted(name))
    assert len(_outbox(state)) == 2
    sink.status = 200
    paths = [_with_outbox(state, sink, clock) for _ in range(4)]
    barrier = threading.Barrier(len(paths))
    deliveries: list[Any] = []
    threads = [threading.Thread(target=_flush_together, args=(path, barrier, deliveries)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(deliveries) == len(paths)
    delivered = sorted(name for digest in sink.alerts for name, _, _ in _states(digest))
    assert delivered == ["unit-twice-a", "unit-twice-b"]  # each once, whichever run took it
    assert _outbox(state) == []


def test_without_an_outbox_a_failed_delivery_is_withdrawn_as_before(cloud: Any, state: State,
                                                                    sink: AlertSink) -> None:
    clock = Clock(1_900_000_000.0)
    sink.status = 500
    # A state bucket but no outbox: the problems the channel should have carried are withdrawn at once...
    legacy = AlertPath(state.alerts, _notifier(sink), AlertSettings((1.0, 24.0)), clock)
    delivery = _failing_flush(legacy, _drifted("unit-legacy"))
    assert delivery.unheard and delivery.outbox is None and delivery.saved == []
    assert state.alerts.open_alerts() == {} and _outbox(state) == []
    # ...and when the outbox cannot be written (here: a bucket that does not exist), the same.
    missing = StateBucket(state.bucket.oss, "unit-no-such-bucket")
    delivery = _failing_flush(_with_outbox(state, sink, clock, bucket=missing), _drifted("unit-unsaved"))
    assert delivery.unheard and delivery.saved == [] and state.alerts.open_alerts() == {}
    # Without a state bucket there is nothing to withdraw from: every run alerts it again.
    sink.status = 200
    stateless = AlertPath(None, _notifier(sink), AlertSettings(), clock)
    assert _states(_flush(stateless, _drifted("unit-legacy"))) == [("unit-legacy", "oss.tls_versions", "drifted")]
    assert _states(_flush(_path(state, sink, clock), _drifted("unit-legacy"))) == [
        ("unit-legacy", "oss.tls_versions", "drifted")]  # withdrawn above: news again


def test_a_channel_down_for_many_runs_still_gets_its_outbox_when_it_is_back(state: State, sink: AlertSink) -> None:
    """Taking an entry costs the same few requests however often its channel stayed down (claims are per time
    window, never a growing chain), and the entry is delivered as soon as the channel answers."""
    clock = Clock(1_900_000_000.0)
    sink.status = 500
    _failing_flush(_with_outbox(state, sink, clock), _drifted("unit-patient"))
    for _ in range(60):  # an hour of runs every minute, each one trying the outbox first
        clock.now += 60
        assert _with_outbox(state, sink, clock).drain(command="sweep").outbox is not None
    assert len(_outbox(state)) == 1
    sink.status = 200
    clock.now += 60
    drained = _with_outbox(state, sink, clock).drain(command="sweep")
    assert drained.outbox is not None and drained.outbox["redelivered"][0]["sent"] is True
    assert [_states(digest) for digest in sink.alerts] == [[("unit-patient", "oss.tls_versions", "drifted")]]
    assert _outbox(state) == [] and list(state.bucket.keys(state.bucket.key("alerts", "outbox-claims") + "/")) == []


@pytest.mark.unit
def test_outbox_hours_is_a_bounded_policy_setting() -> None:
    from tlsguard.errors import ConfigError
    from tlsguard.policy.loader import parse_policy

    assert parse_policy(POLICY).alerts.outbox_hours == 24.0
    assert parse_policy(POLICY + "alerts:\n  outbox_hours: 2.5\n").alerts.outbox_hours == 2.5
    for hostile in ("0", "0.05", "169", "-1", "'24'", ".inf"):
        with pytest.raises(ConfigError, match="outbox_hours"):
            parse_policy(POLICY + f"alerts:\n  outbox_hours: {hostile}\n")
