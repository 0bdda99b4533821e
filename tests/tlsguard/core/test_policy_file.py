"""Policy file loading: schema, guardrails, waivers and error messages that name file, line and field."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest
from tlsguard.checks.oss import CIPHER_SUITES, HTTPS_ONLY, TLS_VERSIONS
from tlsguard.errors import ConfigError
from tlsguard.model import Mode, TargetRef
from tlsguard.policy.loader import SCHEMA_PATH, load_policy, parse_policy, resolve
from tlsguard.policy.model import CipherMode, EncryptionAlgorithm, TlsVersion

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]

HEADER = """\
version: 1
defaults:
  tls_versions: [TLSv1.2, TLSv1.3]
  cipher_suites: {mode: strong}
  https_only: true
"""


def bucket(name: str, region: str = "cn-hangzhou") -> TargetRef:
    return TargetRef.bucket_target(name, region)


def parse(text: str) -> object:
    return parse_policy(textwrap.dedent(text), "tlsguard.yaml")


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return info.value


def test_example_policy_loads_and_resolves() -> None:
    policy = load_policy(ROOT / "examples" / "tlsguard.yaml")
    assert policy.state_bucket == "tlsguard-state"
    today = dt.date(2026, 11, 23)
    images = resolve(policy, bucket("acme-prod-images", "cn-hangzhou"), {"team": "media"}, today)
    assert images.refusal == "" and images.rules == ("media-custom-suites",)
    assert images.posture.encryption is not None
    assert images.posture.encryption.algorithm is EncryptionAlgorithm.KMS
    assert images.posture.cipher is not None and images.posture.cipher.mode is CipherMode.CUSTOM
    assert images.posture.tls_versions == frozenset({TlsVersion.TLS12, TlsVersion.TLS13})
    backups = resolve(policy, bucket("acme-prod-backups", "cn-shanghai"), {"env": "prod"}, today)
    assert backups.waiver_for(HTTPS_ONLY) and backups.posture.encryption is not None
    legacy = resolve(policy, bucket("iot-firmware", "cn-shanghai"), {}, today)
    assert legacy.refusal == "" and legacy.mode is Mode.ALERT
    not_legacy = resolve(policy, bucket("iot-firmware", "cn-beijing"), {}, today)
    assert not_legacy.mode is Mode.ENFORCE and not_legacy.rules == ()


def test_packaged_schema_is_the_published_one() -> None:
    assert SCHEMA_PATH.read_text() == (ROOT / "schemas" / "policy.schema.json").read_text()


def test_unknown_field_names_line_and_field() -> None:
    error = error_of(HEADER + "rules:\n  - name: r1\n    match: {names: [a]}\n    tls_version: [TLSv1.2]\n")
    assert error.file == "tlsguard.yaml" and error.line == 7
    assert "rules[0]" in error.field
    assert "tls_version" in str(error)
    assert str(error).startswith("tlsguard.yaml:7: rules[0]")


def test_bad_enum_value_points_at_the_item() -> None:
    error = error_of("version: 1\ndefaults:\n  tls_versions:\n    - TLSv1.2\n    - TLSv1.4\n")
    assert (error.line, error.field) == (5, "defaults.tls_versions[1]")
    assert "TLSv1.4" in str(error)


def test_invalid_yaml_reports_the_line() -> None:
    error = error_of("version: 1\ndefaults:\n  tls_versions: [TLSv1.2\n  https_only: true\n")
    assert error.line is not None and error.line >= 3
    assert "invalid YAML" in str(error)


def test_duplicate_keys_are_refused() -> None:
    error = error_of(HEADER + "  https_only: false\n")
    assert error.line == 6 and error.field == "defaults.https_only" and "duplicate" in str(error)


@pytest.mark.parametrize(("rule", "field", "words"), [
    ("tls_versions: [TLSv1.0, TLSv1.1]", "rules[0].tls_versions", "without TLS 1.2 or TLS 1.3"),
    ("cipher_suites: {mode: custom, tls12: [], tls13: []}", "rules[0].cipher_suites", "empty list"),
    ("cipher_suites: {mode: custom, tls12: [ECDHE-RSA-AES128-GCM-SHA256, NOT-A-SUITE]}", "rules[0].cipher_suites",
     "unknown cipher suite names: NOT-A-SUITE"),
    ("tls_versions: [TLSv1.3]\n    cipher_suites: {mode: custom, tls12: [ECDHE-RSA-AES128-GCM-SHA256]}",
     "rules[0].cipher_suites", "without TLS 1.2/1.3 suites"),
    ("encryption: {algorithm: KMS, kms_key_id: not-a-key}", "rules[0].encryption.kms_key_id", "malformed KMS key id"),
])
def test_guardrails_refuse_insecure_rules(rule: str, field: str, words: str) -> None:
    text = HEADER + f"rules:\n  - name: weak\n    match: {{names: [legacy]}}\n    {rule}\n"
    error = error_of(text)
    assert error.field == field
    assert error.line == (10 if "\n" in rule else 9)  # the offending field's own line
    assert words in str(error)
    assert "allow_insecure" in str(error)


def test_allow_insecure_with_reason_accepts_the_rule() -> None:
    policy = parse(HEADER + textwrap.dedent("""\
        rules:
          - name: weak
            match: {names: [legacy]}
            tls_versions: [TLSv1.0, TLSv1.1]
            allow_insecure: {reason: "old scanners until 2027"}
        """))
    desired = resolve(policy, bucket("legacy"), None, dt.date(2026, 1, 1))  # type: ignore[arg-type]
    assert desired.refusal == ""
    assert desired.posture.tls_versions == frozenset({TlsVersion.TLS10, TlsVersion.TLS11})


def test_allow_insecure_needs_a_reason() -> None:
    error = error_of(HEADER + "rules:\n  - name: weak\n    match: {names: [x]}\n    allow_insecure: {}\n")
    assert error.field == "rules[0].allow_insecure" and "reason" in str(error)


def test_guardrail_applies_to_defaults_too() -> None:
    error = error_of("version: 1\ndefaults:\n  tls_versions: [TLSv1.0]\n")
    assert error.field == "defaults.tls_versions" and error.line == 3


def test_kms_key_ids_in_every_documented_form_are_accepted() -> None:
    for key in ("0b3c7a1e-5f2d-4c8b-9a61-3e7d2f4b8c90", "key-hzz62f1cb66fa42qo1234",
                "acs:kms:cn-hangzhou:1500000000000001:key/key-hzz62f1cb66fa42qo1234"):
        parse(HEADER + f"  encryption: {{algorithm: KMS, kms_key_id: '{key}'}}\n")


def test_kms_key_id_needs_kms() -> None:
    error = error_of(HEADER + "  encryption: {algorithm: AES256, kms_key_id: key-hzz62f1cb66fa42qo1234}\n")
    assert "need algorithm KMS" in str(error)


def test_waivers_apply_until_expiry_and_report_when_expired() -> None:
    policy = parse(HEADER + textwrap.dedent("""\
        waivers:
          - bucket: legacy-*
            reason: vendor migration
            expires: 2026-06-30
            checks: [oss_cipher_suites]
        """))
    active = resolve(policy, bucket("legacy-a", "cn-hangzhou"), None, dt.date(2026, 6, 30))  # type: ignore[arg-type]
    assert active.waiver_for(CIPHER_SUITES) == "vendor migration"
    assert active.waiver_for(TLS_VERSIONS) is None
    expired = resolve(policy, bucket("legacy-a", "cn-hangzhou"), None, dt.date(2026, 7, 1))  # type: ignore[arg-type]
    assert expired.waiver_for(CIPHER_SUITES) is None
    assert expired.expired_waivers == ("oss.cipher_suites: vendor migration (expired 2026-06-30)",)


def test_bad_waiver_date_is_refused() -> None:
    error = error_of(HEADER + "waivers:\n  - {bucket: a, reason: because, expires: 2026-13-45}\n")
    assert error.field.startswith("waivers[0]") and error.line == 7


def test_rules_layer_in_order_and_select_by_name_glob_region_tag() -> None:
    policy = parse(HEADER + textwrap.dedent("""\
        rules:
          - name: by-glob
            match: {globs: ["logs-*"]}
            https_only: false
          - name: by-region-and-tag
            match: {regions: [cn-shanghai], tags: {env: prod}}
            mode: alert
          - name: by-name
            match: {names: [logs-prod]}
            encryption: {algorithm: SM4}
        """))
    today = dt.date(2026, 1, 1)
    desired = resolve(policy, bucket("logs-prod", "cn-shanghai"), {"env": "prod"}, today)
    assert desired.rules == ("by-glob", "by-region-and-tag", "by-name")
    assert desired.posture.https_only is False and desired.mode is Mode.ALERT
    assert desired.posture.encryption is not None and desired.posture.encryption.algorithm is EncryptionAlgorithm.SM4
    other = resolve(policy, bucket("logs-dev", "cn-shanghai"), {"env": "dev"}, today)
    assert other.rules == ("by-glob",) and other.mode is Mode.ENFORCE


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_policy(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(info.value)
