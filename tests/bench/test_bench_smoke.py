"""The sweep and call-cost benchmarks run end to end on a tiny fleet and print every figure their README rows promise.

Not a timing test: the figures themselves are only read for presence and consistency (calls counted by
localcloud, every bucket with an outcome, ratios derived from the printed bounds), so a refactor of the engine
or of localcloud cannot silently break the command the closing note quotes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str) -> tuple[str, dict[str, Any]]:
    """Run ``bench/<args>`` as the README says, assert it exits 0, return its stdout and its JSON line."""
    completed = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=110,
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
    assert result["bound_seconds"] == pytest.approx(result["api_calls"] * 0.002 / 8, abs=0.01)
    reachable = result["lowest_reachable_ratio"]
    assert reachable["cpu_floor_over_bound"] >= 1.0 and reachable["sdk_client_only_over_bound"] >= 1.0
    assert reachable["sdk_client_cpu_per_call_ms"] > 0
    assert 0 < result["peak_rss_mb"] < 1000
    assert "lowest ratio reachable on this machine" in stdout
    assert result["naive_sequential"]["label"].startswith("EXTRAPOLATED")


@pytest.mark.slow
def test_bench_call_costs_reports_each_operation_on_both_sides() -> None:
    _, result = run_bench("bench/bench_call_costs.py", "--buckets", "40", "--repeat", "15")
    assert result["bench"] == "call_costs" and result["repeat"] == 15
    assert set(result["operations"]) == {"tls_handshake_new_host", "https_config_kept_alive", "policy_kept_alive",
                                         "https_config_new_host"}
    for figures in result["operations"].values():
        assert figures["wall_ms"] > 0 and figures["client_ms"] >= 0 and figures["localcloud_ms"] >= 0
    assert result["allowed_per_call_ms_at_1_5x"] == pytest.approx(1.5 * 20 / 32 * result["cores"])
