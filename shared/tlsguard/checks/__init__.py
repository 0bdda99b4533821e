"""Every check tlsguard runs, in one registry (see :mod:`tlsguard.checks.registry`).

Adding a check touches one module (its ``CHECKS`` and, if it fixes a new facet, its ``PLANNERS``) and its tests;
the RAM policy, s.yaml's event patterns and ``docs/checks.md`` are regenerated from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tlsguard.checks import cdn, cert, oss
from tlsguard.checks.registry import BOUND_CERTIFICATE, PLAN_NEEDS, Check, Registry, Unfixable, resolve_facet
from tlsguard.model import TargetKind

if TYPE_CHECKING:
    import datetime as dt

    from tlsguard.facets import Actual
    from tlsguard.model import Action, Finding
    from tlsguard.policy.model import Desired

REGISTRY = Registry()
for _module in (oss, cert, cdn):
    REGISTRY.add(*_module.CHECKS)
    for _facet, _planner in _module.PLANNERS.items():
        REGISTRY.plan_with(_facet, _planner)

__all__ = ["BOUND_CERTIFICATE", "PLAN_NEEDS", "REGISTRY", "Check", "Registry", "Unfixable", "evaluate",
           "live_expectation", "observe", "resolve_facet"]


def evaluate(desired: Desired, actual: Actual, now: dt.datetime) -> list[Finding]:
    """Every applicable check of the target's kind on ``actual`` (pure); waived findings are marked."""
    from dataclasses import replace

    findings: list[Finding] = []
    for check in REGISTRY.for_kind(desired.target.kind):
        if not check.applies(desired):
            continue
        for finding in check.evaluate(desired, actual, now):
            waiver = desired.waiver_for(check.id)
            findings.append(replace(finding, waived=waiver) if waiver else finding)
    return findings


def live_expectation(desired: Desired, action: Action) -> dict[str, object] | None:
    """What the endpoint must show once ``action`` has propagated; None when none of its checks has a live proof."""
    live_checks = frozenset(c for c in action.checks if REGISTRY.get(c).live)
    if not live_checks:
        return None
    if action.facet == "https_config":
        expect = oss.live_expectation(desired, live_checks)
    elif action.facet == "cdn_configs":
        expect = cdn.live_expectation(desired, live_checks)
    else:
        expect = cert.live_expectation(action)
    return expect if len(expect) > 1 else None  # only a host: nothing to prove


def observe(desired: Desired, actual: Actual, now: dt.datetime) -> dict[str, Any]:
    """A summary of what the target has, for people (expiry of a domain's certificate); {} for buckets."""
    if desired.target.kind is TargetKind.OSS_BUCKET:
        return {}
    try:
        return cert.observe(desired, actual, now)
    except (KeyError, ValueError):
        return {}
