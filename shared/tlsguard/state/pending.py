"""Pending live verifications: a write that changes what an endpoint negotiates or serves waits here until
a probe, after the propagation window, proves it (``effective``) or disproves it (``not_effective``).

``verify/<kind>/<name>/<stamp>.json``            the expectation (what the endpoint must show) and ``due_at``;
``verify/<kind>/<name>/<stamp>.attempt-<n>``     one inconclusive probe (stall, reset, garbage) each;
``verify-results/<kind>/<name>/<stamp>.json``    the verdict; the pending record is deleted once it exists.
``<stamp>`` is the journal id's, so a verification is found from its journal entry and back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tlsguard.model import TargetRef, utc_now_iso

if TYPE_CHECKING:
    from tlsguard.state.store import StateBucket

_PENDING = re.compile(r"^(?P<target>[^/]+/[^/]+)/(?P<stamp>[0-9T]+Z-[0-9a-f]{8})(?P<rest>\.json|\.attempt-\d+)$")


@dataclass(frozen=True)
class PendingVerification:
    """What one endpoint must show once a write has propagated."""

    journal_id: str
    target: TargetRef
    checks: tuple[str, ...]
    expect: dict[str, Any]
    due_at: float
    created_at: float
    attempts: tuple[str, ...] = field(default=(), compare=False)  # reasons of inconclusive probes so far

    @property
    def stamp(self) -> str:
        return self.journal_id.rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, Any]:
        return {"journal_id": self.journal_id, "target": self.target.to_dict(), "checks": list(self.checks),
                "expect": self.expect, "due_at": self.due_at, "created_at": self.created_at}


class PendingVerifications:
    """The ``verify/`` records in the state bucket."""

    def __init__(self, bucket: StateBucket) -> None:
        self.bucket = bucket

    def _key(self, target: TargetRef, stamp: str, suffix: str = ".json") -> str:
        return self.bucket.key("verify", target.key, f"{stamp}{suffix}")

    def add(self, pending: PendingVerification) -> None:
        self.bucket.create_json(self._key(pending.target, pending.stamp), pending.to_dict())

    def exists(self, target: TargetRef) -> bool:
        """Whether ``target`` has a pending verification: one listing, the records are not read (a single-target
        run only needs to know, and reading them would cost a second round trip after the listing)."""
        base = self.bucket.key("verify/")
        for key in self.bucket.keys(base + target.key + "/"):
            match = _PENDING.match(key[len(base):])
            if match is not None and match["rest"] == ".json":
                return True
        return False

    def all(self, target: TargetRef | None = None) -> list[PendingVerification]:
        """Every pending verification (of one target, or all), with its inconclusive attempts."""
        base = self.bucket.key("verify/")
        prefix = base + (target.key + "/" if target is not None else "")
        records: dict[str, str] = {}
        attempts: dict[str, int] = {}
        for key in self.bucket.keys(prefix):
            match = _PENDING.match(key[len(base):])
            if match is None:
                continue
            ident = f"{match['target']}/{match['stamp']}"
            if match["rest"] == ".json":
                records[ident] = key
            else:
                attempts[ident] = attempts.get(ident, 0) + 1
        found = []
        for ident, key in sorted(records.items()):
            document = self.bucket.read_json(key)
            if not document or "damaged" in document:
                continue
            found.append(PendingVerification(
                str(document["journal_id"]), TargetRef.from_dict(document["target"]),
                tuple(document.get("checks") or ()), dict(document.get("expect") or {}),
                float(document.get("due_at") or 0.0), float(document.get("created_at") or 0.0),
                tuple("inconclusive" for _ in range(attempts.get(ident, 0)))))
        return found

    def record_attempt(self, pending: PendingVerification, reason: str, now: float) -> int:
        """Record one inconclusive probe; returns how many there have been."""
        number = len(pending.attempts) + 1
        self.bucket.create_json(self._key(pending.target, pending.stamp, f".attempt-{number}"),
                                {"reason": reason, "time": utc_now_iso(now)})
        return number

    def record_result(self, pending: PendingVerification, verdict: str, detail: str, now: float) -> None:
        """Store the verdict (effective / not_effective), then drop the pending record and its attempts."""
        self.bucket.create_json(self.bucket.key("verify-results", pending.target.key, f"{pending.stamp}.json"),
                                {**pending.to_dict(), "verdict": verdict, "detail": detail,
                                 "time": utc_now_iso(now)})
        self.bucket.delete(self._key(pending.target, pending.stamp))
        for number in range(1, len(pending.attempts) + 1):
            self.bucket.delete(self._key(pending.target, pending.stamp, f".attempt-{number}"))

    def result(self, target: TargetRef, stamp: str) -> dict[str, Any] | None:
        return self.bucket.read_json(self.bucket.key("verify-results", target.key, f"{stamp}.json"))
