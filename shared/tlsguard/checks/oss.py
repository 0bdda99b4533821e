"""OSS bucket checks: TLS versions, cipher suites, HTTPS-only access, default encryption; and their planners.

Equivalent configurations never count as drift: version sets are order-free; ``TLS/Enable=false`` means the
default set TLS 1.0/1.1/1.2; ``CipherSuite`` absent or ``Enable=false`` means "all"; custom suite lists are
compared as sets; a desired KMS encryption without a key id accepts any key.
Wire format: https://www.alibabacloud.com/help/en/oss/developer-reference/putbuckethttpsconfig
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tlsguard.checks.registry import Check
from tlsguard.facets import BUCKETS, FACETS, encryption_json, encryption_matches
from tlsguard.model import Action, Finding, Severity
from tlsguard.policy.bucket_policy import has_https_only, merge_https_only
from tlsguard.policy.model import (
    DEFAULT_OSS_VERSIONS,
    CipherMode,
    CipherPolicy,
    HttpsState,
    RawHttpsConfig,
    TlsVersion,
)

if TYPE_CHECKING:
    import datetime as dt

    from tlsguard.facets import Actual
    from tlsguard.policy.model import Desired

TLS_VERSIONS = "oss.tls_versions"
CIPHER_SUITES = "oss.cipher_suites"
HTTPS_ONLY = "oss.https_only"
DEFAULT_ENCRYPTION = "oss.default_encryption"
_VERSION_ORDER = [v.value for v in TlsVersion]


def normalise_https(raw: RawHttpsConfig) -> HttpsState:
    """Turn the https document as read into what the bucket actually accepts."""
    if raw.tls_enabled:
        versions = frozenset(TlsVersion(v) for v in raw.tls_versions if v in _VERSION_ORDER)
    else:
        versions = DEFAULT_OSS_VERSIONS
    if not raw.cipher_present or not raw.cipher_enabled:
        cipher = CipherPolicy(CipherMode.ALL)
    elif raw.strong:
        cipher = CipherPolicy(CipherMode.STRONG)
    else:
        cipher = CipherPolicy(CipherMode.CUSTOM, tuple(raw.custom_tls12), tuple(raw.custom_tls13))
    return HttpsState(versions=versions, cipher=cipher, tls_enabled=raw.tls_enabled)


def describe_versions(versions: frozenset[TlsVersion]) -> str:
    return ",".join(sorted((v.value for v in versions), key=_VERSION_ORDER.index)) or "(none)"


def bucket_host(desired: Desired) -> str:
    """The bucket's own HTTPS endpoint, whose edge a TLS change reaches."""
    return f"{desired.target.name}.oss-{desired.target.region or 'cn-hangzhou'}.aliyuncs.com"


# -- evaluate -------------------------------------------------------------------------------------------------
def _tls_versions(desired: Desired, actual: Actual, now: dt.datetime) -> list[Finding]:
    wanted = desired.posture.tls_versions
    state = normalise_https(actual["https_config"])
    if wanted is None or state.versions == wanted:
        return []
    legacy = bool(state.versions & {TlsVersion.TLS10, TlsVersion.TLS11})
    return [Finding(desired.target, TLS_VERSIONS, Severity.HIGH if legacy else Severity.MEDIUM,
                    describe_versions(wanted), describe_versions(state.versions))]


def _cipher_suites(desired: Desired, actual: Actual, now: dt.datetime) -> list[Finding]:
    wanted = desired.posture.cipher
    state = normalise_https(actual["https_config"])
    if wanted is None or wanted.equivalent(state.cipher):
        return []
    return [Finding(desired.target, CIPHER_SUITES, Severity.MEDIUM, wanted.describe(), state.cipher.describe())]


def _https_only(desired: Desired, actual: Actual, now: dt.datetime) -> list[Finding]:
    if not desired.posture.https_only or has_https_only(actual["bucket_policy"], desired.target.name):
        return []
    return [Finding(desired.target, HTTPS_ONLY, Severity.HIGH, "deny acs:SecureTransport=false",
                    "no HTTPS-only deny")]


def _default_encryption(desired: Desired, actual: Actual, now: dt.datetime) -> list[Finding]:
    wanted = desired.posture.encryption
    have = actual["encryption"]
    if wanted is None or encryption_matches(wanted, have):
        return []
    return [Finding(desired.target, DEFAULT_ENCRYPTION, Severity.HIGH if have is None else Severity.MEDIUM,
                    wanted.describe(), have.describe() if have else "none")]


# -- plan ------------------------------------------------------------------------------------------------------
def desired_https_document(desired: Desired, actual: RawHttpsConfig, checks: frozenset[str]) -> RawHttpsConfig:
    """The whole https document to PUT: the actual one, with only the drifted parts set to the desired value."""
    posture = desired.posture
    tls_enabled, versions = actual.tls_enabled, actual.tls_versions
    if TLS_VERSIONS in checks and posture.tls_versions is not None:
        tls_enabled = True
        versions = tuple(sorted((v.value for v in posture.tls_versions), key=_VERSION_ORDER.index))
    present, enabled, strong = actual.cipher_present, actual.cipher_enabled, actual.strong
    tls12, tls13 = actual.custom_tls12, actual.custom_tls13
    if CIPHER_SUITES in checks and posture.cipher is not None:
        cipher = posture.cipher
        present = True
        enabled = cipher.mode is not CipherMode.ALL
        strong = cipher.mode is CipherMode.STRONG
        tls12, tls13 = (cipher.tls12, cipher.tls13) if cipher.mode is CipherMode.CUSTOM else ((), ())
    return RawHttpsConfig(tls_enabled, versions, present, enabled, strong, tuple(tls12), tuple(tls13))


def plan_https_config(desired: Desired, actual: Actual, checks: frozenset[str], now: dt.datetime) -> Action | None:
    current: RawHttpsConfig = actual["https_config"]
    after = desired_https_document(desired, current, checks)
    facet = FACETS["https_config"]
    if facet.same(facet.to_json(after), facet.to_json(current)):
        return None
    ordered = tuple(c for c in (TLS_VERSIONS, CIPHER_SUITES) if c in checks)
    state = normalise_https(after)
    return Action(desired.target, "https_config", "PutBucketHttpsConfig",
                  {"Bucket": desired.target.name, "HttpsConfiguration": after.to_dict()},
                  facet.to_json(current), facet.to_json(after), ordered,
                  f"PutBucketHttpsConfig: TLS {describe_versions(state.versions)}, ciphers {state.cipher.describe()}")


def plan_bucket_policy(desired: Desired, actual: Actual, checks: frozenset[str], now: dt.datetime) -> Action | None:
    current = actual["bucket_policy"]
    merged = merge_https_only(current, desired.target.name)
    if merged is None:
        return None
    return Action(desired.target, "bucket_policy", "PutBucketPolicy", {"Bucket": desired.target.name,
                                                                        "Policy": merged},
                  current, merged, (HTTPS_ONLY,), "PutBucketPolicy: existing statements kept, HTTPS-only Deny added")


def plan_encryption(desired: Desired, actual: Actual, checks: frozenset[str], now: dt.datetime) -> Action | None:
    wanted = desired.posture.encryption
    if wanted is None:
        return None
    document = encryption_json(wanted)
    return Action(desired.target, "encryption", "PutBucketEncryption",
                  {"Bucket": desired.target.name, "ServerSideEncryptionRule": document},
                  encryption_json(actual["encryption"]), document, (DEFAULT_ENCRYPTION,),
                  f"PutBucketEncryption: {wanted.describe()}")


def live_expectation(desired: Desired, checks: frozenset[str]) -> dict[str, object]:
    """What the bucket's endpoint must negotiate once the https config has propagated."""
    expect: dict[str, object] = {"host": bucket_host(desired)}
    posture = desired.posture
    if TLS_VERSIONS in checks and posture.tls_versions is not None:
        expect["tls_versions"] = sorted((v.value for v in posture.tls_versions), key=_VERSION_ORDER.index)
    if CIPHER_SUITES in checks and posture.cipher is not None and posture.cipher.mode is not CipherMode.ALL:
        cipher = posture.cipher
        expect["ciphers"] = "strong" if cipher.mode is CipherMode.STRONG else \
            "custom:" + ",".join([*cipher.tls12, *cipher.tls13])
    return expect


CHECKS = (
    Check(TLS_VERSIONS, BUCKETS, "Bucket accepts exactly the declared TLS versions",
          "HIGH when TLS 1.0 or 1.1 is accepted, else MEDIUM", ("https_config",), _tls_versions,
          fixes="https_config", events=("oss:PutBucketHttpsConfig",), live="tls_versions",
          applies=lambda d: d.posture.tls_versions is not None, aliases=("oss_tls_versions",),
          doc="TLS/Enable=false means OSS's default set (TLS 1.0, 1.1, 1.2); the set is compared order-free."),
    Check(CIPHER_SUITES, BUCKETS, "Bucket offers only the declared cipher suites",
          "MEDIUM", ("https_config",), _cipher_suites, fixes="https_config",
          events=("oss:PutBucketHttpsConfig",), live="cipher_suites",
          applies=lambda d: d.posture.cipher is not None, aliases=("oss_cipher_suites",),
          doc="all, strong, or custom TLS 1.2 (OpenSSL names) and TLS 1.3 (IANA names) lists, compared as sets."),
    Check(HTTPS_ONLY, BUCKETS, "Bucket policy denies plain HTTP",
          "HIGH", ("bucket_policy",), _https_only, fixes="bucket_policy",
          events=("oss:PutBucketPolicy", "oss:DeleteBucketPolicy"),
          applies=lambda d: bool(d.posture.https_only), aliases=("oss_https_only",),
          doc="A Deny of oss:* for everyone when acs:SecureTransport is false, in any equivalent spelling; the "
              "fix appends it and keeps every other statement."),
    Check(DEFAULT_ENCRYPTION, BUCKETS, "Bucket has the declared default encryption",
          "HIGH when there is none, MEDIUM when it differs", ("encryption",), _default_encryption,
          fixes="encryption", events=("oss:PutBucketEncryption", "oss:DeleteBucketEncryption"),
          applies=lambda d: d.posture.encryption is not None, aliases=("oss_default_encryption",),
          doc="AES256, KMS (any key unless kms_key_id is given) or SM4. tlsguard never deletes encryption."),
)

PLANNERS = {"https_config": plan_https_config, "bucket_policy": plan_bucket_policy, "encryption": plan_encryption}
