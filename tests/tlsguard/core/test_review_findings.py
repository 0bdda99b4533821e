"""Regressions found in review: undo on a changed policy, scoped HTTPS-only statements, own-role matching,
lost-response retries of conditional writes, and malformed ActionTrail identities."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tlsguard.errors import Transient
from tlsguard.functions.events import trigger_from_trail
from tlsguard.model import Outcome, TargetRef
from tlsguard.policy.bucket_policy import https_only_statement, is_https_only_statement
from tlsguard.retry import RetryPolicy, call_with_retries
from tlsguard.state import EventLeases, Journal, LeaseState, StateBucket, new_journal_id

from tests.tlsguard.core._support import (
    COMPLIANT_HTTPS,
    bucket_state,
    https_only_policy,
    lifecycle_for,
    outsider,
    ref,
    sweep_buckets,
    write_policy,
)

OWN = ["tlsguard-fc-role"]


@pytest.mark.unit
@pytest.mark.parametrize("resources", [
    ["acs:oss:*:1500000000000001:b1", "acs:oss:*:1500000000000001:b1/*"],
    ["acs:oss:cn-hangzhou:*:b1", "acs:oss:cn-hangzhou:*:b1/*"],
    ["acs:oss:*:*:*"],
    "acs:oss:*:*:b1*",
])
def test_region_or_account_scoped_https_deny_is_recognised(resources: Any) -> None:
    assert is_https_only_statement(dict(https_only_statement("b1"), Resource=resources), "b1")


@pytest.mark.unit
@pytest.mark.parametrize("resources", [
    ["acs:oss:*:*:b1"],  # the objects are not covered
    ["acs:oss:*:*:other", "acs:oss:*:*:other/*"],
    ["acs:ecs:*:*:b1", "acs:ecs:*:*:b1/*"],
])
def test_a_deny_that_misses_the_bucket_or_its_objects_is_not_recognised(resources: Any) -> None:
    assert not is_https_only_statement(dict(https_only_statement("b1"), Resource=resources), "b1")


@pytest.mark.unit
def test_only_the_exact_own_role_counts_as_own() -> None:
    lookalike = {"type": "assumed-role", "userName": "tlsguard-fc-role-dev:alice", "principalId": "399999:alice",
                 "arn": "acs:ram::1500000000000002:assumed-role/tlsguard-fc-role-dev/alice"}
    assert trigger_from_trail({"userIdentity": lookalike}, OWN).own is False
    ours = {"type": "assumed-role", "principalId": "300000:fc",
            "arn": "acs:ram::1500000000000001:assumed-role/tlsguard-fc-role/fc"}
    assert trigger_from_trail({"userIdentity": ours}, OWN).own is True
    by_name = {"type": "assumed-role", "userName": "tlsguard-fc-role:tlsguard-on-change"}
    assert trigger_from_trail({"userIdentity": by_name}, OWN).own is True


@pytest.mark.unit
@pytest.mark.parametrize("identity", ["ops-alice", None, 7, {"type": "assumed-role", "userName": None}])
def test_malformed_identity_gives_a_plain_trigger_instead_of_raising(identity: Any) -> None:
    trigger = trigger_from_trail({"eventId": "e-1", "eventName": "PutBucketHttpsConfig", "userIdentity": identity},
                                 OWN)
    assert trigger.own is False and trigger.event_id == "e-1" and "None" not in trigger.actor


class _LossyOss:
    """A state bucket whose first PutObject commits but loses its response (the adapter then retries)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.lose_next = True

    def put_object_if_absent(self, bucket: str, key: str, body: bytes) -> bool:
        def attempt() -> bool:
            if key in self.objects:
                return False  # 409 FileAlreadyExists
            self.objects[key] = body
            if self.lose_next:
                self.lose_next = False
                raise Transient("read timeout", service="oss", operation="PutObject", code="ReadTimeout")
            return True

        return call_with_retries(RetryPolicy(initial_seconds=0.001, max_seconds=0.002, jitter_seconds=0.0), attempt)

    def get_object(self, bucket: str, key: str) -> bytes | None:
        return self.objects.get(key)


@pytest.mark.unit
def test_a_claim_whose_response_was_lost_is_still_ours_and_a_second_delivery_is_not() -> None:
    leases = EventLeases(StateBucket(_LossyOss(), "state"), ttl_seconds=20.0)  # type: ignore[arg-type]
    first = leases.acquire("evt-1", now=1000.0, details={"bucket": "b"})
    assert first.state is LeaseState.ACQUIRED and first.lease is not None and not first.lease.taken_over
    second = leases.acquire("evt-1", now=1001.0, details={"bucket": "b"})
    assert second.state is LeaseState.BUSY and second.lease is None  # a live claimant holds it: not ours
    leases.complete(first.lease)
    assert leases.acquire("evt-1", now=1002.0).state is LeaseState.DUPLICATE


@pytest.mark.unit
def test_a_journal_write_whose_response_was_lost_succeeds() -> None:
    journal = Journal(StateBucket(_LossyOss(), "state"))  # type: ignore[arg-type]
    target = TargetRef.bucket_target("b1", "cn-hangzhou")
    journal_id = new_journal_id(target, 1_795_000_000.0)
    journal.write_intent(journal.intent_document(journal_id, target, [], now=1_795_000_000.0, trigger={},
                                                 reason="test", mode="enforce"))
    entry = journal.read(journal_id)
    assert entry is not None and entry.status == "incomplete" and entry.target == target


def test_undo_keeps_a_statement_added_after_the_remediation(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    # GIVEN a bucket without a policy, remediated by tlsguard (HTTPS-only Deny added)
    bucket = "undo-foreign"
    fleet({"name": bucket, "https_config": COMPLIANT_HTTPS, "encryption": {"algorithm": "AES256"}})
    lifecycle = lifecycle_for(cloud, write_policy(tmp_path))
    (result,) = sweep_buckets(lifecycle)
    assert result.outcome is Outcome.REMEDIATED
    assert [a.call for a in result.actions] == ["PutBucketPolicy"]
    # AND somebody then adds their own statement
    document = json.loads(bucket_state(cloud, bucket)["policy"])
    foreign = {"Effect": "Allow", "Principal": ["1500000000000002"], "Action": ["oss:GetObject"],
               "Resource": [f"acs:oss:*:*:{bucket}/*"]}
    document["Statement"].append(foreign)
    outsider(cloud).put_policy(ref(bucket), json.dumps(document))
    # WHEN the remediation is undone
    undone = lifecycle.undo(result.journal_id)
    # THEN only tlsguard's statement is gone: the foreign one stays
    assert undone.outcome is Outcome.REMEDIATED, undone.reason
    statements = json.loads(bucket_state(cloud, bucket)["policy"])["Statement"]
    assert statements == [foreign]


def test_undo_refuses_when_the_https_config_changed_since(cloud: Any, fleet: Any, tmp_path: Path) -> None:
    from tlsguard.policy.model import RawHttpsConfig

    bucket = "undo-newer"
    fleet({"name": bucket, "https_config": {"tls": {"enable": True, "versions": ["TLSv1.0", "TLSv1.2"]}},
           "policy": https_only_policy(bucket), "encryption": {"algorithm": "AES256"}})
    lifecycle = lifecycle_for(cloud, write_policy(tmp_path))
    (result,) = sweep_buckets(lifecycle)
    assert result.outcome is Outcome.REMEDIATED
    assert [a.call for a in result.actions] == ["PutBucketHttpsConfig"]
    newer = RawHttpsConfig(tls_enabled=True, cipher_present=False, cipher_enabled=False, strong=False,
                           tls_versions=("TLSv1.3",))
    outsider(cloud).put_https_config(ref(bucket), newer)
    since = len(cloud.trail.events())
    undone = lifecycle.undo(result.journal_id)
    assert undone.outcome is Outcome.REFUSED and "changed after tlsguard wrote it" in undone.reason
    assert cloud.trail.events(since) == []
    assert bucket_state(cloud, bucket)["https_config"]["TLS"]["TLSVersion"] == ["TLSv1.3"]


@pytest.mark.unit
def test_literal_resources_are_decided_without_compiling_a_regex_per_bucket() -> None:
    """A fleet sweep must not compile one fnmatch regex per bucket name (CPU and RAM that grow with the fleet)."""
    import fnmatch

    compile_pattern: Any = fnmatch._compile_pattern  # type: ignore[attr-defined]
    before = compile_pattern.cache_info().misses
    for index in range(50):
        assert is_https_only_statement(https_only_statement(f"fleet-{index:05d}"), f"fleet-{index:05d}")
    assert compile_pattern.cache_info().misses == before


@pytest.mark.unit
@pytest.mark.parametrize("pattern", ["acs:oss:*:*:b?*", "acs:oss:*:*:[ab]1*", "acs:oss:*:*:?1*"])
def test_question_mark_and_bracket_globs_still_match(pattern: str) -> None:
    assert is_https_only_statement(dict(https_only_statement("b1"), Resource=[pattern]), "b1")
