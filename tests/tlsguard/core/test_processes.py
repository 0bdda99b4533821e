"""``tlsguard apply --processes N``: the sweep sharded over worker processes gives one report, same outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tlsguard.cli import cli
from tlsguard.parallel import split_concurrency
from tlsguard.ratelimit import RateLimiter

from tests.tlsguard.core._support import compliant_bucket, journal_ids, report_of, state_keys, write_policy


def test_two_worker_processes_remediate_every_drifted_bucket_once(cloud: Any, fleet: Any, tmp_path: Path,
                                                                  endpoints_file: Path) -> None:
    good = [compliant_bucket(f"proc-good-{i}") for i in range(5)]
    drifted = [{"name": f"proc-drift-{i}", "https_config": {"tls": {"enable": False}}} for i in range(3)]
    fleet(*good, *drifted)
    common = ["--policy", str(write_policy(tmp_path)), "--localcloud", str(endpoints_file)]

    applied = CliRunner().invoke(cli, ["apply", *common, "--json", "--processes", "2", "--concurrency", "4"],
                                 catch_exceptions=False)
    assert applied.exit_code == 0, applied.output
    report = report_of(applied)
    assert report["summary"]["targets"] == 8
    assert report["summary"]["compliant"] == 5 and report["summary"]["remediated"] == 3
    remediated = [t for t in report["targets"] if t["outcome"] == "remediated"]
    assert sorted(t["target"]["name"] for t in remediated) == [f"proc-drift-{i}" for i in range(3)]
    # one journal entry per remediation, no duplicates, none left open
    assert sorted(journal_ids(cloud)) == sorted(t["journal_id"] for t in remediated)
    assert state_keys(cloud, "open/") == []

    again = CliRunner().invoke(cli, ["plan", *common, "--json", "--processes", "2"], catch_exceptions=False)
    assert again.exit_code == 0, again.output  # converged; the three TLS writes still await their live proof
    sharded = report_of(again)
    assert (sharded["summary"]["compliant"], sharded["summary"]["pending"], sharded["summary"]["drifted"]) == (5, 3, 0)
    # the same outcomes as a one-process run
    single = report_of(CliRunner().invoke(cli, ["plan", *common, "--json"], catch_exceptions=False))

    def outcomes(report: dict[str, Any]) -> dict[str, str]:
        return {t["target"]["name"]: t["outcome"] for t in report["targets"]}

    assert outcomes(sharded) == outcomes(single)


def test_bucket_filter_and_processes_check_only_the_named_buckets(cloud: Any, fleet: Any, tmp_path: Path,
                                                                  endpoints_file: Path) -> None:
    fleet(compliant_bucket("proc-only-a"), compliant_bucket("proc-only-b"), compliant_bucket("proc-only-c"))
    result = CliRunner().invoke(cli, ["plan", "--policy", str(write_policy(tmp_path)), "--localcloud",
                                      str(endpoints_file), "--json", "--processes", "3", "--bucket", "proc-only-b"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert [t["target"]["name"] for t in report_of(result)["targets"]] == ["proc-only-b"]


@pytest.mark.unit
def test_concurrency_and_rates_are_split_between_workers() -> None:
    assert split_concurrency(32, 2) == 16
    assert split_concurrency(3, 8) == 1
    limiter = RateLimiter({"GetBucketHttpsConfig": 600.0}, share=0.5)
    assert limiter._buckets["GetBucketHttpsConfig"].rate == 300.0
    assert limiter._buckets["ListBuckets"].rate == 5.0
    with pytest.raises(ValueError):
        RateLimiter(share=0)


def test_a_worker_that_cannot_start_fails_the_run_with_its_reason(tmp_path: Path) -> None:
    from tlsguard.errors import TlsguardError
    from tlsguard.model import TargetRef
    from tlsguard.parallel import sweep_processes

    missing = tmp_path / "no-such-endpoints.json"  # the workers' wiring cannot be built
    with pytest.raises(TlsguardError, match="sweep worker failed: ConfigError"):
        list(sweep_processes(str(write_policy(tmp_path)), [(TargetRef.bucket_target("b1", "cn-hangzhou"), {})],
                             processes=2, concurrency=2, apply=False, localcloud=str(missing)))
