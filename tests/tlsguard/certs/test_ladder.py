"""The certificate alert ladder, through the one alert path (:class:`tlsguard.alerts.path.AlertPath`) and its
memory in the state bucket (:class:`tlsguard.state.AlertStateStore`, forbid-overwrite objects), on localcloud.

A problem is ``(target, check, state)``; a certificate's expiry state names the certificate (its fingerprint), so
each step of the ladder (30, 14, 7, 1 days) is alerted once per certificate, and a renewed certificate starts a
fresh ladder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tlsguard import runs, verify_live
from tlsguard.model import TargetKind
from tlsguard.wiring import alert_path

from tests.support import wiring_for
from tests.tlsguard.certs._support import cas_cert, cname, domain_policy, lifecycle_at, seed_domains

if TYPE_CHECKING:
    from pathlib import Path

    from tlsguard.state.alert_state import OpenAlert

    from localcloud.cloud import LocalCloud

DAY = 86400.0
SOON = cname("soon.example.com")


class DailyTimer:
    """The daily certificate run: due live verifications, every domain through the lifecycle (enforce: renew
    from CAS where possible), then one digest through the alert path."""

    def __init__(self, cloud: LocalCloud, policy: Path) -> None:
        self.cloud, self.policy = cloud, policy
        self.wiring = wiring_for(cloud, policy)
        assert self.wiring.state is not None
        self.store = self.wiring.state.alerts
        self.digest: dict[str, Any] = {}

    def run(self, *, later: float = 0.0) -> list[dict[str, Any]]:
        """One run ``later`` seconds from now; the certificate items of its digest that need a person."""
        lifecycle = lifecycle_at(self.cloud, self.policy, later=later, wiring=self.wiring)
        alerts = alert_path(self.wiring, lifecycle.ctx.clock)
        for verification in verify_live.run_due(lifecycle.ctx):
            alerts.observe_verification(verification)
        runs.start_run(lifecycle)
        kinds = frozenset({TargetKind.OSS_CNAME, TargetKind.CDN_DOMAIN})
        for result in runs.sweep(lifecycle, runs.discover(lifecycle.ctx, kinds=kinds)):
            alerts.observe(result)
        self.digest = alerts.flush(command="cert-renewal", mode="enforce").message or {}
        return [item for item in self.digest.get("needs_attention", []) if item["check"] == "cert.expiry"]

    def open_expiry(self) -> list[OpenAlert]:
        return self.store.open_alerts(SOON).get((SOON.key, "cert.expiry"), [])


def sent(items: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    return [(item["state"].split(":")[0], item["reminder"]) for item in items]


def test_each_step_is_alerted_once_per_certificate(cloud: LocalCloud, tmp_path: Path) -> None:
    seed_domains(cloud, [{"name": "soon", "kind": "expiring", "domains": ["soon.example.com"], "days": 12}],
                 cnames={"soon.example.com": "soon"})
    timer = DailyTimer(cloud, domain_policy(tmp_path))
    fingerprint = cas_cert(cloud, "soon").info.fingerprint_sha1
    # 12 days left: one alert, at the tightest step reached (14 days), keyed by the certificate
    first = timer.run()
    assert sent(first) == [("renewal_due", False)]
    assert first[0]["state"] == f"renewal_due:{fingerprint[:11]}"
    assert "12.0 days left" in first[0]["message"]
    (alert,) = timer.open_expiry()
    assert alert.reminders == {"14d"}
    # the same certificate is not alerted again for that step (nor the 30-day step it skipped)
    assert timer.run() == []
    assert timer.run(later=2 * DAY) == []
    # the 7-day step is reached: one reminder, once
    assert sent(timer.run(later=5.5 * DAY)) == [("renewal_due", True)]
    assert timer.run(later=5.6 * DAY) == []
    # the last day: one more reminder, now critical
    last = timer.run(later=11.5 * DAY)
    assert sent(last) == [("renewal_due", True)] and last[0]["severity"] == "CRITICAL"
    assert timer.open_expiry()[0].reminders == {"14d", "7d", "1d"}
    # a second claimant of a step loses (forbid-overwrite): only the first writer alerts
    (alert,) = timer.open_expiry()
    assert not timer.store.remind(alert, "7d", cloud.clock.time())
    assert not timer.store.open(SOON.key, "cert.expiry", alert.state, cloud.clock.time(), {})
    assert timer.store.open_alerts(cname("never-seen.example.com")) == {}


def test_a_renewed_certificate_starts_a_fresh_ladder(cloud: LocalCloud, tmp_path: Path) -> None:
    seed_domains(cloud, [{"name": "soon", "kind": "expiring", "domains": ["soon.example.com"], "days": 12}],
                 cnames={"soon.example.com": "soon"})
    timer = DailyTimer(cloud, domain_policy(tmp_path))
    old = cas_cert(cloud, "soon")
    # 12 days left and nothing in CAS renews it: alerted at the 14-day step, once
    assert sent(timer.run()) == [("renewal_due", False)]
    assert timer.open_expiry()[0].state == f"renewal_due:{old.info.fingerprint_sha1[:11]}"
    assert timer.run(later=DAY) == []
    # WHEN a renewed certificate (40 more days) is uploaded to CAS
    cloud.seed({"certificates": [{"name": "soon-2", "kind": "valid", "domains": ["soon.example.com"],
                                  "days": 40}]})
    renewed = cas_cert(cloud, "soon-2")
    # THEN the next run binds it, and the old certificate's problem is resolved
    assert timer.run(later=DAY) == []
    (remediated,) = timer.digest["remediated"]
    assert remediated["checks"] == ["cert.expiry"] and remediated["undo"].startswith("tlsguard undo oss-cname/")
    assert [(r["check"], r["state"].split(":")[0]) for r in timer.digest["resolved"]] == [
        ("cert.expiry", "renewal_due")]
    assert timer.open_expiry() == []
    # AND the renewed certificate climbs its own ladder from the top: the 30-day step that the old certificate had
    # long passed is a heads-up again (renewal of a 70-day certificate is due at 23.3 days), then renewal is due
    assert timer.run(later=2 * DAY) == []  # 39 days left; the live verification of the binding is made
    assert [v["live_verification"] for v in timer.digest["verifications"]] == ["effective"]
    heads_up = timer.run(later=12 * DAY)  # 29 days left
    assert sent(heads_up) == [("expiring", False)]
    assert heads_up[0]["state"] == f"expiring:{renewed.info.fingerprint_sha1[:11]}"
    assert sent(timer.run(later=18 * DAY)) == [("renewal_due", False)]  # 23 days left
    assert timer.run(later=19 * DAY) == []


def test_a_heads_up_before_renewal_is_due_then_the_renewal_ladder(cloud: LocalCloud, tmp_path: Path) -> None:
    # a certificate with 25 days of a 55-day life left: renewal is due at 18.3 days; the 30-day step is a heads-up
    seed_domains(cloud, [{"name": "soon", "kind": "valid", "domains": ["soon.example.com"], "days": 25}],
                 cnames={"soon.example.com": "soon"})
    timer = DailyTimer(cloud, domain_policy(tmp_path))
    heads_up = timer.run()
    assert sent(heads_up) == [("expiring", False)] and heads_up[0]["severity"] == "LOW"
    assert timer.run(later=3 * DAY) == []
    # renewal becomes due: a new problem (renewal_due) replaces the heads-up, alerted once
    due = timer.run(later=7.5 * DAY)
    assert sent(due) == [("renewal_due", False)]
    assert [a.state.split(":")[0] for a in timer.open_expiry()] == ["renewal_due"]
    assert timer.run(later=8 * DAY) == []
    assert sent(timer.run(later=11.5 * DAY)) == [("renewal_due", True)]  # the 14-day step
