"""The event-path heartbeat end to end, in localcloud: the sweep timer writes it, EventBridge delivers it, on_change
records it; with the rule disabled and localcloud's clock moved past the limit, "event path broken; only sweeps
protect" is alerted once, the sweep still runs, and the next sweep after heartbeats arrive again resolves it.

localcloud refuses requests signed more than 15 minutes away from its clock (as OSS, RPC and FC do), and the
functions sign with the wall clock, so these runs use ``heartbeat.max_lag_minutes: 5`` and move the clock 8.5
minutes in all; the default of 15 minutes is covered by the unit tests of :func:`tlsguard.heartbeat.assess`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest

from tests.functions.conftest import (
    ALERT_SECRET,
    POLICY,
    STATE_BUCKET,
    AlertSink,
    deploy_functions,
    invocations,
    result_of,
    settle,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from localcloud.cloud import LocalCloud
    from localcloud.sdeploy import Deployment

ROOT = Path(__file__).resolve().parents[2]
OSS_RULE = "tlsguard-on-change-oss-tls-drift"
REPORT_SCHEMA = json.loads((ROOT / "schemas" / "report.schema.json").read_text())


def sweep(cloud: LocalCloud, trigger: str = "pending-verifications") -> dict[str, Any]:
    """Fire one of the sweep's timers (at localcloud's time) and return that run's result, once all settled."""
    cloud.fc.fire_timer("tlsguard-sweep", trigger)
    settle(cloud)
    result: dict[str, Any] = result_of(invocations(cloud, "tlsguard-sweep")[-1])
    return result


def arrivals(cloud: LocalCloud) -> list[dict[str, Any]]:
    """The heartbeats on_change recorded, oldest first."""
    return [beat for record in invocations(cloud, "tlsguard-on-change")
            for beat in result_of(record).get("heartbeats", [])]


def event_path_items(sink: AlertSink, section: str) -> list[dict[str, Any]]:
    return [item for digest in sink.digests() for item in digest.get(section) or []
            if item.get("check") == "event-path"]


def test_a_heartbeat_travels_the_event_path(fleet: LocalCloud, deployed: Deployment) -> None:
    before = fleet.oss.get(STATE_BUCKET).https
    first = sweep(fleet)
    # judged at the sweep's end: its own heartbeat may already have arrived, or not
    assert first["event_path"]["status"] in ("waiting", "ok") and first["event_path"]["written"] is True
    (arrival,) = arrivals(fleet)
    assert arrival["event_name"] == "PutBucketHttpsConfig"
    assert 0 <= arrival["lag_seconds"] < 900
    on_change = [result_of(r) for r in invocations(fleet, "tlsguard-on-change")]
    assert [r["handled"] for r in on_change] == [[]]  # recorded, never treated as drift of the state bucket
    second = sweep(fleet)
    event_path = second["event_path"]
    assert event_path["status"] == "ok" and event_path["written"] is False  # at most one write a minute
    assert event_path["lag_seconds"] == pytest.approx(arrival["lag_seconds"], abs=0.002)
    jsonschema.validate(event_path, REPORT_SCHEMA["properties"]["event_path"])
    # the write changed nothing, and nothing was journaled for the state bucket
    assert fleet.oss.get(STATE_BUCKET).https == before
    assert not [k for k in fleet.oss.get(STATE_BUCKET).objects if "/journal/" in k or "/open/" in k]


@pytest.fixture
def short_limit(fleet: LocalCloud, tmp_path: Path, alert_sink: AlertSink, fast_async: None,
                no_timers: None) -> Iterator[Deployment]:
    policy_file = tmp_path / "tlsguard.yaml"
    policy_file.write_text(POLICY + "heartbeat: {max_lag_minutes: 5}\n")
    deployment = deploy_functions(fleet, tmp_path, policy_file, environment={
        "TLSGUARD_WEBHOOK_URL": alert_sink.url, "TLSGUARD_WEBHOOK_SECRET": ALERT_SECRET})
    yield deployment
    deployment.close()
    fleet.fc.wait_idle(10)


def test_a_broken_event_path_alerts_once_and_resolves(fleet: LocalCloud, short_limit: Deployment,
                                                       alert_sink: AlertSink) -> None:
    # GIVEN a heartbeat that arrived, then the rule that delivers OSS events disabled
    assert sweep(fleet)["event_path"]["written"] and len(arrivals(fleet)) == 1
    fleet.events.set_enabled(OSS_RULE, False)
    fleet.clock.advance(90)
    assert sweep(fleet)["event_path"]["status"] == "ok"  # a second heartbeat is written; it goes nowhere
    assert len(arrivals(fleet)) == 1
    # WHEN more than the limit passes THEN the next sweep alerts, and still checks every bucket
    fleet.clock.advance(330)
    broken = sweep(fleet, "hourly")
    assert broken["event_path"]["status"] == "broken"
    assert broken["summary"]["targets"] >= 3
    (alert,) = event_path_items(alert_sink, "needs_attention")
    assert alert["state"] == "broken" and alert["severity"] == "HIGH"
    assert alert["target"]["name"] == STATE_BUCKET
    assert alert["message"].startswith("event path broken; only sweeps protect")
    assert "last heartbeat seen 20" in alert["message"]
    # AND the following sweeps do not repeat it
    assert sweep(fleet)["event_path"]["status"] == "broken"
    assert len(event_path_items(alert_sink, "needs_attention")) == 1
    # WHEN heartbeats arrive again THEN the next sweep finds the path ok and resolves the alert, once
    fleet.events.set_enabled(OSS_RULE, True)
    fleet.clock.advance(90)
    sweep(fleet)  # writes a heartbeat that arrives
    assert len(arrivals(fleet)) == 2
    assert sweep(fleet)["event_path"]["status"] == "ok"
    (resolved,) = event_path_items(alert_sink, "resolved")
    assert resolved["state"] == "broken"
    assert sweep(fleet)["event_path"]["status"] == "ok"
    assert len(event_path_items(alert_sink, "needs_attention")) == 1
    assert len(event_path_items(alert_sink, "resolved")) == 1
    assert alert_sink.bad_signatures == 0
