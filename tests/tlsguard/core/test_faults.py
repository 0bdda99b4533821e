"""Throttling, 5xx, dropped connections and AccessDenied on some buckets never stop the others being checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tlsguard import runs
from tlsguard.adapters.oss import AliyunOss
from tlsguard.cli import run_command
from tlsguard.model import Outcome, TargetKind
from tlsguard.ports import BucketRef
from tlsguard.retry import RetryPolicy
from tlsguard.wiring import oss_connection

from tests.tlsguard.core._support import (
    by_name,
    compliant_bucket,
    lifecycle_for,
    outsider,
    sweep_buckets,
    write_policy,
)

DRIFTED = {"tls": {"enable": True, "versions": ["TLSv1.0", "TLSv1.1", "TLSv1.2"]}, "cipher_suite": {"enable": True,
                                                                                     "strong": True}}


def test_faulty_buckets_fail_with_reasons_and_the_rest_are_remediated(cloud: Any, fleet: Any,
                                                                      tmp_path: Path) -> None:
    names = ["bucket-ok", "bucket-throttled", "bucket-5xx", "bucket-denied", "bucket-flaky", "bucket-reset",
             "bucket-truncated", "bucket-garbled"]
    fleet(*(compliant_bucket(n, https_config=DRIFTED) for n in names))
    add = cloud.faults.add_dict
    add({"kind": "throttle", "service": "oss", "operation": "GetBucketHttpsConfig", "resource": "bucket-throttled"})
    add({"kind": "error", "service": "oss", "operation": "GetBucketPolicy", "resource": "bucket-5xx",
         "status": 500, "code": "InternalError"})
    denied = add({"kind": "error", "service": "oss", "operation": "GetBucketEncryption", "resource": "bucket-denied",
                  "status": 403, "code": "AccessDenied", "message": "not allowed"})
    flaky = add({"kind": "throttle", "service": "oss", "operation": "PutBucketHttpsConfig", "resource": "bucket-flaky",
                 "remaining": 2})
    reset = add({"kind": "reset", "service": "oss", "operation": "GetBucketHttpsConfig", "resource": "bucket-reset",
                 "remaining": 1})
    truncated = add({"kind": "truncate", "service": "oss", "operation": "GetBucketPolicy",
                     "resource": "bucket-truncated", "remaining": 1})
    garbled = add({"kind": "malformed", "service": "oss", "operation": "GetBucketHttpsConfig",
                   "resource": "bucket-garbled", "remaining": 1})
    results = by_name(sweep_buckets(lifecycle_for(cloud, write_policy(tmp_path)), concurrency=4))
    assert set(results) == set(names)
    assert results["bucket-ok"].outcome is Outcome.REMEDIATED, results["bucket-ok"].reason
    assert results["bucket-flaky"].outcome is Outcome.REMEDIATED and flaky.hits == 2  # retried through throttling
    assert results["bucket-reset"].outcome is Outcome.REMEDIATED and reset.hits == 1  # retried after a reset
    assert results["bucket-truncated"].outcome is Outcome.REMEDIATED and truncated.hits == 1
    assert results["bucket-garbled"].outcome is Outcome.REMEDIATED and garbled.hits == 1
    throttled = results["bucket-throttled"]
    assert throttled.outcome is Outcome.FAILED and "GetBucketHttpsConfig" in throttled.reason
    assert throttled.error_code and "503" in throttled.reason
    assert results["bucket-5xx"].outcome is Outcome.FAILED and "InternalError" in results["bucket-5xx"].reason
    assert results["bucket-denied"].outcome is Outcome.FAILED and results["bucket-denied"].error_code == "AccessDenied"
    assert denied.hits == 1  # AccessDenied is never retried
    for name in ("bucket-throttled", "bucket-5xx", "bucket-denied"):
        assert results[name].reason  # every failure says why
        assert not results[name].actions and not results[name].journal_id  # nothing written on a partial read
    assert results["bucket-throttled"].retryable and results["bucket-5xx"].retryable
    assert not results["bucket-denied"].retryable


def test_list_buckets_pages_are_streamed(cloud: Any, fleet: Any, endpoints_file: Path) -> None:
    fleet(*({"name": f"paged-{i:03d}"} for i in range(25)))
    adapter = AliyunOss(oss_connection(str(endpoints_file)), retry=RetryPolicy(attempts=1), list_page_size=10)
    stream = adapter.list_buckets()
    first = next(stream)
    assert cloud.stats.snapshot()["oss:ListBuckets"] == 1  # only the first page has been fetched
    names = [first.name, *(b.name for b in stream)]
    assert len(names) == 26 and len(set(names)) == 26  # 25 + the state bucket, no duplicates across pages
    assert cloud.stats.snapshot()["oss:ListBuckets"] == 3


def test_a_listing_failure_is_an_error_not_a_silent_empty_fleet(cloud: Any, fleet: Any, tmp_path: Path,
                                                                 endpoints_file: Path) -> None:
    fleet(compliant_bucket("bucket-a"))
    cloud.faults.add_dict({"kind": "error", "service": "oss", "operation": "ListBuckets", "status": 403,
                           "code": "AccessDenied"})
    policy = write_policy(tmp_path)
    # The discovery reports the failure as data ...
    discovery = runs.Discovery()
    lifecycle = lifecycle_for(cloud, policy, apply=False)
    found = list(runs.discover(lifecycle.ctx, kinds=frozenset({TargetKind.OSS_BUCKET}), report=discovery))
    assert found == []
    (error,) = discovery.errors
    assert error.startswith("ListBuckets:") and "AccessDenied" in error
    # ... and a run over it fails (exit 1) and says why, instead of reporting an empty, compliant fleet
    report = run_command("plan", str(policy), str(endpoints_file), apply=False, mode=None)
    assert report.exit_code == 1
    assert any(e.startswith("ListBuckets:") and "AccessDenied" in e for e in report.errors)
    assert outsider(cloud).get_policy(BucketRef("bucket-a", "cn-hangzhou")) is not None


def test_tls_is_verified_against_localclouds_roots_only(cloud: Any, fleet: Any, endpoints_file: Path) -> None:
    import dataclasses

    fleet(compliant_bucket("bucket-a"))
    trusted = AliyunOss(oss_connection(str(endpoints_file)), retry=RetryPolicy(attempts=1))
    assert trusted.get_https_config(BucketRef("bucket-a", "cn-hangzhou")).tls_enabled
    untrusted = AliyunOss(dataclasses.replace(oss_connection(str(endpoints_file)), ca_bundle=None),
                          retry=RetryPolicy(attempts=1))
    try:
        untrusted.get_https_config(BucketRef("bucket-a", "cn-hangzhou"))
    except Exception as exc:
        assert "CERTIFICATE_VERIFY_FAILED" in str(exc)
    else:
        raise AssertionError("a server outside the trust store must be refused")
