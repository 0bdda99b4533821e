"""Every benchmark behind a README figure of issue 13's item 11 (sweep, call costs, function set, live verification)
runs end to end on a tiny fleet and prints every figure its README row promises; the hostile-TLS benchmark of
issue 14 on one case.

Not timing tests: the figures are only read for presence and consistency (calls counted by localcloud, every
target with an outcome, ratios derived from the printed bounds, connections counted twice and equal, round trips
that add up), so a refactor of the lifecycle or of localcloud cannot silently break a command the README quotes.
The two structural properties the README states as goals are asserted too, because they do not depend on the
machine's speed: an event needs at most four sequential OSS round trips before its rollback is verified, and a
live verification opens no more connections than one per TLS version, cipher class, certificate or HTTP check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str, timeout: float = 110) -> tuple[str, dict[str, Any]]:
    """Run ``bench/<args>`` as the README says, assert it exits 0, return its stdout and its JSON line."""
    completed = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                               check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout, json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_bench_sweep_runs_on_a_small_fleet_and_reports_its_figures() -> None:
    stdout, result = run_bench("bench/bench_sweep.py", "--buckets", "60", "--latency-ms", "2", "--concurrency", "8",
                               "--naive-sample", "6", "--drift", "0.1")
    assert result["bench"] == "sweep" and result["buckets"] == 60
    outcomes = result["outcomes"]
    assert sum(outcomes.values()) == 60 and outcomes["failed"] == 0 and outcomes["remediated"] > 0
    calls = result["calls_by_operation"]
    assert calls["oss:GetBucketHttpsConfig"] >= 60 and result["api_calls"] == sum(calls.values())
    assert "oss:ListCname" not in calls  # the bucket sweep only: custom domains are measured apart
    assert result["bound_seconds"] == pytest.approx(result["api_calls"] * 0.002 / 8, abs=0.01)
    reachable = result["lowest_reachable_ratio"]
    assert reachable["cpu_floor_over_bound"] >= 1.0 and reachable["sdk_client_only_over_bound"] >= 1.0
    assert reachable["sdk_client_cpu_per_call_ms"] > 0
    assert 0 < result["peak_rss_mb"] < 1000
    assert "lowest ratio reachable on this machine" in stdout
    assert result["naive_sequential"]["label"].startswith("EXTRAPOLATED")
    # client CPU per bucket: printed, and consistent with per call x calls per bucket
    assert "client CPU per bucket" in stdout
    assert result["calls_per_bucket"] == pytest.approx(result["api_calls"] / 60, abs=0.001)
    assert result["client_cpu_ms_per_bucket"] == pytest.approx(
        result["client_cpu_ms_per_call"] * result["calls_per_bucket"], rel=0.02, abs=0.02)
    assert result["client_cpu_ms_per_bucket"] == pytest.approx(1000 * result["cpu_seconds"]["tlsguard"] / 60, abs=2)
    assert result["recorded_before_refactor"]["client_cpu_ms_per_bucket"] == 8.2
    # the daily custom-domain discovery pass, labelled apart: one ListCname per bucket
    cname = result["custom_domain_pass"]
    assert cname["label"].startswith("SEPARATE") and "custom-domain discovery pass" in stdout
    assert cname["calls_by_operation"]["oss:ListCname"] == 60 and cname["client_cpu_ms_per_bucket"] > 0
    assert cname["errors"] == []


@pytest.mark.slow
def test_bench_call_costs_reports_each_operation_on_both_sides() -> None:
    stdout, result = run_bench("bench/bench_call_costs.py", "--buckets", "60", "--repeat", "15")
    assert result["bench"] == "call_costs" and result["repeat"] == 15
    assert set(result["operations"]) == {"tls_handshake_new_host", "https_config_kept_alive", "policy_kept_alive",
                                         "encryption_kept_alive", "https_config_new_host", "bare_bucket_new_host",
                                         "lifecycle_bucket_new_host"}
    for figures in result["operations"].values():
        assert figures["wall_ms"] > 0 and figures["client_ms"] >= 0 and figures["localcloud_ms"] >= 0
    assert result["allowed_per_call_ms_at_1_5x"] == pytest.approx(1.5 * 20 / 32 * result["cores"])
    operations = result["operations"]
    assert result["lifecycle_client_ms_over_bare_calls"] == pytest.approx(
        operations["lifecycle_bucket_new_host"]["client_ms"] - operations["bare_bucket_new_host"]["client_ms"],
        abs=0.002)
    assert "one compliant bucket through the lifecycle" in stdout


@pytest.mark.slow
def test_bench_functions_reports_event_latency_round_trips_overhead_and_imports() -> None:
    stdout, result = run_bench("bench/bench_functions.py", "--events", "6", "--latency-ms", "30",
                               "--overhead-runs", "3", "--buckets", "3", "--import-repeats", "1", timeout=240)
    assert result["bench"] == "functions"
    latency = result["latency"]
    assert latency["failures"] == 0 and latency["events"] == 6
    verified = latency["delivered_to_restored_and_verified"]
    finished = latency["delivered_to_invocation_finished"]
    assert verified["n"] == 6 and 0 < verified["p50_ms"] <= verified["p99_ms"] <= verified["max_ms"]
    assert finished["n"] == 6 and finished["p50_ms"] >= verified["p50_ms"]  # the journal outcome comes after
    assert latency["gc"]["controlled"] and latency["gc"]["events_with_a_full_collection"] >= 0
    trips = latency["round_trips"]
    # reads, intent (with the compare-before-write re-read), write, re-read: the README's four round trips
    assert 1 <= trips["sequential_p50"] <= 4 and trips["example_rounds"]
    assert "PutBucketHttpsConfig" in {op for rounds in trips["example_rounds"] for op in rounds}
    overhead = result["overhead"]
    assert overhead["runs"] == 3 and overhead["overhead_excluding_api"]["n"] == 3
    assert 0 <= overhead["overhead_excluding_api"]["p50_ms"] <= overhead["handler_total"]["p50_ms"]
    imports = result["importtime_ms"]
    assert all(imports[f"functions.{name}.index"] > 0 for name in ("sweep", "check", "on_change", "webhook",
                                                                     "failed", "cert_renewal"))
    assert "event delivered -> restored+verified" in stdout and "OSS round trips before verified" in stdout


@pytest.mark.slow
def test_bench_verify_counts_connections_per_verification_twice_and_within_the_goal() -> None:
    stdout, result = run_bench("bench/bench_verify.py", "--buckets", "3", "--domains", "2", "--cdn", "2")
    assert result["bench"] == "verify"
    kinds = result["kinds"]
    assert set(kinds) == {"oss-bucket", "oss-cname", "cdn-domain"}
    for kind, row in kinds.items():
        assert row["verifications"] == row["endpoints"] == row["remediated"], (kind, row)
        assert row["effective"] == row["verifications"], (kind, row["details"])
        assert row["connections_reported"] == row["connections_relayed"] > 0, (kind, row)  # counted twice, equal
        assert row["max_connections_per_verification"] <= row["goal_max_connections"] and row["goal_met"], row
        assert row["wall_seconds"] > 0
    assert kinds["oss-cname"]["connections_per_verification"] == 1
    assert kinds["cdn-domain"]["http_connections_relayed"] == kinds["cdn-domain"]["verifications"]  # the redirect
    assert "NOT MET" not in stdout


def test_bench_hostile_tls_measures_a_case_in_its_own_child() -> None:  # about a second: not marked slow
    stdout, result = run_bench("bench/bench_hostile_tls.py", "--cases", "looped-chain", timeout=60)
    assert result["bench"] == "hostile_tls" and list(result["cases"]) == ["looped-chain"]
    case = result["cases"]["looped-chain"]
    assert case["outcome"] == "cert.chain untrusted (3 read)" and "chain contains a loop" in case["detail"]
    assert case["tlsguard"].startswith(result["tree"]) and not case["killed"]
    assert 0 < case["seconds"] < result["guard_seconds"]
    assert 0 < case["baseline_mb"] <= case["peak_rss_mb"] < 1000 and 0 < case["tracemalloc_mb"] < 16
    assert "looped-chain" in stdout and "tracemalloc MB" in stdout and "WARNING" not in stdout
