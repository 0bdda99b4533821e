"""The ``tlsguard`` CLI against localcloud: plan, apply, undo, journal, exit codes, the exact writes a plan shows,
and the JSON report's schema (every JSON report validates against ``schemas/report.schema.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from tlsguard.cli import cli
from tlsguard.facets import encryption_from_json
from tlsguard.policy.model import RawHttpsConfig

from tests.tlsguard.core._support import (
    REPORT_SCHEMA,
    REPORT_VALIDATOR,
    bucket_state,
    compliant_bucket,
    https_only_policy,
    journal_ids,
    outsider,
    ref,
    report_of,
    state_keys,
    write_events,
    write_policy,
)


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def only(report: dict[str, Any], name: str) -> dict[str, Any]:
    (item,) = [t for t in report["targets"] if t["target"]["name"] == name]
    return item


def test_the_schema_is_valid_and_rejects_a_wrong_report() -> None:
    jsonschema.Draft202012Validator.check_schema(REPORT_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        REPORT_VALIDATOR.validate({"report_version": "1.0"})


def test_plan_apply_undo_round_trip(cloud: Any, fleet: Any, tmp_path: Path, endpoints_file: Path) -> None:
    fleet(compliant_bucket("cli-good"), {"name": "cli-drift", "https_config": {"tls": {"enable": False}}})
    policy = str(write_policy(tmp_path))
    common = ["--policy", policy, "--localcloud", str(endpoints_file)]
    since = len(cloud.trail.events())

    planned = run("plan", *common, "--json")
    assert planned.exit_code == 2, planned.output
    plan_report = report_of(planned)
    assert plan_report["command"] == "plan" and plan_report["exit_code"] == 2
    summary = plan_report["summary"]
    assert {k: v for k, v in summary.items() if k not in ("by_kind", "live")} == {
        "targets": 2, "compliant": 1, "drifted": 1, "pending": 0, "remediated": 0, "refused": 0, "contested": 0,
        "failed": 0, "findings": 4, "alert_errors": 0}
    assert summary["by_kind"] == {"oss-bucket": 2, "oss-cname": 0, "cdn-domain": 0}
    assert only(plan_report, "cli-drift")["target"] == {"kind": "oss-bucket", "account": "1500000000000001",
                                                        "region": "cn-hangzhou", "name": "cli-drift"}
    assert cloud.trail.events(since) == []  # plan writes nothing
    assert state_keys(cloud) == []  # not even state

    human = run("plan", *common)
    assert human.exit_code == 2
    assert "oss-bucket cli-drift (cn-hangzhou): DRIFTED" in human.stdout
    assert "actual:  TLSv1.0,TLSv1.1,TLSv1.2" in human.stdout and "desired: TLSv1.2,TLSv1.3" in human.stdout

    applied = run("apply", *common, "--json", "--concurrency", "4")
    assert applied.exit_code == 0, applied.output
    apply_report = report_of(applied)
    target = only(apply_report, "cli-drift")
    assert target["outcome"] == "remediated" and target["journal_id"].startswith("oss-bucket/cli-drift/")
    assert target["live_verification"] == "pending"  # TLS changed: the edge is probed after propagation
    assert apply_report["summary"]["live"] == {"pending": 1, "effective": 0, "not_effective": 0}
    converged = run("plan", *common, "--json")
    assert converged.exit_code == 0, converged.output  # converged (the TLS write is still propagating)
    assert only(report_of(converged), "cli-drift")["outcome"] == "pending"

    since_undo = len(cloud.trail.events())
    undone = run("undo", target["journal_id"], "--policy", policy, "--localcloud", str(endpoints_file), "--json")
    assert undone.exit_code == 2, undone.output  # encryption was absent before: never deleted, so a partial undo
    (undo_target,) = report_of(undone)["targets"]
    assert undo_target["outcome"] == "remediated" and undo_target["error_code"] == "PartialUndo"
    assert "never deletes encryption" in undo_target["reason"]
    assert [a["call"] for a in undo_target["actions"]] == ["DeleteBucketPolicy", "PutBucketHttpsConfig"]
    assert [e["eventName"] for e in write_events(cloud, since_undo, "cli-drift")] == [
        "DeleteBucketPolicy", "PutBucketHttpsConfig"]
    after = bucket_state(cloud, "cli-drift")
    assert after["encryption"]["SSEAlgorithm"] == "AES256" and after["policy"] is None
    assert after["https_config"]["TLS"]["Enable"] is False
    assert sorted(journal_ids(cloud)) == sorted([target["journal_id"], undo_target["journal_id"]])


def test_plan_shows_the_exact_writes_and_apply_makes_exactly_them(cloud: Any, fleet: Any, tmp_path: Path,
                                                                  endpoints_file: Path) -> None:
    foreign = {"Effect": "Allow", "Principal": ["1500000000000002"], "Action": ["oss:GetObject"],
               "Resource": ["acs:oss:*:*:exact/*"]}
    fleet({"name": "exact", "https_config": {"tls": {"enable": True, "versions": ["TLSv1.0", "TLSv1.2"]}},
           "policy": {"Version": "1", "Statement": [foreign]}, "encryption": {"algorithm": "SM4"}},
          compliant_bucket("exact-good"))
    common = ["--policy", str(write_policy(tmp_path)), "--localcloud", str(endpoints_file)]

    # plan --json: one action per facet, naming the API call and the exact document it sends
    plan_report = report_of(run("plan", *common, "--json"))
    item = only(plan_report, "exact")
    assert item["outcome"] == "drifted" and only(plan_report, "exact-good")["actions"] == []
    actions = {a["call"]: a for a in item["actions"]}
    assert [a["call"] for a in item["actions"]] == ["PutBucketHttpsConfig", "PutBucketEncryption", "PutBucketPolicy"]
    assert all(a["status"] == "planned" for a in item["actions"])
    https = actions["PutBucketHttpsConfig"]
    whole = {"tls": {"enable": True, "versions": ["TLSv1.2", "TLSv1.3"]},
             "cipher_suite": {"enable": True, "strong": True, "custom_tls12": [], "custom_tls13": []}}
    assert https["params"] == {"Bucket": "exact", "HttpsConfiguration": whole}  # the whole https document
    assert https["checks"] == ["oss.tls_versions", "oss.cipher_suites"] and https["after"] == whole
    assert https["before"] == {"tls": {"enable": True, "versions": ["TLSv1.0", "TLSv1.2"]}, "cipher_suite": None}
    policy = actions["PutBucketPolicy"]
    merged = json.loads(policy["params"]["Policy"])  # the merged policy text: foreign statement kept, Deny added
    assert policy["params"]["Bucket"] == "exact"
    assert merged == {"Version": "1", "Statement": [foreign, https_only_policy("exact")["Statement"][0]]}
    assert json.loads(policy["before"]) == {"Version": "1", "Statement": [foreign]}
    encryption = actions["PutBucketEncryption"]
    rule = {"algorithm": "AES256", "kms_key_id": "", "kms_data_encryption": ""}
    assert encryption["params"] == {"Bucket": "exact", "ServerSideEncryptionRule": rule}
    assert encryption["before"] == {"algorithm": "SM4", "kms_key_id": "", "kms_data_encryption": ""}

    # the text output shows the same calls with the same parameters
    human = run("plan", *common).stdout
    for action in item["actions"]:
        assert f"would write {action['summary']}" in human
        assert f"{action['call']} {json.dumps(action['params'], sort_keys=True, ensure_ascii=False)}" in human

    # apply writes exactly those documents (read back through the SDK and from localcloud's state)
    since = len(cloud.trail.events())
    applied = run("apply", *common, "--json")
    assert applied.exit_code == 0, applied.output
    written = only(report_of(applied), "exact")
    assert written["outcome"] == "remediated"
    assert [{**a, "status": "planned"} for a in written["actions"]] == item["actions"]
    assert all(a["status"] == "written" for a in written["actions"])
    assert [e["eventName"] for e in write_events(cloud, since)] == [
        "PutBucketHttpsConfig", "PutBucketEncryption", "PutBucketPolicy"]
    reader = outsider(cloud)
    assert reader.get_https_config(ref("exact")) == RawHttpsConfig.from_dict(whole)
    assert json.loads(reader.get_policy(ref("exact")) or "") == merged
    assert reader.get_encryption(ref("exact")) == encryption_from_json(rule)
    state = bucket_state(cloud, "exact")
    assert state["https_config"]["TLS"] == {"Enable": True, "TLSVersion": ["TLSv1.2", "TLSv1.3"]}
    assert state["https_config"]["CipherSuite"]["Enable"] is True
    assert state["https_config"]["CipherSuite"]["StrongCipherSuite"] is True
    assert json.loads(state["policy"]) == merged and state["encryption"]["SSEAlgorithm"] == "AES256"
    # ... and journals them: journal show prints the same actions
    shown = run("journal", "show", written["journal_id"], *common, "--json")
    assert shown.exit_code == 0, shown.output
    entry = json.loads(shown.stdout)
    assert entry["status"] == "applied"
    assert [(a["call"], a["params"]) for a in entry["intent"]["actions"]] == \
        [(a["call"], a["params"]) for a in item["actions"]]


def test_undo_restores_through_the_cli(cloud: Any, fleet: Any, tmp_path: Path, endpoints_file: Path) -> None:
    fleet(compliant_bucket("cli-undo", https_config={"tls": {"enable": True, "versions": ["TLSv1.1", "TLSv1.2"]}}))
    policy = str(write_policy(tmp_path))
    common = ["--policy", policy, "--localcloud", str(endpoints_file)]
    applied = report_of(run("apply", *common, "--json"))
    journal_id = only(applied, "cli-undo")["journal_id"]
    undone = run("undo", journal_id, *common)
    assert undone.exit_code == 0, undone.output
    assert f"restored the before-state of {journal_id}" in undone.stdout
    assert bucket_state(cloud, "cli-undo")["https_config"]["TLS"]["TLSVersion"] == ["TLSv1.1", "TLSv1.2"]
    # undo as JSON validates too; undoing again finds nothing to restore and writes nothing
    since = len(cloud.trail.events())
    again = run("undo", journal_id, *common, "--json")
    assert again.exit_code == 2
    (item,) = report_of(again)["targets"]
    assert item["outcome"] == "refused" and "already in its before-state" in item["reason"]
    assert cloud.trail.events(since) == []


def test_journal_list_and_show(cloud: Any, fleet: Any, tmp_path: Path, endpoints_file: Path) -> None:
    fleet({"name": "cli-journal", "https_config": COMPLIANT_LEGACY}, compliant_bucket("cli-quiet"))
    common = ["--policy", str(write_policy(tmp_path)), "--localcloud", str(endpoints_file)]
    journal_id = only(report_of(run("apply", *common, "--json")), "cli-journal")["journal_id"]
    listed = run("journal", "list", *common, "--json")
    assert listed.exit_code == 0, listed.output
    (entry,) = json.loads(listed.stdout)
    assert entry["journal_id"] == journal_id and entry["status"] == "applied" and entry["kind"] == "remediation"
    assert entry["calls"] == ["PutBucketHttpsConfig", "PutBucketEncryption", "PutBucketPolicy"]
    assert entry["actor"] == "tlsguard cli"
    text = run("journal", "list", *common, "--target", "cli-journal").stdout
    assert journal_id in text and "1 entries; 0 incomplete" in text
    assert "0 entries" in run("journal", "list", *common, "--target", "cli-quiet").stdout
    shown = run("journal", "show", journal_id, *common)
    assert shown.exit_code == 0 and f"tlsguard undo {journal_id}" in shown.stdout
    assert "PutBucketHttpsConfig [written]" in shown.stdout
    missing = run("journal", "show", "oss-bucket/cli-journal/20260101T000000000000Z-deadbeef", *common)
    assert missing.exit_code == 1 and "not found" in missing.stderr
    bad = run("journal", "show", "cli-journal.20260101T000000000000Z.deadbeef", *common)
    assert bad.exit_code == 1 and "not a journal id" in bad.stderr


COMPLIANT_LEGACY = {"tls": {"enable": True, "versions": ["TLSv1.0", "TLSv1.2"]}}


def test_verify_probes_the_edge_once_the_write_has_propagated(cloud: Any, fleet: Any, tmp_path: Path,
                                                              endpoints_file: Path) -> None:
    fleet({"name": "cli-live", "https_config": {"tls": {"enable": True, "versions": ["TLSv1.0", "TLSv1.2"]},
                                                "cipher_suite": {"enable": True, "strong": True}},
           "policy": https_only_policy("cli-live"), "encryption": {"algorithm": "AES256"}})
    policy = write_policy(tmp_path, BASE_POLICY_NO_WINDOW)
    common = ["--policy", str(policy), "--localcloud", str(endpoints_file)]
    applied = only(report_of(run("apply", *common, "--json")), "cli-live")
    assert applied["outcome"] == "remediated" and applied["live_verification"] == "pending"
    assert len(state_keys(cloud, "verify/")) == 1
    # the edge is probed with real handshakes: TLS 1.0 refused, TLS 1.2 and 1.3 accepted
    verified = run("verify", *common, "--json")
    assert verified.exit_code == 0, verified.output
    report = report_of(verified)
    (verification,) = report["verifications"]
    assert verification["journal_id"] == applied["journal_id"]
    assert verification["live_verification"] == "effective", verification["detail"]
    assert verification["connections"] >= 3 and report["summary"]["live"]["effective"] == 1
    assert state_keys(cloud, "verify/") == [] and len(state_keys(cloud, "verify-results/")) == 1
    # nothing is pending any more: the next plan finds the bucket compliant
    after = only(report_of(run("plan", *common, "--json")), "cli-live")
    assert after["outcome"] == "compliant" and after["live_verification"] == "not_applicable"


BASE_POLICY_NO_WINDOW = """
version: 1
defaults:
  tls_versions: [TLSv1.2, TLSv1.3]
  cipher_suites: {mode: strong}
  https_only: true
  encryption: {algorithm: AES256}
state: {bucket: tlsguard-state}
verify: {propagation_minutes: 0}
"""


def test_mode_override_and_environment(cloud: Any, fleet: Any, tmp_path: Path, endpoints_file: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fleet({"name": "cli-dry", "https_config": {"tls": {"enable": False}}})
    monkeypatch.setenv("TLSGUARD_LOCALCLOUD", str(endpoints_file))
    monkeypatch.setenv("TLSGUARD_POLICY", str(write_policy(tmp_path)))
    since = len(cloud.trail.events())
    result = run("apply", "--mode", "dry-run", "--json")
    assert result.exit_code == 2
    report = report_of(result)
    assert report["mode"] == "dry-run" and report["command"] == "apply"
    item = only(report, "cli-dry")
    assert item["outcome"] == "drifted" and "dry-run" in item["reason"] and item["mode"] == "dry-run"
    assert cloud.trail.events(since) == []
    assert journal_ids(cloud) == [] and state_keys(cloud, "open/") == []


def test_bad_policy_file_exits_1_with_file_line_and_field(tmp_path: Path, endpoints_file: Path) -> None:
    policy = write_policy(tmp_path, "version: 1\ndefaults:\n  tls_versions: [TLSv1.0]\n")
    result = run("plan", "--policy", str(policy), "--localcloud", str(endpoints_file))
    assert result.exit_code == 1
    assert f"{policy}:3: defaults.tls_versions: guardrail" in result.stderr
    assert "Traceback" not in result.output


def test_failures_exit_1(cloud: Any, fleet: Any, tmp_path: Path, endpoints_file: Path) -> None:
    fleet(compliant_bucket("cli-denied"))
    cloud.faults.add_dict({"kind": "error", "service": "oss", "operation": "GetBucketPolicy", "status": 403,
                           "code": "AccessDenied", "resource": "cli-denied"})
    result = run("plan", "--policy", str(write_policy(tmp_path)), "--localcloud", str(endpoints_file), "--json")
    assert result.exit_code == 1
    (target,) = report_of(result)["targets"]
    assert target["outcome"] == "failed" and target["error_code"] == "AccessDenied"
    assert "GetBucketPolicy" in target["reason"]


def test_probe_command_is_registered_lazily() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "probe" in result.stdout and "plan" in result.stdout
    for command in ("apply", "undo", "journal", "verify", "certs"):
        assert command in result.stdout
