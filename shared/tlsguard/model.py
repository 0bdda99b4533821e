"""The one model every kind of target shares: what is checked, what was found, what was done, how it ended.

A **target** is an OSS bucket, an OSS custom domain (CNAME) or a CDN domain: ``(kind, account, region, name)``;
its identity is ``(kind, name)`` (bucket names and domain names are unique within a kind), the rest is where to
reach it. Every check, finding, action, journal entry, alert and pending verification is keyed by it.

Frozen dataclasses and ``str`` Enums only; nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class TargetKind(str, Enum):
    """The three kinds of target tlsguard keeps on their declared posture."""

    OSS_BUCKET = "oss-bucket"
    OSS_CNAME = "oss-cname"  # a custom domain bound to a bucket
    CDN_DOMAIN = "cdn-domain"


@dataclass(frozen=True)
class TargetRef:
    """One target. Equality and hashing use ``(kind, name)`` only; region, account and bucket say where it is."""

    kind: TargetKind
    name: str
    region: str = field(default="", compare=False)
    account: str = field(default="", compare=False)
    bucket: str = field(default="", compare=False)  # oss-cname: the bucket the domain is bound to

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.account or '-'}/{self.region or '-'}/{self.name}"

    @property
    def key(self) -> str:
        """The target's path in the state bucket (``oss-bucket/acme-prod-assets``)."""
        return f"{self.kind.value}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value, "account": self.account or None,
                                "region": self.region or None, "name": self.name}
        if self.kind is TargetKind.OSS_CNAME:
            data["bucket"] = self.bucket or None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetRef:
        return cls(TargetKind(str(data["kind"])), str(data["name"]), str(data.get("region") or ""),
                   str(data.get("account") or ""), str(data.get("bucket") or ""))

    @classmethod
    def bucket_target(cls, name: str, region: str = "", account: str = "") -> TargetRef:
        return cls(TargetKind.OSS_BUCKET, name, region, account)


class Severity(str, Enum):
    """How urgent a finding is; :attr:`rank` orders them from worst (0) to mildest."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    INFO = "INFO"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class Mode(str, Enum):
    """What tlsguard may do about drift: write it back, only alert, or only report."""

    ENFORCE = "enforce"
    ALERT = "alert"
    DRY_RUN = "dry-run"


@dataclass(frozen=True)
class Finding:
    """One difference between the declared posture and what a target has, found by one check.

    ``desired`` and ``actual`` are short human descriptions; ``details`` carries machine-readable context (for
    example the certificate fingerprint, or ``alert_state`` naming the problem for alert deduplication).
    """

    target: TargetRef
    check: str
    severity: Severity
    desired: str
    actual: str
    message: str = ""
    waived: str = ""  # the waiver's reason when an active waiver covers this finding
    details: dict[str, str] = field(default_factory=dict, hash=False, compare=True)

    @property
    def alert_state(self) -> str:
        """The problem's name for alert deduplication (a new state is a new alert)."""
        return self.details.get("alert_state", "drifted")

    def describe(self) -> str:
        return self.message or f"{self.check}: {self.actual} (policy: {self.desired})"

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "severity": self.severity.value, "desired": self.desired,
                "actual": self.actual, "message": self.describe(), "waived": self.waived or None,
                "details": dict(self.details)}


class Outcome(str, Enum):
    """How each target ends a run; exactly one per target.

    ``pending``: nothing to write, but a change is still reaching the endpoint (a binding inside its
    propagation window). ``contested``: tlsguard stopped writing a target others keep changing back.
    """

    COMPLIANT = "compliant"
    DRIFTED = "drifted"
    PENDING = "pending"
    REMEDIATED = "remediated"
    REFUSED = "refused"
    CONTESTED = "contested"
    FAILED = "failed"


class LiveVerification(str, Enum):
    """Whether the endpoint itself proves a write: probed after the propagation window."""

    PENDING = "pending"
    EFFECTIVE = "effective"
    NOT_EFFECTIVE = "not_effective"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class Action:
    """One write, fully described: the API call, its exact parameters, and the facet before and after.

    ``before`` and ``after`` are the JSON forms of the facet the action writes (the re-read must equal
    ``after``); ``params`` is what the call sends (the whole https document, the merged policy text, the
    certificate to bind, the CDN function arguments). Undo is the same facet written back to ``before``.
    """

    target: TargetRef
    facet: str
    call: str
    params: dict[str, Any]
    before: Any
    after: Any
    checks: tuple[str, ...]
    summary: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"facet": self.facet, "call": self.call, "params": self.params, "before": self.before,
                "after": self.after, "checks": list(self.checks), "summary": self.summary}

    @classmethod
    def from_dict(cls, target: TargetRef, data: dict[str, Any]) -> Action:
        return cls(target, str(data["facet"]), str(data["call"]), dict(data.get("params") or {}),
                   data.get("before"), data.get("after"), tuple(str(c) for c in data.get("checks") or ()),
                   str(data.get("summary") or ""))


@dataclass(frozen=True)
class Trigger:
    """Why a target is being checked: a sweep, a change event (and who made it), a webhook, an undo."""

    kind: str = "sweep"  # sweep | event | webhook | undo | cli
    event_id: str = ""
    actor: str = ""  # e.g. "ram-user:ops-alice" or "assumed-role:tlsguard-fc-role:session"
    own: bool = False  # the change was made by tlsguard's own role
    event_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "event_id": self.event_id or None, "actor": self.actor or None,
                "own": self.own, "event_name": self.event_name or None}


@dataclass(frozen=True)
class TargetResult:
    """Everything one run learned and did about one target."""

    target: TargetRef
    outcome: Outcome
    reason: str
    mode: Mode
    findings: tuple[Finding, ...] = ()
    actions: tuple[Action, ...] = ()  # planned (plan, dry-run) or written (apply)
    applied: bool = False  # whether ``actions`` were written
    journal_id: str = ""
    live_verification: LiveVerification = LiveVerification.NOT_APPLICABLE
    live_detail: str = ""
    rules: tuple[str, ...] = ()
    expired_waivers: tuple[str, ...] = ()
    trigger: Trigger = field(default_factory=Trigger)
    error_code: str = ""
    checks: tuple[str, ...] = ()  # the checks that judged this target (alert resolution needs them)
    retryable: bool = False  # failed on a transient error: retrying the run (FC's async retry) may succeed
    observed: dict[str, Any] = field(default_factory=dict, compare=False)  # what a person wants to see (expiry...)
    verified_at: float = field(default=0.0, compare=False)  # epoch when the re-read confirmed the writes (benchmarks)

    @property
    def active_findings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.waived)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.to_dict(), "id": str(self.target), "outcome": self.outcome.value,
            "reason": self.reason, "mode": self.mode.value,
            "findings": [f.to_dict() for f in self.findings],
            "actions": [{**a.to_dict(), "status": "written" if self.applied else "planned"} for a in self.actions],
            "journal_id": self.journal_id or None, "live_verification": self.live_verification.value,
            "live_detail": self.live_detail or None, "rules": list(self.rules),
            "expired_waivers": list(self.expired_waivers), "trigger": self.trigger.to_dict(),
            "error_code": self.error_code or None,
            "checks": list(self.checks), "retryable": self.retryable, "observed": self.observed,
        }


def utc_now_iso(now: float) -> str:
    """``now`` (epoch seconds) as an ISO-8601 UTC timestamp ending in Z."""
    return dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat().replace("+00:00", "Z")
