"""Routing a digest to a channel: the routes select the items, then each channel lists at most fifty per section,
the worst first, and counts the rest, so a burst on one kind of target never crowds another channel's items out.
(The same through real runs and every sink: ``test_end_to_end.py``.)"""

from __future__ import annotations

from typing import Any

import pytest
from tlsguard.alerts.channels import routed
from tlsguard.alerts.path import MAX_ITEMS_PER_SECTION
from tlsguard.policy.model import Route, RouteMatch

unit = pytest.mark.unit


def item(name: str, kind: str = "oss-bucket", severity: str = "HIGH", check: str = "oss.tls_versions"
         ) -> dict[str, Any]:
    return {"target": {"kind": kind, "name": name}, "check": check, "state": "drifted", "severity": severity}


def digest(items: list[dict[str, Any]], omitted: int = 0) -> dict[str, Any]:
    return {"counts": {"targets": len(items)}, "needs_attention": items, "resolved": [], "remediated": [],
            "verifications": [], "notices": [{"kind": "listing_failed", "message": "ListBuckets failed"}],
            "omitted": omitted}


ROUTES = (Route(RouteMatch(kinds=frozenset({"oss-bucket"})), ("buckets",)),
          Route(RouteMatch(kinds=frozenset({"cdn-domain"})), ("cdn",)),
          Route(RouteMatch(severities=frozenset({"critical"}), targets=("edge-*",)), ("pager",)))
#: 80 HIGH buckets first (a burst), then 5 MEDIUM CDN domains and a CRITICAL one at the very end.
BURST = [item(f"bucket-{i:02d}") for i in range(80)] + [
    item(f"edge-{i}.example.com", "cdn-domain", "MEDIUM", "cdn.hsts") for i in range(5)] + [
    item("edge-9.example.com", "cdn-domain", "CRITICAL", "cert.expiry")]


def names(part: dict[str, Any]) -> list[str]:
    return [i["target"]["name"] for i in part["needs_attention"]]


@unit
def test_a_burst_on_one_kind_never_crowds_out_another_channel() -> None:
    cdn = routed(digest(BURST), ROUTES, "cdn")
    assert names(cdn) == [f"edge-{i}.example.com" for i in (9, 0, 1, 2, 3, 4)] and cdn["omitted"] == 0
    buckets = routed(digest(BURST), ROUTES, "buckets")
    assert len(names(buckets)) == MAX_ITEMS_PER_SECTION and buckets["omitted"] == 80 - MAX_ITEMS_PER_SECTION


@unit
def test_the_worst_items_are_listed_and_the_rest_counted_with_what_the_run_already_left_out() -> None:
    part = routed(digest(BURST, omitted=7), (), "everyone")  # no routes: every channel gets every item
    assert names(part)[0] == "edge-9.example.com"  # CRITICAL first, wherever it was
    assert len(names(part)) == MAX_ITEMS_PER_SECTION
    assert part["omitted"] == 7 + len(BURST) - MAX_ITEMS_PER_SECTION
    assert part["counts"] == {"targets": len(BURST)} and part["notices"]  # counts and notices reach everyone


@unit
def test_every_criterion_must_match_and_unmatched_items_go_nowhere() -> None:
    pager = routed(digest(BURST), ROUTES, "pager")
    assert names(pager) == ["edge-9.example.com"]  # critical AND edge-*
    nobody = routed(digest(BURST), ROUTES, "unrouted")
    assert names(nobody) == [] and nobody["omitted"] == 0


@unit
def test_without_a_limit_every_routed_item_is_kept() -> None:
    """What a failed channel should have carried is withdrawn whole (the next run alerts all of it again)."""
    part = routed(digest(BURST), ROUTES, "buckets", limit=None)
    assert len(names(part)) == 80 and part["omitted"] == 0
