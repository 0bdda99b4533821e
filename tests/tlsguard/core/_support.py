"""Helpers and the ``fleet`` fixture for the core's integration tests: bucket seeds, policies, lifecycle runs over
buckets, and what localcloud holds afterwards (bucket state, write events, the state bucket's journal)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
from tlsguard import runs
from tlsguard.model import TargetKind, TargetRef
from tlsguard.ports import BucketRef

from tests.support import (
    ACCOUNT,
    ALICE,
    FAST_RETRY,
    STATE_BUCKET,
    connection_for,
    lifecycle_for,
    outsider,
    wiring_for,
)
from tests.support import write_policy as _write_policy

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tlsguard.lifecycle import Lifecycle
    from tlsguard.model import TargetResult, Trigger

__all__ = ["ACCOUNT", "ALICE", "BASE_POLICY", "COMPLIANT_HTTPS", "FAST_RETRY", "REGION", "STATE_BUCKET",
           "bucket_state", "bucket_target", "by_name", "compliant_bucket", "connection_for", "fleet",
           "https_only_policy", "journal_ids", "lifecycle_for", "outsider", "ref", "report_of", "state_keys",
           "sweep_buckets", "validate_report", "wiring_for", "write_events", "write_policy"]

REGION = "cn-hangzhou"
BUCKETS = frozenset({TargetKind.OSS_BUCKET})
ROOT = Path(__file__).resolve().parents[3]
REPORT_SCHEMA: dict[str, Any] = json.loads((ROOT / "schemas" / "report.schema.json").read_text())
REPORT_VALIDATOR = jsonschema.Draft202012Validator(REPORT_SCHEMA, format_checker=jsonschema.FormatChecker())

BASE_POLICY = """
version: 1
mode: enforce
defaults:
  tls_versions: [TLSv1.2, TLSv1.3]
  cipher_suites: {mode: strong}
  https_only: true
  encryption: {algorithm: AES256}
state: {bucket: tlsguard-state}
"""

COMPLIANT_HTTPS = {"tls": {"enable": True, "versions": ["TLSv1.2", "TLSv1.3"]},
                   "cipher_suite": {"enable": True, "strong": True}}


def https_only_policy(bucket: str) -> dict[str, Any]:
    return {"Version": "1", "Statement": [{
        "Effect": "Deny", "Principal": ["*"], "Action": ["oss:*"],
        "Resource": [f"acs:oss:*:*:{bucket}", f"acs:oss:*:*:{bucket}/*"],
        "Condition": {"Bool": {"acs:SecureTransport": ["false"]}}}]}


def compliant_bucket(name: str, **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"name": name, "https_config": COMPLIANT_HTTPS, "policy": https_only_policy(name),
                            "encryption": {"algorithm": "AES256"}}
    item.update(overrides)
    return item


def write_policy(tmp_path: Path, text: str = BASE_POLICY, name: str = "tlsguard.yaml") -> Path:
    return _write_policy(tmp_path, text, name)


def ref(name: str, region: str = REGION) -> BucketRef:
    """A bucket as the OSS port (and the outsider) addresses it."""
    return BucketRef(name, region)


def bucket_target(name: str, region: str = REGION) -> TargetRef:
    """A bucket as the lifecycle addresses it."""
    return TargetRef.bucket_target(name, region, ACCOUNT)


def sweep_buckets(lifecycle: Lifecycle, names: Iterable[str] | None = None, *, concurrency: int = 16,
                  trigger: Trigger | None = None) -> list[TargetResult]:
    """What the CLI does for buckets: reconcile and list pending verifications once, discover every bucket (or
    only ``names``), run the lifecycle over them. A listing failure is raised, never an empty fleet."""
    ctx = lifecycle.ctx
    runs.start_run(lifecycle)
    discovery = runs.Discovery()
    wanted = set(names) if names is not None else None
    targets = [(t, p) for t, p in runs.discover(ctx, kinds=BUCKETS, report=discovery)
               if wanted is None or t.name in wanted]
    if discovery.errors:
        raise AssertionError(f"discovery failed: {discovery.errors}")
    return list(runs.sweep(lifecycle, targets, concurrency=concurrency, trigger=trigger))


def by_name(results: Iterable[TargetResult]) -> dict[str, TargetResult]:
    return {r.target.name: r for r in results}


@pytest.fixture
def fleet(cloud: Any) -> Any:
    """Seed helper: ``fleet(bucket, ...)`` adds buckets plus the state bucket (once)."""
    state_seeded = False

    def seed(*buckets: dict[str, Any]) -> None:
        nonlocal state_seeded
        items = list(buckets)
        if not state_seeded:
            items.append({"name": STATE_BUCKET})
            state_seeded = True
        cloud.seed({"buckets": items})

    return seed


def validate_report(document: dict[str, Any]) -> dict[str, Any]:
    """A JSON report, validated against ``schemas/report.schema.json`` (version 2.0)."""
    REPORT_VALIDATOR.validate(document)
    assert document["report_version"] == "2.0"
    return document


def report_of(result: Any) -> dict[str, Any]:
    """The JSON report a CLI invocation printed on stdout, validated against the published schema."""
    document: dict[str, Any] = json.loads(result.stdout)
    return validate_report(document)


def bucket_state(cloud: Any, name: str) -> dict[str, Any]:
    for bucket in cloud.oss.snapshot()["buckets"]:
        if bucket["name"] == name:
            return dict(bucket)
    raise KeyError(name)


def state_keys(cloud: Any, prefix: str = "") -> list[str]:
    """Keys of the state bucket's objects under ``tlsguard/<prefix>``, sorted."""
    bucket = cloud.oss.get(STATE_BUCKET)
    assert bucket is not None
    return sorted(k for k in bucket.objects if k.startswith("tlsguard/" + prefix))


def journal_ids(cloud: Any) -> list[str]:
    """Ids of the filed journal entries (intent and outcome both written), oldest first per target."""
    suffix = ".intent.json"
    return [k[len("tlsguard/journal/"):-len(suffix)] for k in state_keys(cloud, "journal/") if k.endswith(suffix)]


def write_events(cloud: Any, since: int = 0, bucket: str | None = None) -> list[dict[str, Any]]:
    """ActionTrail write events recorded by localcloud (optionally for one bucket, excluding state objects)."""
    events = []
    for envelope in cloud.trail.events(since):
        data = envelope["data"]
        names = (data.get("referencedResources") or {}).get("ACS::OSS::Bucket") or []
        if bucket is None or bucket in names:
            events.append(data)
    return events
