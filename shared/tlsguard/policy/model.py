"""The policy model: desired posture per kind of target, rules, waivers, guardrails; frozen, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Any

from tlsguard.certs.model import CertPolicy
from tlsguard.model import Mode, TargetKind, TargetRef

if TYPE_CHECKING:
    import datetime as dt

    from tlsguard.policy.matching import PolicyIndex


#: OSS and CDN document that TLS and certificate changes take effect "within 30 minutes".
DEFAULT_PROPAGATION_SECONDS = 30 * 60.0


class TlsVersion(str, Enum):
    TLS10 = "TLSv1.0"
    TLS11 = "TLSv1.1"
    TLS12 = "TLSv1.2"
    TLS13 = "TLSv1.3"


#: What OSS serves when TLS version management is off (``TLS/Enable=false``): the user guide's default set.
DEFAULT_OSS_VERSIONS: frozenset[TlsVersion] = frozenset({TlsVersion.TLS10, TlsVersion.TLS11, TlsVersion.TLS12})
MODERN_VERSIONS: frozenset[TlsVersion] = frozenset({TlsVersion.TLS12, TlsVersion.TLS13})


class CipherMode(str, Enum):
    ALL = "all"  # CipherSuite absent or Enable=false
    STRONG = "strong"  # Enable=true, StrongCipherSuite=true
    CUSTOM = "custom"  # Enable=true, StrongCipherSuite=false, the custom lists


class EncryptionAlgorithm(str, Enum):
    AES256 = "AES256"
    KMS = "KMS"
    SM4 = "SM4"


@dataclass(frozen=True)
class CipherPolicy:
    """Cipher suite option: all, strong, or custom with TLS 1.2 (OpenSSL names) and TLS 1.3 (IANA names) lists."""

    mode: CipherMode = CipherMode.ALL
    tls12: tuple[str, ...] = ()
    tls13: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode is not CipherMode.CUSTOM and (self.tls12 or self.tls13):
            raise ValueError("custom suite lists are only meaningful with mode 'custom'")

    def equivalent(self, other: CipherPolicy) -> bool:
        """Same mode, and for custom the same suites (order-free: a set of allowed suites)."""
        if self.mode is not other.mode:
            return False
        if self.mode is CipherMode.CUSTOM:
            return set(self.tls12) == set(other.tls12) and set(self.tls13) == set(other.tls13)
        return True

    def describe(self) -> str:
        if self.mode is CipherMode.CUSTOM:
            return f"custom(tls12={list(self.tls12)}, tls13={list(self.tls13)})"
        return str(self.mode.value)


@dataclass(frozen=True)
class EncryptionPolicy:
    algorithm: EncryptionAlgorithm
    kms_key_id: str = ""  # only with KMS; empty means the OSS-managed default CMK
    kms_data_encryption: str = ""  # only with KMS: "SM4" or empty (AES256 data cipher)

    def describe(self) -> str:
        extra = []
        if self.kms_key_id:
            extra.append(f"key={self.kms_key_id}")
        if self.kms_data_encryption:
            extra.append(f"data={self.kms_data_encryption}")
        return str(self.algorithm.value) + (f"({', '.join(extra)})" if extra else "")


@dataclass(frozen=True)
class Waiver:
    """Accepted drift: checks (empty: every check) of targets named by a glob, until an expiry date."""

    target: str  # glob on the target name (a bucket or a domain)
    reason: str
    expires: dt.date
    checks: frozenset[str] = frozenset()  # empty: every check
    kinds: frozenset[TargetKind] = frozenset()  # empty: every kind

    @property
    def bucket(self) -> str:  # the policy file's original spelling
        return self.target

    def active(self, today: dt.date) -> bool:
        """A waiver applies up to and including its expiry date."""
        return today <= self.expires

    def covers(self, check: str) -> bool:
        return not self.checks or check in self.checks


@dataclass(frozen=True)
class Selector:
    """Which buckets a rule applies to. Each given criterion must match (AND); values within one are OR."""

    names: frozenset[str] = frozenset()
    globs: tuple[str, ...] = ()
    regions: frozenset[str] = frozenset()
    tags: tuple[tuple[str, str], ...] = ()  # every key=value must be present; value "*" means any value

    @property
    def needs_tags(self) -> bool:
        return bool(self.tags)


@dataclass(frozen=True)
class Posture:
    """The desired posture for one bucket. ``None`` means "not managed" for that part."""

    tls_versions: frozenset[TlsVersion] | None = None
    cipher: CipherPolicy | None = None
    https_only: bool | None = None
    encryption: EncryptionPolicy | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    selector: Selector
    posture: Posture
    mode: Mode | None = None
    allow_insecure_reason: str = ""
    line: int | None = None


@dataclass(frozen=True)
class Guard:
    """Loop and flap safety settings."""

    max_remediations: int = 3
    window_minutes: int = 60
    own_principals: tuple[str, ...] = ("tlsguard-fc-role",)


@dataclass(frozen=True)
class CdnHttpsPolicy:
    """Desired HTTPS posture of CDN domains (``certificates.cdn_https``). ``None`` fields are not managed."""

    https_force: bool | None = None
    https_rewrite: str = "301"
    hsts: bool | None = None
    hsts_max_age: int = 5184000
    hsts_include_subdomains: bool = False
    tls_versions: tuple[str, ...] | None = None  # e.g. ("TLSv1.2", "TLSv1.3")
    cipher_suite_group: str | None = None  # all | strict | custom
    cipher_suites: tuple[str, ...] = ()  # IANA names, for custom

    @property
    def managed(self) -> bool:
        return self.https_force is not None or self.hsts is not None or self.tls_versions is not None or \
            self.cipher_suite_group is not None


@dataclass(frozen=True)
class VerifySettings:
    """Live verification: how long a change takes to reach the endpoints, and when to give up on a probe."""

    propagation_seconds: dict[TargetKind, float] = field(default_factory=lambda: {
        kind: DEFAULT_PROPAGATION_SECONDS for kind in TargetKind})
    attempts_before_alert: int = 3

    def window(self, kind: TargetKind) -> float:
        return self.propagation_seconds.get(kind, DEFAULT_PROPAGATION_SECONDS)


@dataclass(frozen=True)
class HeartbeatSettings:
    """The event-path heartbeat (:mod:`tlsguard.heartbeat`): whether the sweep writes it, and how long a heartbeat
    write may go without its ActionTrail event reaching on_change before "event path broken" is alerted."""

    enabled: bool = True
    max_lag_minutes: float = 15.0

    @property
    def max_lag_seconds(self) -> float:
        return self.max_lag_minutes * 60.0


#: The channel types tlsguard can deliver to.
CHANNEL_TYPES = ("dingtalk", "wecom", "lark", "slack", "email", "webhook")


@dataclass(frozen=True)
class ChannelSpec:
    """One place alerts go. Secrets and robot URLs are never in the policy file: only the names of the environment
    variables holding them (``url_env``, ``secret_env``); the generic webhook's ``url`` is the one exception kept
    for the earlier ``alerts.webhook`` form."""

    name: str
    type: str
    url_env: str = ""
    secret_env: str = ""
    url: str = ""
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)


@dataclass(frozen=True)
class RouteMatch:
    """What a route selects: each given criterion must match (AND); values within one are OR."""

    severities: frozenset[str] = frozenset()  # lower-case: critical, high, medium, low, info
    checks: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    targets: tuple[str, ...] = ()  # globs on the target name


@dataclass(frozen=True)
class Route:
    match: RouteMatch
    channels: tuple[str, ...]


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go and how: channels, routes (none: every channel gets everything), the language of messages,
    and reminders for problems that stay open (hours after first alert; certificate expiry uses its day ladder)."""

    reminder_hours: tuple[float, ...] = (24.0, 72.0, 168.0)
    language: str = "en"  # en | zh-CN
    channels: tuple[ChannelSpec, ...] = ()
    routes: tuple[Route, ...] = ()
    #: How long a digest a channel could not take waits in the outbox before it is dropped (and re-alerted).
    outbox_hours: float = 24.0


@dataclass(frozen=True)
class Policy:
    """A loaded, validated policy file: the desired posture of every kind of target."""

    defaults: Posture
    mode: Mode
    rules: tuple[Rule, ...] = ()
    waivers: tuple[Waiver, ...] = ()
    state_bucket: str = ""
    state_prefix: str = "tlsguard/"
    guard: Guard = field(default_factory=Guard)
    rate_limits: tuple[tuple[str, float], ...] = ()
    source: str = ""
    certificates: CertPolicy = field(default_factory=CertPolicy)
    cdn_https: CdnHttpsPolicy = field(default_factory=CdnHttpsPolicy)
    verify: VerifySettings = field(default_factory=VerifySettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    heartbeat: HeartbeatSettings = field(default_factory=HeartbeatSettings)

    @cached_property
    def needs_tags(self) -> bool:
        """Whether any rule selects by tag (computed once: it is asked for every target)."""
        return any(rule.selector.needs_tags for rule in self.rules)

    @cached_property
    def index(self) -> PolicyIndex:
        """The rules and waivers indexed by what they select, built on first use (see :mod:`.matching`)."""
        from tlsguard.policy.matching import PolicyIndex

        return PolicyIndex(self.rules, self.waivers)


@dataclass(frozen=True)
class Desired:
    """The resolved desired state of one target: its posture, mode, the rules that shaped it, and waivers.

    ``posture`` applies to buckets; ``certs`` to custom domains and CDN domains; ``cdn`` to CDN domains.
    ``refusal`` is set when the combined rules break a guardrail (nothing is written then).
    """

    target: TargetRef
    mode: Mode
    posture: Posture = field(default_factory=Posture)
    certs: CertPolicy | None = None
    cdn: CdnHttpsPolicy | None = None
    rules: tuple[str, ...] = ()
    waived: tuple[tuple[str, str], ...] = ()  # (check, reason) of active waivers
    expired_waivers: tuple[str, ...] = ()
    refusal: str = ""
    propagation_seconds: float = DEFAULT_PROPAGATION_SECONDS

    @property
    def bucket(self) -> str:
        return self.target.name

    def waiver_for(self, check: str) -> str | None:
        for waived_check, reason in self.waived:
            if waived_check == check or waived_check == "*":
                return reason
        return None


# -- actual state -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HttpsState:
    """Normalised https config: the versions actually accepted and the cipher option actually in force."""

    versions: frozenset[TlsVersion]
    cipher: CipherPolicy
    tls_enabled: bool = False  # raw flag, kept for reports and the before-state


@dataclass(frozen=True)
class RawHttpsConfig:
    """The https document as read (and as written back): kept whole so PUT never sends a partial document."""

    tls_enabled: bool = False
    tls_versions: tuple[str, ...] = ()
    cipher_present: bool = False
    cipher_enabled: bool = False
    strong: bool = False
    custom_tls12: tuple[str, ...] = ()
    custom_tls13: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "tls": {"enable": self.tls_enabled, "versions": list(self.tls_versions)},
            "cipher_suite": None if not self.cipher_present else {
                "enable": self.cipher_enabled, "strong": self.strong,
                "custom_tls12": list(self.custom_tls12), "custom_tls13": list(self.custom_tls13),
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> RawHttpsConfig:
        tls = data.get("tls") or {}
        cipher = data.get("cipher_suite")
        assert isinstance(tls, dict)
        result = cls(tls_enabled=bool(tls.get("enable")), tls_versions=tuple(tls.get("versions") or ()))
        if isinstance(cipher, dict):
            result = cls(
                tls_enabled=result.tls_enabled, tls_versions=result.tls_versions, cipher_present=True,
                cipher_enabled=bool(cipher.get("enable")), strong=bool(cipher.get("strong")),
                custom_tls12=tuple(cipher.get("custom_tls12") or ()),
                custom_tls13=tuple(cipher.get("custom_tls13") or ()),
            )
        return result
