"""The run report, the same for every command and every kind of target: versioned JSON (schema:
``schemas/report.schema.json``, version 2) and one human summary; exit codes.

Exit codes: 0 every target compliant, pending or remediated; 2 drift left (plan, dry-run, alert mode, refused,
contested, a write not effective on the endpoint, an undo that could restore only part), or the run's digest
reached no channel (it waits in the outbox: a person has not heard of this run); 1 an error (a target failed, or
the run itself could not complete).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import tlsguard
from tlsguard.log import mask_secrets, scrub
from tlsguard.model import LiveVerification, Outcome, Severity, TargetKind

if TYPE_CHECKING:
    from tlsguard.model import TargetResult
    from tlsguard.verify_live import Verification

REPORT_VERSION = "2.0"
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_DRIFT = 2
_DRIFT = (Outcome.DRIFTED, Outcome.REFUSED, Outcome.CONTESTED)


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class RunReport:
    """Accumulates results as they stream in. ``keep_compliant=False`` keeps only counts for compliant targets."""

    command: str
    mode: str
    policy: str
    keep_compliant: bool = True
    started: float = field(default_factory=time.time)
    finished: float | None = None
    counts: dict[str, int] = field(default_factory=lambda: {o.value: 0 for o in Outcome})
    by_kind: dict[str, int] = field(default_factory=lambda: {k.value: 0 for k in TargetKind})
    live: dict[str, int] = field(default_factory=lambda: {v.value: 0 for v in LiveVerification
                                                          if v is not LiveVerification.NOT_APPLICABLE})
    findings: int = 0
    partial: int = 0
    targets: list[dict[str, Any]] = field(default_factory=list)
    verifications: list[dict[str, Any]] = field(default_factory=list)
    alerts: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    #: The event-path heartbeat as the sweep judged it (:meth:`tlsguard.heartbeat.EventPath.to_dict`); sweeps only.
    event_path: dict[str, Any] | None = None

    def add(self, result: TargetResult) -> None:
        self.counts[result.outcome.value] += 1
        self.by_kind[result.target.kind.value] += 1
        if result.live_verification is not LiveVerification.NOT_APPLICABLE:
            self.live[result.live_verification.value] += 1
        if result.outcome not in (Outcome.COMPLIANT, Outcome.REMEDIATED, Outcome.PENDING):
            self.findings += sum(1 for f in result.active_findings if f.severity is not Severity.INFO)
        self.partial += result.error_code == "PartialUndo"
        if self.keep_compliant or result.outcome is not Outcome.COMPLIANT or result.expired_waivers:
            self.targets.append(result.to_dict())

    def add_verification(self, verification: Verification) -> None:
        self.verifications.append(verification.to_dict())
        if verification.verdict is not LiveVerification.PENDING:
            self.live[verification.verdict.value] += 1

    def finish(self) -> RunReport:
        self.finished = time.time()
        return self

    @property
    def duration_seconds(self) -> float:
        return (self.finished if self.finished is not None else time.time()) - self.started

    @property
    def exit_code(self) -> int:
        if self.errors or self.counts[Outcome.FAILED.value]:
            return EXIT_ERROR
        if any(self.counts[o.value] for o in _DRIFT) or self.live[LiveVerification.NOT_EFFECTIVE.value] or \
                self.partial:
            return EXIT_DRIFT
        if self.alerts and self.alerts.get("error") and not self.alerts.get("sent"):
            return EXIT_DRIFT  # the digest reached no channel: nobody heard of this run
        return EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        """The versioned report, redacted (:func:`tlsguard.log.scrub`): a reason can quote a cloud error."""
        finished = self.finished if self.finished is not None else time.time()
        document: dict[str, Any] = scrub({
            "report_version": REPORT_VERSION,
            "tool": {"name": "tlsguard", "version": tlsguard.__version__},
            "command": self.command,
            "mode": self.mode,
            "policy": self.policy,
            "started_at": _iso(self.started),
            "finished_at": _iso(finished),
            "duration_seconds": round(finished - self.started, 3),
            "summary": {"targets": sum(self.counts.values()), **self.counts, "by_kind": dict(self.by_kind),
                        "live": dict(self.live), "findings": self.findings,
                        "alert_errors": int(bool(self.alerts and self.alerts.get("error")))},
            "exit_code": self.exit_code,
            "targets": self.targets,
            "verifications": self.verifications,
            "alerts": self.alerts,
            "errors": self.errors,
            **({"event_path": self.event_path} if self.event_path is not None else {}),
        })
        return document

    def human(self) -> str:
        """A readable summary: one block per target that is not simply compliant, then the totals."""
        lines: list[str] = []
        for target in sorted(self.targets, key=lambda t: (t["outcome"] == "compliant", t["target"]["kind"],
                                                          t["target"]["name"])):
            if target["outcome"] == "compliant" and not target["expired_waivers"] and not any(
                    f["waived"] for f in target["findings"]) and not target["findings"]:
                continue
            ident = target["target"]
            where = ident.get("region") or "global"
            lines.append(f"{ident['kind']} {ident['name']} ({where}): {target['outcome'].upper()}: {target['reason']}")
            for finding in target["findings"]:
                waived = f"  [waived: {finding['waived']}]" if finding["waived"] else ""
                lines.append(f"  - {finding['check']} [{finding['severity']}] {finding['message']}{waived}")
                lines.append(f"      actual:  {finding['actual']}")
                lines.append(f"      desired: {finding['desired']}")
            for action in target["actions"]:
                verb = "wrote" if action["status"] == "written" else "would write"
                lines.append(f"  * {verb} {action['summary'] or action['call']}")
                params = json.dumps(action["params"], sort_keys=True, ensure_ascii=False)
                lines.append(f"      {action['call']} {params}")
            if target["journal_id"]:
                lines.append(f"  journal: {target['journal_id']}  (tlsguard undo {target['journal_id']})")
            if target["live_verification"] != "not_applicable":
                detail = f": {target['live_detail']}" if target.get("live_detail") else ""
                lines.append(f"  live verification: {target['live_verification']}{detail}")
            for expired in target["expired_waivers"]:
                lines.append(f"  ! waiver no longer applies: {expired}")
        for verification in self.verifications:
            lines.append(f"live {verification['id']}: {verification['live_verification']}: {verification['detail']}")
        if self.alerts and self.alerts.get("error"):
            lines.append(f"! alert digest not delivered: {self.alerts['error']}")
        outbox = (self.alerts or {}).get("outbox") or {}
        if outbox.get("saved"):
            lines.append(f"! saved in the alert outbox for {', '.join(outbox['saved'])}: the next run delivers it")
        for redelivered in outbox.get("redelivered") or []:
            fate = "delivered" if redelivered["sent"] else f"still not delivered ({redelivered['error']})"
            lines.append(f"alert outbox: {redelivered['entries']} delayed digests for {redelivered['name']}: {fate}")
        if outbox.get("dropped"):
            lines.append(f"! alert outbox: {outbox['dropped']} undelivered digests dropped as too old")
        for error in self.errors:
            lines.append(f"ERROR: {error}")
        if self.event_path is not None:
            lines.append(f"event path: {self.event_path['message']}")
        totals = ", ".join(f"{count} {name}" for name, count in self.counts.items() if count)
        kinds = ", ".join(f"{count} {name}" for name, count in self.by_kind.items() if count)
        live = ", ".join(f"{count} {name}" for name, count in self.live.items() if count)
        lines.append(f"{self.command} ({self.mode}): {sum(self.counts.values())} targets"
                     + (f" ({kinds})" if kinds else "") + f": {totals or 'nothing checked'}; "
                     f"{self.findings} open findings" + (f"; live verification: {live}" if live else "")
                     + f"; exit {self.exit_code}")
        return mask_secrets("\n".join(lines))
