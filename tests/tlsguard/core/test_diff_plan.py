"""Pure core: normalisation, the OSS checks (``tlsguard.checks.evaluate``), their planners, and the HTTPS-only
policy merge. No I/O: the facets a run would read are given as :class:`tlsguard.facets.Actual`."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from tlsguard.checks import REGISTRY, evaluate
from tlsguard.checks.oss import (
    CIPHER_SUITES,
    DEFAULT_ENCRYPTION,
    HTTPS_ONLY,
    TLS_VERSIONS,
    normalise_https,
    plan_bucket_policy,
    plan_encryption,
    plan_https_config,
)
from tlsguard.facets import Actual
from tlsguard.model import Action, Mode, Severity, TargetRef
from tlsguard.policy.bucket_policy import has_https_only, is_https_only_statement, merge_https_only
from tlsguard.policy.model import (
    DEFAULT_OSS_VERSIONS,
    CipherMode,
    CipherPolicy,
    Desired,
    EncryptionAlgorithm,
    EncryptionPolicy,
    Posture,
    RawHttpsConfig,
    TlsVersion,
)

pytestmark = pytest.mark.unit
MODERN = frozenset({TlsVersion.TLS12, TlsVersion.TLS13})
TARGET = TargetRef.bucket_target("b1", "cn-hangzhou", "1500000000000001")
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)


def desired(*, waived: tuple[tuple[str, str], ...] = (), **posture: object) -> Desired:
    return Desired(TARGET, Mode.ENFORCE, Posture(**posture), waived=waived)  # type: ignore[arg-type]


def actual(https: RawHttpsConfig | None = None, policy: str | None = None,
           encryption: EncryptionPolicy | None = None) -> Actual:
    return Actual(TARGET, {"https_config": https or RawHttpsConfig(), "bucket_policy": policy,
                           "encryption": encryption})


def diff(want: Desired, have: Actual) -> list[str]:
    """The ids of the checks that find drift."""
    return [f.check for f in evaluate(want, have, NOW)]


def test_tls_disabled_means_the_documented_default_set() -> None:
    assert normalise_https(RawHttpsConfig(tls_enabled=False)).versions == DEFAULT_OSS_VERSIONS
    explicit = RawHttpsConfig(True, ("TLSv1.2", "TLSv1.1", "TLSv1.0"))
    assert diff(desired(tls_versions=DEFAULT_OSS_VERSIONS), actual(explicit)) == []
    assert diff(desired(tls_versions=DEFAULT_OSS_VERSIONS), actual(RawHttpsConfig(False, ("TLSv1.3",)))) == []


def test_version_order_does_not_matter() -> None:
    assert diff(desired(tls_versions=MODERN), actual(RawHttpsConfig(True, ("TLSv1.3", "TLSv1.2")))) == []


@pytest.mark.parametrize("raw", [
    RawHttpsConfig(True, ("TLSv1.2",)),
    RawHttpsConfig(True, ("TLSv1.2",), cipher_present=True, cipher_enabled=False),
    RawHttpsConfig(True, ("TLSv1.2",), cipher_present=True, cipher_enabled=False, strong=True),
])
def test_cipher_absent_or_disabled_is_all(raw: RawHttpsConfig) -> None:
    assert normalise_https(raw).cipher == CipherPolicy(CipherMode.ALL)
    assert diff(desired(cipher=CipherPolicy(CipherMode.ALL)), actual(raw)) == []


def test_custom_suites_compare_as_sets() -> None:
    raw = RawHttpsConfig(True, ("TLSv1.2",), True, True, False, ("B", "A"), ("T2", "T1"))
    want = CipherPolicy(CipherMode.CUSTOM, ("A", "B"), ("T1", "T2"))
    assert diff(desired(cipher=want), actual(raw)) == []
    other = CipherPolicy(CipherMode.CUSTOM, ("A",), ("T1", "T2"))
    assert diff(desired(cipher=other), actual(raw)) == [CIPHER_SUITES]


def test_each_drift_kind_is_a_typed_finding() -> None:
    want = desired(tls_versions=MODERN, cipher=CipherPolicy(CipherMode.STRONG), https_only=True,
                   encryption=EncryptionPolicy(EncryptionAlgorithm.AES256))
    findings = evaluate(want, actual(RawHttpsConfig(False), None, None), NOW)
    assert [f.check for f in findings] == [TLS_VERSIONS, CIPHER_SUITES, HTTPS_ONLY, DEFAULT_ENCRYPTION]
    tls = findings[0]
    assert (tls.target, tls.target.region, tls.desired, tls.actual, tls.severity) == (
        TARGET, "cn-hangzhou", "TLSv1.2,TLSv1.3", "TLSv1.0,TLSv1.1,TLSv1.2", Severity.HIGH)
    assert [f.severity for f in findings] == [Severity.HIGH, Severity.MEDIUM, Severity.HIGH, Severity.HIGH]
    assert all(not f.waived for f in findings)


def test_only_legacy_versions_make_tls_drift_high() -> None:
    (finding,) = evaluate(desired(tls_versions=MODERN), actual(RawHttpsConfig(True, ("TLSv1.3",))), NOW)
    assert finding.check == TLS_VERSIONS and finding.severity is Severity.MEDIUM


def test_kms_without_key_id_accepts_any_key_but_a_named_key_must_match() -> None:
    have = EncryptionPolicy(EncryptionAlgorithm.KMS, "key-abc123456789abcd")
    assert diff(desired(encryption=EncryptionPolicy(EncryptionAlgorithm.KMS)), actual(encryption=have)) == []
    named = EncryptionPolicy(EncryptionAlgorithm.KMS, "key-zzz123456789abcd")
    assert diff(desired(encryption=named), actual(encryption=have)) == [DEFAULT_ENCRYPTION]


def test_plan_puts_the_whole_https_document_keeping_unmanaged_parts() -> None:
    raw = RawHttpsConfig(True, ("TLSv1.0", "TLSv1.2"), True, True, False, ("ECDHE-RSA-AES128-GCM-SHA256",), ())
    want = desired(tls_versions=MODERN)  # ciphers not managed: the custom list must survive the PUT
    have = actual(raw)
    assert diff(want, have) == [TLS_VERSIONS]
    action = plan_https_config(want, have, frozenset({TLS_VERSIONS}), NOW)
    assert isinstance(action, Action)
    expected = RawHttpsConfig(True, ("TLSv1.2", "TLSv1.3"), True, True, False, ("ECDHE-RSA-AES128-GCM-SHA256",), ())
    assert (action.facet, action.call, action.checks) == ("https_config", "PutBucketHttpsConfig", (TLS_VERSIONS,))
    assert action.before == raw.to_dict() and action.after == expected.to_dict()
    assert action.params == {"Bucket": "b1", "HttpsConfiguration": expected.to_dict()}  # the whole document


def test_tls_and_cipher_drift_make_one_https_write() -> None:
    want = desired(tls_versions=MODERN, cipher=CipherPolicy(CipherMode.STRONG))
    have = actual(RawHttpsConfig(False))
    drifted = frozenset(diff(want, have))
    assert drifted == {TLS_VERSIONS, CIPHER_SUITES}
    assert {REGISTRY.get(c).fix_facet(TARGET.kind) for c in drifted} == {"https_config"}
    action = plan_https_config(want, have, drifted, NOW)
    assert action is not None and action.checks == (TLS_VERSIONS, CIPHER_SUITES)
    assert action.after == RawHttpsConfig(True, ("TLSv1.2", "TLSv1.3"), True, True, True).to_dict()


def test_a_planner_answers_none_when_the_document_already_matches() -> None:
    compliant = RawHttpsConfig(True, ("TLSv1.3", "TLSv1.2"), True, True, True)
    assert plan_https_config(desired(tls_versions=MODERN), actual(compliant), frozenset({TLS_VERSIONS}), NOW) is None
    policy = json.dumps({"Version": "1", "Statement": [statement(["false"])]})
    assert plan_bucket_policy(desired(https_only=True), actual(policy=policy), frozenset({HTTPS_ONLY}), NOW) is None


def test_policy_and_encryption_plans_name_the_exact_documents() -> None:
    want = desired(https_only=True, encryption=EncryptionPolicy(EncryptionAlgorithm.KMS, "key-abc123456789abcd"))
    have = actual(policy=None, encryption=EncryptionPolicy(EncryptionAlgorithm.SM4))
    policy = plan_bucket_policy(want, have, frozenset({HTTPS_ONLY}), NOW)
    assert policy is not None and policy.call == "PutBucketPolicy" and policy.before is None
    assert json.loads(policy.params["Policy"]) == {"Version": "1", "Statement": [statement(["false"])]}
    assert policy.after == policy.params["Policy"]
    encryption = plan_encryption(want, have, frozenset({DEFAULT_ENCRYPTION}), NOW)
    rule = {"algorithm": "KMS", "kms_key_id": "key-abc123456789abcd", "kms_data_encryption": ""}
    assert encryption is not None and encryption.call == "PutBucketEncryption"
    assert encryption.params == {"Bucket": "b1", "ServerSideEncryptionRule": rule}
    assert (encryption.before, encryption.after) == ({"algorithm": "SM4", "kms_key_id": "",
                                                      "kms_data_encryption": ""}, rule)


def test_waived_findings_are_marked_and_leave_only_the_others_to_fix() -> None:
    want = desired(tls_versions=MODERN, https_only=True, encryption=EncryptionPolicy(EncryptionAlgorithm.SM4),
                   waived=((TLS_VERSIONS, "vendor"),))
    have = actual(RawHttpsConfig(False), None, None)
    findings = evaluate(want, have, NOW)
    assert [(f.check, f.waived) for f in findings] == [(TLS_VERSIONS, "vendor"), (HTTPS_ONLY, ""),
                                                        (DEFAULT_ENCRYPTION, "")]
    to_fix = {REGISTRY.get(f.check).fix_facet(TARGET.kind) for f in findings if not f.waived}
    assert to_fix == {"bucket_policy", "encryption"}  # the https config is not written


def test_old_check_ids_are_aliases() -> None:
    assert REGISTRY.canonical("oss_tls_versions") == TLS_VERSIONS
    assert REGISTRY.canonical("oss_default_encryption") == DEFAULT_ENCRYPTION
    with pytest.raises(KeyError):
        REGISTRY.canonical("oss_no_such_check")


# -- HTTPS-only statement ---------------------------------------------------------------------------------
def statement(value: object, **overrides: object) -> dict[str, object]:
    base: dict[str, object] = {"Effect": "Deny", "Principal": ["*"], "Action": ["oss:*"],
                               "Resource": ["acs:oss:*:*:b1", "acs:oss:*:*:b1/*"],
                               "Condition": {"Bool": {"acs:SecureTransport": value}}}
    base.update(overrides)
    return base


@pytest.mark.parametrize("value", ["false", False, ["false"], [False], "FALSE"])
def test_equivalent_https_only_statements_are_recognised(value: object) -> None:
    assert is_https_only_statement(statement(value), "b1")
    text = json.dumps({"Version": "1", "Statement": [statement(value)]})
    assert has_https_only(text, "b1") and merge_https_only(text, "b1") is None


@pytest.mark.parametrize("overrides", [
    {"Effect": "Allow"},
    {"Principal": ["1500000000000002"]},
    {"Action": ["oss:GetObject"]},
    {"Resource": ["acs:oss:*:*:b1/*"]},
    {"Resource": ["acs:oss:*:*:other", "acs:oss:*:*:other/*"]},
    {"Condition": {"Bool": {"acs:SecureTransport": ["true"]}}},
    {"Condition": {"Bool": {"acs:SecureTransport": "false"}, "IpAddress": {"acs:SourceIp": ["10.0.0.0/8"]}}},
])
def test_near_misses_are_not_https_only(overrides: dict[str, object]) -> None:
    assert not is_https_only_statement(statement("false", **overrides), "b1")


def test_principal_forms_and_wildcard_resources_count() -> None:
    assert is_https_only_statement(statement("false", Principal="*", Resource="acs:oss:*:*:b1*"), "b1")
    assert is_https_only_statement(statement("false", Principal=[], Action="oss:*"), "b1")


def test_merge_keeps_foreign_statements_in_order_and_appends_once() -> None:
    foreign = [
        {"Effect": "Allow", "Principal": ["20214760404935xxxx"], "Action": ["oss:GetObject", "oss:ListObjects"],
         "Resource": ["acs:oss:*:*:b1/*"], "Condition": {"StringEquals": {"acs:UserAgent": ["java-sdk"]}}},
        {"Effect": "Deny", "Principal": ["*"], "Action": ["oss:DeleteBucket"], "Resource": ["acs:oss:*:*:b1"]},
    ]
    original = json.dumps({"Version": "1", "Statement": foreign, "Id": "kept"})
    merged = merge_https_only(original, "b1")
    assert merged is not None
    document = json.loads(merged)
    assert list(document) == ["Version", "Statement", "Id"]
    assert document["Statement"][:2] == foreign
    assert document["Statement"][2] == statement(["false"])
    assert merge_https_only(merged, "b1") is None


def test_merge_into_no_policy_creates_one() -> None:
    merged = merge_https_only(None, "b1")
    assert merged is not None and json.loads(merged) == {"Version": "1", "Statement": [statement(["false"])]}
