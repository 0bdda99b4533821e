"""Shared by the chat channel tests: digests of any size, a fake clock, a scripted service answering POSTs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from tlsguard.alerts.channels import _http
from tlsguard.alerts.channels._http import Answer
from tlsguard.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Iterator

FAST = RetryPolicy(attempts=4, initial_seconds=0.01, max_seconds=0.05, jitter_seconds=0.0)


def person(i: int, severity: str = "HIGH", *, reminder: bool = False, message: str = "") -> dict[str, Any]:
    name = f"need-{i:04d}"
    return {"target": {"kind": "oss-bucket", "name": name, "region": "cn-hangzhou"}, "id": f"oss-bucket/{name}",
            "check": "oss.tls_versions", "state": "drifted", "severity": severity,
            "message": message or f"{name} accepts TLS 1.0 and TLS 1.1 (policy: TLSv1.2, TLSv1.3)",
            "actor": "ops-alice", "journal_id": f"j-{i:06d}", "reminder": reminder}


def remediated(i: int) -> dict[str, Any]:
    name = f"fixed-{i:04d}.example.com"
    return {"target": {"kind": "cdn-domain", "name": name}, "id": f"cdn-domain/{name}", "severity": "HIGH",
            "checks": ["cdn.https_force"], "actions": ["BatchSetCdnDomainConfig https_force on"],
            "journal_id": f"r-{i:06d}", "undo": f"tlsguard undo r-{i:06d}", "actor": "ops-bob"}


def resolved(i: int) -> dict[str, Any]:
    name = f"gone-{i:04d}.example.com"
    return {"target": {"kind": "oss-cname", "name": name, "bucket": "b", "region": "cn-hangzhou"},
            "check": "cert.expiry", "state": "renewal_due:ab12cd34ef5", "severity": "LOW"}


def digest(needs: int = 2, fixed: int = 1, gone: int = 1, *, critical: int = 1, reminders: int = 0,
           notices: int = 0, omitted: int = 0, message: str = "") -> dict[str, Any]:
    """A digest as the alert path composes it: ``critical`` of the ``needs`` items are CRITICAL."""
    items = [person(i, "CRITICAL" if i < critical else "HIGH", message=message) for i in range(needs)]
    items += [person(needs + i, "MEDIUM", reminder=True) for i in range(reminders)]
    return {
        "version": 2, "kind": "digest", "time": "2026-01-01T00:00:00Z",
        "run": {"command": "sweep", "correlation_id": "corr-1", "mode": "enforce"},
        "counts": {"targets": needs + fixed + gone + reminders, "drifted": needs + reminders, "remediated": fixed},
        "needs_attention": items, "remediated": [remediated(i) for i in range(fixed)],
        "resolved": [resolved(i) for i in range(gone)], "verifications": [],
        "notices": [{"kind": "listing_failed", "message": f"ListBuckets failed ({i})"} for i in range(notices)],
        "omitted": omitted,
    }


def person_names(d: dict[str, Any]) -> set[str]:
    return {str(item["target"]["name"]) for item in d["needs_attention"]}


@dataclass
class FakeClock:
    """Time that only moves when slept (or told): limiters and backoff without waiting."""

    now: float = 1_700_000_000.0
    slept: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)


@dataclass
class Scripted:
    """Stands in for :func:`tlsguard.alerts.channels._http.post_json`: records each POST, answers from a script
    (the last answer repeats); an exception in the script is raised instead of answering."""

    answers: list[Answer | Exception]
    calls: list[tuple[str, bytes]] = field(default_factory=list)

    def __call__(self, url: str, body: bytes, *, timeout: float) -> Answer:
        self.calls.append((url, body))
        answer = self.answers[min(len(self.calls), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body.decode("utf-8")) for _, body in self.calls]


def answer(body: dict[str, Any] | str, status: int = 200, **headers: str) -> Answer:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return Answer(status, dict(headers), raw)


OK = {"dingtalk": answer({"errcode": 0, "errmsg": "ok"}), "wecom": answer({"errcode": 0, "errmsg": "ok"}),
      "lark": answer({"code": 0, "msg": "success", "data": {}}), "slack": answer("ok")}


@pytest.fixture(autouse=True)
def fresh_limiters() -> Iterator[None]:
    """Every test starts with no robot's recent messages remembered (the limiters are per process)."""
    _http.reset_limiters()
    yield
    _http.reset_limiters()


def script(monkeypatch: pytest.MonkeyPatch, *answers: Answer | Exception) -> Scripted:
    scripted = Scripted(list(answers))
    monkeypatch.setattr(_http, "post_json", scripted)
    return scripted
