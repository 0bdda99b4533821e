"""Pure parts of the heartbeat and the doctor: judging the event path, recognising heartbeat events, the policy
setting, and the doctor's verdicts on what its ports answer (cases localcloud cannot produce, such as ActionTrail
recording the heartbeat's write under another name)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tlsguard import doctor, heartbeat
from tlsguard.errors import ConfigError
from tlsguard.functions.events import Change
from tlsguard.model import TargetKind, TargetRef
from tlsguard.policy.loader import parse_policy

pytestmark = pytest.mark.unit

MINUTE = 60.0
T0 = 1_900_000_000.0
DEFAULT = 15 * MINUTE
POLICY = "version: 1\nmode: enforce\ndefaults: {tls_versions: [TLSv1.2]}\nstate: {bucket: tlsguard-state}\n"


def test_a_write_unanswered_for_longer_than_the_limit_breaks_the_path() -> None:
    arrived = heartbeat.Arrival(T0 + 0.4, T0)
    sent = [T0, T0 + 5 * MINUTE]  # the second write's event never came
    assert heartbeat.assess(sent, [arrived], T0 + 5 * MINUTE + DEFAULT - 1, DEFAULT).status == heartbeat.OK
    path = heartbeat.assess(sent, [arrived], T0 + 5 * MINUTE + DEFAULT + 1, DEFAULT)
    assert path.status == heartbeat.BROKEN
    assert path.oldest_unanswered_at == T0 + 5 * MINUTE and path.lag_seconds == pytest.approx(0.4)
    message = path.message()
    assert message.startswith("event path broken; only sweeps protect: no heartbeat event for 15 min")
    assert "last heartbeat seen 2030-03-17T17:46:40.400000Z, lag 0.4 s" in message


def test_an_arrival_answers_every_write_made_before_it() -> None:
    sent = [T0, T0 + 5 * MINUTE, T0 + 10 * MINUTE]
    late = heartbeat.Arrival(T0 + 10 * MINUTE + 1, T0 + 10 * MINUTE)
    path = heartbeat.assess(sent, [late], T0 + 60 * MINUTE, DEFAULT)
    assert path.status == heartbeat.OK and path.oldest_unanswered_at is None and path.lag_seconds == 1


def test_before_any_arrival_the_path_is_waiting_then_broken_and_without_records_unknown() -> None:
    assert heartbeat.assess([], [], T0, DEFAULT).status == heartbeat.UNKNOWN
    assert heartbeat.assess([T0], [], T0 + DEFAULT, DEFAULT).status == heartbeat.WAITING
    broken = heartbeat.assess([T0], [], T0 + DEFAULT + 1, DEFAULT)
    assert broken.status == heartbeat.BROKEN and "last heartbeat seen never" in broken.message()


def test_the_heartbeat_clock_never_runs_behind_the_cloud_s_timestamps() -> None:
    assert heartbeat.heartbeat_clock(T0, "2030-03-17T18:00:00Z") == heartbeat.cloud_time("2030-03-17T18:00:00Z")
    assert heartbeat.heartbeat_clock(T0, "2020-01-01T00:00:00Z", "", None, "garbage", 7) == T0
    assert heartbeat.cloud_time("2030-03-17T17:46:40.500Z") == T0 + 0.5
    assert heartbeat.cloud_time("2030-03-17T17:46:40") is None


def change(bucket: str = "tlsguard-state", event: str = "PutBucketHttpsConfig",
           user: str = "tlsguard-fc-role:fc-shared", kind: str = "assumed-role") -> Change:
    record = {"eventName": event, "userIdentity": {"type": kind, "userName": user}}
    return Change("E1", event, (TargetRef(TargetKind.OSS_BUCKET, bucket),), record)


def test_only_the_role_s_https_config_write_on_the_state_bucket_is_a_heartbeat() -> None:
    own = ("tlsguard-fc-role",)
    assert heartbeat.is_heartbeat(change(), "tlsguard-state", own)
    assert not heartbeat.is_heartbeat(change(user="ops-alice", kind="ram-user"), "tlsguard-state", own)
    assert not heartbeat.is_heartbeat(change(bucket="app-prod"), "tlsguard-state", own)
    assert not heartbeat.is_heartbeat(change(event="PutBucketPolicy"), "tlsguard-state", own)
    assert not heartbeat.is_heartbeat(change(), "", own)


def test_the_policy_sets_the_heartbeat_limit_within_bounds() -> None:
    assert parse_policy(POLICY, "tlsguard.yaml").heartbeat.max_lag_seconds == DEFAULT
    policy = parse_policy(POLICY + "heartbeat: {max_lag_minutes: 30, enabled: false}\n", "tlsguard.yaml")
    assert policy.heartbeat.max_lag_seconds == 30 * MINUTE and policy.heartbeat.enabled is False
    for bad in ("heartbeat: {max_lag_minutes: 0}\n", "heartbeat: {max_lag_minutes: 5000}\n",
                "heartbeat: {lag: 5}\n"):
        with pytest.raises(ConfigError, match="heartbeat"):
            parse_policy(POLICY + bad, "tlsguard.yaml")


class Trail:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.asked: list[tuple[str, str]] = []

    def lookup_events(self, key: str, value: str, start: float, end: float, max_pages: int = 20
                      ) -> list[dict[str, Any]]:
        self.asked.append((key, value))
        return [e for e in self.events if e.get("serviceName") == value]


def trail_lines(events: list[dict[str, Any]], heartbeats_written: bool) -> dict[str, doctor.CheckLine]:
    report = doctor.DoctorReport()
    ports = doctor.DoctorPorts(oss=None, trail=Trail(events))  # type: ignore[arg-type]
    doctor.check_actiontrail(report, ports, T0, 7, heartbeats_written)
    return {line.name: line for line in report.lines}


def test_heartbeats_without_their_actiontrail_event_fail_the_event_name() -> None:
    lines = trail_lines([{"serviceName": "Oss", "eventName": "PutBucketHttpsConfiguration",
                          "eventTime": "2030-03-17T17:40:00Z"}], heartbeats_written=True)
    assert lines["PutBucketHttpsConfig"].status == doctor.FAIL
    assert "not the one ActionTrail records" in lines["PutBucketHttpsConfig"].detail
    assert lines["PutBucketPolicy"].status == doctor.UNKNOWN
    lines = trail_lines([{"serviceName": "Oss", "eventName": "PutBucketHttpsConfig",
                          "eventTime": "2030-03-17T17:40:00Z"}], heartbeats_written=True)
    assert lines["PutBucketHttpsConfig"].status == doctor.PASS
    assert "latest 2030-03-17T17:40:00Z" in lines["PutBucketHttpsConfig"].detail
    assert trail_lines([], heartbeats_written=False)["PutBucketHttpsConfig"].status == doctor.UNKNOWN


def test_public_statements_are_unconditional_allows_to_everyone() -> None:
    allow_all = {"Effect": "Allow", "Principal": ["*"], "Action": ["oss:GetObject"], "Resource": ["acs:oss:*:*:b/*"]}
    conditional = {**allow_all, "Condition": {"IpAddress": {"acs:SourceIp": ["10.0.0.0/8"]}}}
    named = {**allow_all, "Principal": ["20000000000000"]}
    text = '{"Version": "1", "Statement": %s}'
    assert doctor._public_statements(text % json.dumps([allow_all, conditional, named])) == [allow_all]
    assert doctor._public_statements(text % json.dumps([{**allow_all, "Principal": []}]))
    assert doctor._public_statements(None) == []


def test_the_report_fails_when_one_line_fails() -> None:
    report = doctor.DoctorReport(identity={"Arn": "acs:ram::1:user/a"})
    report.add("ram", "oss:GetBucketPolicy", doctor.PASS, "allowed")
    report.add("ram", "oss:PutBucketPolicy", doctor.UNKNOWN, "no harmless call", "make sure it is granted")
    assert report.exit_code == 0
    report.add("eventbridge", "oss rule", doctor.FAIL, "no rule", "deploy s.yaml again")
    assert report.exit_code == 1 and report.to_dict()["summary"] == {"pass": 1, "fail": 1, "unknown": 1}
    human = report.human()
    assert human.splitlines()[0] == "tlsguard doctor (as acs:ram::1:user/a)"
    assert "FAIL    eventbridge  oss rule: no rule\n                     fix: deploy s.yaml again" in human
    assert human.endswith("1 pass, 1 fail, 1 unknown; exit 1")


class MemoryStateBucket:
    """The part of :class:`tlsguard.state.store.StateBucket` the heartbeat store uses, in memory."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def key(self, *parts: str) -> str:
        return "tlsguard/" + "/".join(parts)

    def create_json(self, key: str, document: dict[str, Any]) -> bool:
        if key in self.objects:
            return False
        self.objects[key] = document
        return True

    def keys(self, prefix: str, start_after: str = "") -> Any:
        return iter(sorted(k for k in self.objects if k.startswith(prefix) and k > start_after))

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)


def test_a_write_answered_and_pruned_still_holds_back_the_next_for_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    store = heartbeat.HeartbeatStore(MemoryStateBucket())  # type: ignore[arg-type]
    writes: list[float] = []
    monkeypatch.setattr(heartbeat, "write_heartbeat",
                        lambda oss, store_, name, now: (writes.append(now), store_.file_write(now, name)))
    assert heartbeat.beat(None, store, "tlsguard-state", T0) == (True, "")  # type: ignore[arg-type]
    store.record_arrival(T0 + 0.2, "evt-1", "")
    assert heartbeat.judge(store, T0 + 1, DEFAULT).status == heartbeat.OK  # prunes the answered write
    assert not store.sent()
    assert heartbeat.beat(None, store, "tlsguard-state", T0 + 30) == (False, "")  # type: ignore[arg-type]
    assert heartbeat.beat(None, store, "tlsguard-state", T0 + 61) == (True, "")  # type: ignore[arg-type]
    assert writes == [T0, T0 + 61]
