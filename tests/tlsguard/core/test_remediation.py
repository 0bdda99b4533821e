"""Drift detected and rolled back on localcloud, through the real SDK over HTTPS; asserted from localcloud's state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tlsguard.model import LiveVerification, Mode, Outcome, Trigger
from tlsguard.policy.model import EncryptionAlgorithm, EncryptionPolicy, RawHttpsConfig

from tests.tlsguard.core._support import (
    COMPLIANT_HTTPS,
    bucket_state,
    bucket_target,
    by_name,
    compliant_bucket,
    https_only_policy,
    journal_ids,
    lifecycle_for,
    outsider,
    ref,
    state_keys,
    sweep_buckets,
    write_events,
    write_policy,
)


def test_a_compliant_fleet_is_left_alone(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    fleet(compliant_bucket("bucket-a"), compliant_bucket("bucket-b"))
    lifecycle = lifecycle_for(cloud, write_policy(tmp_path))
    results = sorted(sweep_buckets(lifecycle), key=lambda r: r.target.name)
    assert [(r.target.name, r.outcome) for r in results] == [("bucket-a", Outcome.COMPLIANT),
                                                             ("bucket-b", Outcome.COMPLIANT)]
    assert all(r.reason == "matches the policy" and not r.actions and not r.journal_id for r in results)
    assert write_events(cloud) == []
    assert state_keys(cloud) == []  # nothing journaled, nothing pending


def test_each_drift_kind_is_detected_and_rolled_back(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    # GIVEN compliant buckets, then one outsider change of each kind through the SDK
    fleet(*(compliant_bucket(n) for n in ("drift-tls", "drift-cipher", "drift-policy", "drift-sse")))
    alice = outsider(cloud)
    alice.put_https_config(ref("drift-tls"), RawHttpsConfig(True, ("TLSv1.0", "TLSv1.1", "TLSv1.2"), True, True,
                                                           True))
    alice.put_https_config(ref("drift-cipher"), RawHttpsConfig(True, ("TLSv1.2", "TLSv1.3"), True, False))
    alice.put_policy(ref("drift-policy"), json.dumps({"Version": "1", "Statement": [
        {"Effect": "Allow", "Principal": ["*"], "Action": ["oss:GetObject"],
         "Resource": ["acs:oss:*:*:drift-policy/*"]}]}))
    alice.put_encryption(ref("drift-sse"), EncryptionPolicy(EncryptionAlgorithm.SM4))
    since = len(cloud.trail.events())
    # WHEN tlsguard applies the policy
    lifecycle = lifecycle_for(cloud, write_policy(tmp_path))
    results = by_name(sweep_buckets(lifecycle))
    # THEN each bucket is remediated with exactly the write its drift needs, verified and journaled
    expected = {"drift-tls": ("oss.tls_versions", "PutBucketHttpsConfig"),
                "drift-cipher": ("oss.cipher_suites", "PutBucketHttpsConfig"),
                "drift-policy": ("oss.https_only", "PutBucketPolicy"),
                "drift-sse": ("oss.default_encryption", "PutBucketEncryption")}
    for bucket, (check, operation) in expected.items():
        result = results[bucket]
        assert result.outcome is Outcome.REMEDIATED, result.reason
        assert "re-read confirms it" in result.reason and result.applied
        assert [f.check for f in result.findings] == [check]
        assert [(a.call, a.checks) for a in result.actions] == [(operation, (check,))]
        assert [e["eventName"] for e in write_events(cloud, since, bucket)] == [operation]
        assert result.journal_id.startswith(f"oss-bucket/{bucket}/")
        # TLS and cipher writes change what the edge negotiates: a live verification is pending for them
        https = operation == "PutBucketHttpsConfig"
        assert result.live_verification is (LiveVerification.PENDING if https else LiveVerification.NOT_APPLICABLE)
    assert sorted(journal_ids(cloud)) == sorted(r.journal_id for r in results.values())
    assert state_keys(cloud, "open/") == []  # every intent was filed with its outcome
    # ... and localcloud now holds the desired state
    for bucket in expected:
        state = bucket_state(cloud, bucket)
        assert sorted(state["https_config"]["TLS"]["TLSVersion"]) == ["TLSv1.2", "TLSv1.3"]
        assert state["encryption"]["SSEAlgorithm"] == "AES256"
        assert json.loads(state["policy"])["Statement"][-1] == https_only_policy(bucket)["Statement"][0] or \
            bucket != "drift-policy"
    # ... the writes were made by tlsguard's key, not the outsider's
    writers = {e["userIdentity"]["accessKeyId"] for e in write_events(cloud, since)
               if e["eventName"].startswith("PutBucket")}
    assert writers == {cloud.endpoints["access_key_id"]}
    # AND a second run finds nothing to do and writes nothing (the TLS writes still await their live proof)
    since_again = len(cloud.trail.events())
    second = by_name(sweep_buckets(lifecycle))
    assert {b: r.outcome for b, r in second.items()} == {
        "drift-tls": Outcome.PENDING, "drift-cipher": Outcome.PENDING,
        "drift-policy": Outcome.COMPLIANT, "drift-sse": Outcome.COMPLIANT}
    assert all(not r.actions and not r.active_findings for r in second.values())
    assert cloud.trail.events(since_again) == []


def test_whole_https_document_is_put(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    # The part of the https document a policy does not manage must survive the PUT of the part it does.
    fleet(compliant_bucket("keep-ciphers", https_config={"tls": {"enable": True, "versions": ["TLSv1.3"]},
                                                         "cipher_suite": {"enable": True, "strong": True}}),
          compliant_bucket("keep-versions", https_config={"tls": {"enable": True, "versions": ["TLSv1.3", "TLSv1.2"]},
                                                          "cipher_suite": {"enable": False}}))
    versions_only = write_policy(tmp_path, """
        version: 1
        defaults: {tls_versions: [TLSv1.2, TLSv1.3]}
        rules:
          - name: ciphers-only
            match: {names: [keep-versions]}
            cipher_suites: {mode: strong}
        state: {bucket: tlsguard-state}
        """)
    policy = write_policy(tmp_path, """
        version: 1
        defaults: {cipher_suites: {mode: strong}}
        state: {bucket: tlsguard-state}
        """, name="ciphers.yaml")
    first = lifecycle_for(cloud, versions_only).run(bucket_target("keep-ciphers"))
    second = lifecycle_for(cloud, policy).run(bucket_target("keep-versions"))
    assert (first.outcome, second.outcome) == (Outcome.REMEDIATED, Outcome.REMEDIATED), (first, second)
    kept_cipher = bucket_state(cloud, "keep-ciphers")["https_config"]
    assert sorted(kept_cipher["TLS"]["TLSVersion"]) == ["TLSv1.2", "TLSv1.3"]
    assert kept_cipher["CipherSuite"]["Enable"] is True and kept_cipher["CipherSuite"]["StrongCipherSuite"] is True
    kept_versions = bucket_state(cloud, "keep-versions")["https_config"]
    assert kept_versions["TLS"] == {"Enable": True, "TLSVersion": ["TLSv1.3", "TLSv1.2"]}
    assert kept_versions["CipherSuite"]["StrongCipherSuite"] is True


def test_equivalent_configurations_are_not_drift(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    def deny(bucket: str, value: object, principal: object = "*") -> dict[str, Any]:
        return {"Version": "1", "Statement": [{
            "Effect": "Deny", "Principal": principal, "Action": "oss:*",
            "Resource": [f"acs:oss:*:*:{bucket}", f"acs:oss:*:*:{bucket}/*"],
            "Condition": {"Bool": {"acs:SecureTransport": value}}}]}

    fleet(
        compliant_bucket("eq-order", https_config={"tls": {"enable": True, "versions": ["TLSv1.3", "TLSv1.2"]},
                                                   "cipher_suite": {"enable": True, "strong": True}},
                         policy=deny("eq-order", "false")),
        compliant_bucket("eq-bool", policy=deny("eq-bool", False)),
        compliant_bucket("eq-list", policy=deny("eq-list", ["false"], principal=["*"])),
        # TLS management off = TLS 1.0/1.1/1.2, cipher element absent = all suites
        {"name": "eq-defaults", "https_config": {"tls": {"enable": False}}},
    )
    policy = write_policy(tmp_path, """
        version: 1
        defaults:
          tls_versions: [TLSv1.2, TLSv1.3]
          cipher_suites: {mode: strong}
          https_only: true
          encryption: {algorithm: AES256}
        rules:
          - name: defaults-are-fine
            match: {names: [eq-defaults]}
            tls_versions: [TLSv1.0, TLSv1.1, TLSv1.2]
            cipher_suites: {mode: all}
            https_only: false
            encryption: {algorithm: AES256}
            allow_insecure: {reason: "equivalence fixture"}
        state: {bucket: tlsguard-state}
        """)
    cloud.seed({"buckets": []})
    outsider(cloud).put_encryption(ref("eq-defaults"), EncryptionPolicy(EncryptionAlgorithm.AES256))
    since = len(cloud.trail.events())
    results = by_name(sweep_buckets(lifecycle_for(cloud, policy)))
    assert {b: r.outcome for b, r in results.items()} == dict.fromkeys(
        ("eq-order", "eq-bool", "eq-list", "eq-defaults"), Outcome.COMPLIANT)
    assert all(not r.findings for r in results.values())
    assert cloud.trail.events(since) == []


def test_policy_merge_keeps_foreign_statements(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    foreign = {"Version": "1", "Statement": [
        {"Effect": "Allow", "Principal": ["1500000000000002"], "Action": ["oss:GetObject", "oss:ListObjects"],
         "Resource": ["acs:oss:*:*:merge-me/*"], "Condition": {"StringLike": {"acs:Referer": ["https://a.example/*"]}}},
        {"Effect": "Deny", "Principal": ["*"], "Action": ["oss:DeleteBucket"], "Resource": ["acs:oss:*:*:merge-me"]},
        # near miss: only objects, so it is NOT the HTTPS-only statement and must stay exactly as it is
        {"Effect": "Deny", "Principal": ["*"], "Action": ["oss:PutObject"], "Resource": ["acs:oss:*:*:merge-me/*"],
         "Condition": {"Bool": {"acs:SecureTransport": "false"}}},
    ]}
    fleet(compliant_bucket("merge-me", policy=foreign))
    (result,) = sweep_buckets(lifecycle_for(cloud, write_policy(tmp_path)))
    assert result.outcome is Outcome.REMEDIATED, result.reason
    after = json.loads(bucket_state(cloud, "merge-me")["policy"])
    assert after["Version"] == "1"
    assert after["Statement"][:3] == foreign["Statement"]
    assert after["Statement"][3] == https_only_policy("merge-me")["Statement"][0]
    assert len(after["Statement"]) == 4


def test_undo_restores_the_recorded_before_state(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    before_policy = {"Version": "1", "Statement": [
        {"Effect": "Allow", "Principal": ["1500000000000002"], "Action": ["oss:GetObject"],
         "Resource": ["acs:oss:*:*:undo-me/*"]}]}
    fleet({"name": "undo-me", "https_config": {"tls": {"enable": True, "versions": ["TLSv1.1", "TLSv1.2"]}},
           "policy": before_policy, "encryption": {"algorithm": "SM4"}})
    before = bucket_state(cloud, "undo-me")
    lifecycle = lifecycle_for(cloud, write_policy(tmp_path))
    (result,) = sweep_buckets(lifecycle)
    assert result.outcome is Outcome.REMEDIATED
    assert [a.call for a in result.actions] == ["PutBucketHttpsConfig", "PutBucketEncryption", "PutBucketPolicy"]
    assert bucket_state(cloud, "undo-me")["encryption"]["SSEAlgorithm"] == "AES256"
    since = len(cloud.trail.events())
    undone = lifecycle.undo(result.journal_id)
    assert undone.outcome is Outcome.REMEDIATED, undone.reason
    assert undone.error_code == "" and result.journal_id in undone.reason
    # restored in reverse order of the remediation
    assert [e["eventName"] for e in write_events(cloud, since, "undo-me")] == [
        "PutBucketPolicy", "PutBucketEncryption", "PutBucketHttpsConfig"]
    after = bucket_state(cloud, "undo-me")
    assert after["https_config"]["TLS"] == before["https_config"]["TLS"]
    assert after["encryption"] == before["encryption"]
    assert json.loads(after["policy"]) == before_policy
    # The undo is journaled too (as an undo of the first entry), in the state bucket
    assert sorted(journal_ids(cloud)) == sorted([result.journal_id, undone.journal_id])
    entry = lifecycle.ctx.state.journal.read(undone.journal_id)  # type: ignore[union-attr]
    assert entry is not None and entry.status == "applied"
    assert entry.intent["kind"] == "undo" and entry.intent["undo_of"] == result.journal_id
    missing = lifecycle.undo("oss-bucket/undo-me/20260101T000000000000Z-deadbeef")
    assert missing.outcome is Outcome.FAILED and "not found" in missing.reason
    assert missing.error_code == "NoSuchJournal"


def test_undo_never_deletes_encryption(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    fleet(compliant_bucket("no-sse", encryption=None))
    lifecycle = lifecycle_for(cloud, write_policy(tmp_path))
    (result,) = sweep_buckets(lifecycle)
    assert result.outcome is Outcome.REMEDIATED
    since = len(cloud.trail.events())
    undone = lifecycle.undo(result.journal_id)
    assert undone.outcome is Outcome.REFUSED and "never deletes encryption" in undone.reason
    assert bucket_state(cloud, "no-sse")["encryption"]["SSEAlgorithm"] == "AES256"
    assert cloud.trail.events(since) == []


def test_plan_and_dry_run_write_nothing(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    fleet({"name": "drifty", "https_config": {"tls": {"enable": False}}})
    since = len(cloud.trail.events())
    before = cloud.oss.snapshot()
    (planned,) = sweep_buckets(lifecycle_for(cloud, write_policy(tmp_path), apply=False))
    assert planned.outcome is Outcome.DRIFTED and "nothing written" in planned.reason
    assert len(planned.findings) == 4
    assert [a.call for a in planned.actions] == ["PutBucketHttpsConfig", "PutBucketEncryption", "PutBucketPolicy"]
    assert not planned.applied and not planned.journal_id
    dry = lifecycle_for(cloud, write_policy(tmp_path, BASE_DRY))
    (dry_result,) = sweep_buckets(dry)
    assert dry_result.outcome is Outcome.DRIFTED and "dry-run" in dry_result.reason
    assert cloud.trail.events(since) == []
    assert state_keys(cloud) == []
    assert cloud.oss.snapshot() == before


BASE_DRY = """
version: 1
mode: dry-run
defaults:
  tls_versions: [TLSv1.2, TLSv1.3]
  https_only: true
state: {bucket: tlsguard-state}
"""


def test_waived_and_expired_waivers(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    fleet({"name": "waived-one", "https_config": COMPLIANT_HTTPS | {"cipher_suite": {"enable": False}},
           "policy": https_only_policy("waived-one"), "encryption": {"algorithm": "AES256"}},
          {"name": "expired-one", "https_config": COMPLIANT_HTTPS | {"cipher_suite": {"enable": False}},
           "policy": https_only_policy("expired-one"), "encryption": {"algorithm": "AES256"}})
    policy = write_policy(tmp_path, """
        version: 1
        defaults:
          tls_versions: [TLSv1.2, TLSv1.3]
          cipher_suites: {mode: strong}
          https_only: true
          encryption: {algorithm: AES256}
        waivers:
          - {bucket: waived-one, reason: "vendor migration", expires: "2099-12-31", checks: [oss_cipher_suites]}
          - {bucket: expired-one, reason: "old exception", expires: "2020-01-01"}
        state: {bucket: tlsguard-state}
        """)
    results = by_name(sweep_buckets(lifecycle_for(cloud, policy)))
    waived = results["waived-one"]
    assert waived.outcome is Outcome.COMPLIANT and "vendor migration" in waived.reason
    assert waived.findings[0].waived == "vendor migration"
    expired = results["expired-one"]
    assert expired.outcome is Outcome.REMEDIATED
    assert expired.expired_waivers == ("all checks: old exception (expired 2020-01-01)",)
    assert [a.checks for a in expired.actions] == [("oss.cipher_suites",)]


def test_alert_mode_reports_without_writing(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    fleet({"name": "alert-me", "https_config": {"tls": {"enable": False}}})
    since = len(cloud.trail.events())
    lifecycle = lifecycle_for(cloud, write_policy(tmp_path), mode=Mode.ALERT)
    (result,) = sweep_buckets(lifecycle)
    assert result.outcome is Outcome.DRIFTED and "alert mode" in result.reason
    assert result.mode is Mode.ALERT and result.actions and not result.applied  # what enforce would write
    assert cloud.trail.events(since) == []
    assert state_keys(cloud) == []
    planned = lifecycle_for(cloud, write_policy(tmp_path), apply=False).run(bucket_target("alert-me"),
                                                                            trigger=Trigger())
    assert planned.outcome is Outcome.DRIFTED


def test_compare_before_write_keeps_a_statement_added_after_the_plan(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    fleet(compliant_bucket("racy", policy={"Version": "1", "Statement": [
        {"Effect": "Allow", "Principal": ["1500000000000002"], "Action": ["oss:GetObject"],
         "Resource": ["acs:oss:*:*:racy/*"]}]}))
    lifecycle = lifecycle_for(cloud, write_policy(tmp_path))
    oss = lifecycle.ctx.ports.oss
    read_policy = oss.get_policy
    added = {"Effect": "Allow", "Principal": ["1500000000000002"], "Action": ["oss:ListObjects"],
             "Resource": ["acs:oss:*:*:racy"]}
    reads: list[str | None] = []

    def judged_then_changed(bucket: Any) -> str | None:
        text = read_policy(bucket)
        reads.append(text)
        if len(reads) == 1:  # someone adds a statement between tlsguard's judging read and its write
            current = json.loads(bucket_state(cloud, "racy")["policy"])
            outsider(cloud).put_policy(ref("racy"), json.dumps({**current, "Statement": [*current["Statement"],
                                                                                        added]}))
        return text

    oss.get_policy = judged_then_changed  # type: ignore[method-assign]
    result = lifecycle.run(bucket_target("racy"))
    assert result.outcome is Outcome.REMEDIATED, result.reason
    assert len(reads) >= 2  # judged, then re-read before the write
    statements = json.loads(bucket_state(cloud, "racy")["policy"])["Statement"]
    assert statements[1] == added and statements[2] == https_only_policy("racy")["Statement"][0]
    (action,) = result.actions
    assert json.loads(action.before)["Statement"][1] == added  # the journal records what was really there
    entry = lifecycle.ctx.state.journal.read(result.journal_id)  # type: ignore[union-attr]
    assert entry is not None and json.loads(entry.actions[0].before)["Statement"][1] == added
    assert json.loads(entry.actions[0].params["Policy"])["Statement"] == statements


def test_writes_are_ordered_https_first_and_the_https_only_deny_last(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    fleet({"name": "all-drift", "https_config": {"tls": {"enable": False}}})
    since = len(cloud.trail.events())
    (result,) = sweep_buckets(lifecycle_for(cloud, write_policy(tmp_path)))
    assert result.outcome is Outcome.REMEDIATED, result.reason
    # one write for TLS versions and cipher suites together (the whole https document), the Deny last
    assert [e["eventName"] for e in write_events(cloud, since, "all-drift")] == [
        "PutBucketHttpsConfig", "PutBucketEncryption", "PutBucketPolicy"]
    assert result.actions[0].checks == ("oss.tls_versions", "oss.cipher_suites")
