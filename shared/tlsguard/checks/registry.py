"""The registry of checks: each check is one self-describing unit (as Cloud Custodian's actions and sslyze's scan
commands are): its id, the kinds of target it judges, its severity rule, the facets it reads and the facet its fix
writes (hence the RAM actions of both), the ActionTrail events that change what it judges, the live proof of its
fix, and a pure ``evaluate(desired, actual, now)``.

Fixes are planned per facet, not per check: OSS replaces a bucket's whole https document on PUT, so the TLS
version check and the cipher suite check, when both find drift, contribute to one write. A planner turns the
drifted checks of one facet into one :class:`~tlsguard.model.Action` (or says why nothing can fix them).

The RAM policy, s.yaml's EventBridge patterns and ``docs/checks.md`` are generated from this registry
(``python deploy/generate.py``; tests fail when any of them is stale).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tlsguard.facets import CERTIFICATE_FACET, FACETS

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable

    from tlsguard.facets import Actual
    from tlsguard.model import Finding, TargetKind
    from tlsguard.policy.model import Desired

#: A check's facets may name this placeholder: the bound-certificate facet of the target's kind.
BOUND_CERTIFICATE = "bound_certificate"


@dataclass(frozen=True)
class Unfixable:
    """Drift no write can fix now, and what a person has to do (e.g. upload a certificate to CAS)."""

    checks: tuple[str, ...]
    reason: str


def _always(desired: Desired) -> bool:
    return True


@dataclass(frozen=True)
class Check:
    """One check. ``facets`` / ``fixes`` may use :data:`BOUND_CERTIFICATE` (resolved per kind)."""

    id: str
    kinds: frozenset[TargetKind]
    title: str
    severity: str  # the severity rule, in words (docs/checks.md)
    facets: tuple[str, ...]
    evaluate: Callable[[Desired, Actual, dt.datetime], list[Finding]]
    fixes: str | None = None
    events: tuple[str, ...] = ()  # "<service>:<ActionTrail eventName>"
    live: str | None = None  # what a live probe proves: tls_versions | cipher_suites | certificate | hsts | redirect
    applies: Callable[[Desired], bool] = _always
    aliases: tuple[str, ...] = ()  # earlier ids still accepted in policy files
    doc: str = ""

    def facets_for(self, kind: TargetKind) -> tuple[str, ...]:
        return tuple(resolve_facet(name, kind) for name in self.facets)

    def fix_facet(self, kind: TargetKind) -> str | None:
        return resolve_facet(self.fixes, kind) if self.fixes else None

    def read_operations(self, kind: TargetKind) -> set[tuple[str, str]]:
        return {op for name in self.facets_for(kind) for op in FACETS[name].reads}

    def write_operations(self, kind: TargetKind) -> set[tuple[str, str]]:
        fix = self.fix_facet(kind)
        if fix is None:
            return set()
        needs = {op for name in PLAN_NEEDS.get(fix, ()) for op in FACETS[name].reads}
        return set(FACETS[fix].writes) | needs


def resolve_facet(name: str, kind: TargetKind) -> str:
    return CERTIFICATE_FACET[kind] if name == BOUND_CERTIFICATE else name


@dataclass
class Registry:
    """Every check, in a fixed order, with the planners of the facets they fix."""

    checks: dict[str, Check] = field(default_factory=dict)
    planners: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def add(self, *checks: Check) -> None:
        for check in checks:
            if check.id in self.checks:
                raise ValueError(f"duplicate check id {check.id}")
            self.checks[check.id] = check

    def plan_with(self, facet: str, planner: Callable[..., Any]) -> None:
        self.planners[facet] = planner

    def for_kind(self, kind: TargetKind) -> list[Check]:
        return [check for check in self.checks.values() if kind in check.kinds]

    def get(self, check_id: str) -> Check:
        return self.checks[self.canonical(check_id)]

    def canonical(self, check_id: str) -> str:
        """The registry id of ``check_id`` or of an alias of it; KeyError when unknown."""
        if check_id in self.checks:
            return check_id
        for check in self.checks.values():
            if check_id in check.aliases:
                return check.id
        raise KeyError(check_id)

    def known_ids(self) -> list[str]:
        return [*self.checks, *(alias for check in self.checks.values() for alias in check.aliases)]


#: Facets a planner reads only when a fix is needed (CAS is listed only for a domain that needs a certificate).
PLAN_NEEDS: dict[str, tuple[str, ...]] = {
    "cname_certificate": ("cas_candidates",),
    "cdn_certificate": ("cas_candidates",),
}
