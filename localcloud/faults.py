"""Fault injection per service, operation and resource: errors, throttling, latency, resets and broken bodies.

Latency injection is how benchmarks model real round trips; the other kinds are how tests prove that one
failing bucket never aborts a sweep.
"""

from __future__ import annotations

import fnmatch
import itertools
import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

#: The kinds a rule can inject.
#:  error      respond with ``status``/``code``/``message`` (5xx, AccessDenied, anything)
#:  throttle   respond with the service's own throttling error (OSS 503 SlowDown, RPC Throttling.User)
#:  latency    sleep ``latency_ms`` plus uniform jitter up to ``jitter_ms``, then serve normally
#:  reset      close the connection without a response (TCP RST)
#:  truncate   send the status line and headers, then only half of the body, then close
#:  malformed  serve the status and headers with a garbage body
#:  lost_response  carry the request out (a write lands), then close the connection without answering: the
#:             client sees a dropped connection or a read timeout, as when a response is lost on the way back
FAULT_KINDS = ("error", "throttle", "latency", "reset", "truncate", "malformed", "lost_response")


@dataclass
class FaultRule:
    """One injected fault. ``service``, ``operation`` and ``resource`` are fnmatch globs (``*`` matches all)."""

    kind: str
    service: str = "*"
    operation: str = "*"
    resource: str = "*"
    status: int = 500
    code: str = "InternalError"
    message: str = "Injected fault"
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    #: How many more matching requests this rule affects; ``None`` means every one.
    remaining: int | None = None
    #: Chance in [0, 1] that a matching request is affected.
    probability: float = 1.0
    id: int = 0
    hits: int = field(default=0)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")

    def matches(self, service: str, operation: str, resource: str | None) -> bool:
        return (
            fnmatch.fnmatchcase(service, self.service)
            and fnmatch.fnmatchcase(operation, self.operation)
            and fnmatch.fnmatchcase(resource or "", self.resource)
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultRegistry:
    """Thread-safe list of fault rules, consulted by the HTTP frame before each request is handled."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._random = random.Random()

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            rule.id = next(self._ids)
            self._rules.append(rule)
        return rule

    def add_dict(self, spec: dict[str, Any]) -> FaultRule:
        allowed = set(FaultRule.__dataclass_fields__) - {"id", "hits"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        return self.add(FaultRule(**spec))

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def match(self, service: str, operation: str, resource: str | None) -> list[FaultRule]:
        """Return the rules that fire for this request (consuming their ``remaining`` budget)."""
        fired: list[FaultRule] = []
        with self._lock:
            for rule in self._rules:
                if rule.remaining is not None and rule.remaining <= 0:
                    continue
                if not rule.matches(service, operation, resource):
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                rule.hits += 1
                fired.append(rule)
        return fired

    def latency_seconds(self, rule: FaultRule) -> float:
        jitter = self._random.uniform(0.0, rule.jitter_ms) if rule.jitter_ms > 0 else 0.0
        return (rule.latency_ms + jitter) / 1000.0
