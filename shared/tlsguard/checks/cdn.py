"""CDN domain HTTPS posture checks: forced HTTPS, HSTS, TLS versions and cipher suite group; and their planner.

The policy (``certificates.cdn_https``) is compared with DescribeCdnDomainConfigs; the fix is one
BatchSetCdnDomainConfig of the drifted functions. ``https_force`` and ``http_force`` exclude each other: CDN
refuses to add one while the other exists, even when it is ``off``, so the rival is deleted (DeleteSpecificConfig)
first. Function and argument names follow
https://help.aliyun.com/zh/cdn/developer-reference/parameters-for-configuring-features-for-domain-names
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tlsguard.checks.registry import Check
from tlsguard.facets import CDN_DOMAINS
from tlsguard.model import Action, Finding, Severity
from tlsguard.policy.model import CdnHttpsPolicy

if TYPE_CHECKING:
    import datetime as dt

    from tlsguard.facets import Actual
    from tlsguard.policy.model import Desired

FORCE_HTTPS = "cdn.force_https"
HSTS = "cdn.hsts"
TLS_VERSIONS = "cdn.tls_versions"
CIPHER_SUITES = "cdn.cipher_suites"
TLS_ARGS = ("tls10", "tls11", "tls12", "tls13")
#: What an absent ``https_tls_version`` means: each version "on" and the "all" suite group (documented defaults).
DEFAULT_TLS = {"tls10": "on", "tls11": "on", "tls12": "on", "tls13": "on", "ciphersuitegroup": "all"}
VERSION_ARG = {"TLSv1.0": "tls10", "TLSv1.1": "tls11", "TLSv1.2": "tls12", "TLSv1.3": "tls13"}


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def desired_functions(policy: CdnHttpsPolicy, current: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The function args the policy wants (only the managed functions; unmanaged args kept from ``current``)."""
    wanted: dict[str, dict[str, str]] = {}
    if policy.https_force is not None:
        wanted["https_force"] = {"enable": _on(policy.https_force)}
        if policy.https_force:
            wanted["https_force"]["https_rewrite"] = policy.https_rewrite
    if policy.hsts is not None:
        wanted["HSTS"] = {"enabled": _on(policy.hsts), "https_hsts_max_age": str(policy.hsts_max_age),
                          "https_hsts_include_subdomains": _on(policy.hsts_include_subdomains)}
    if policy.tls_versions is not None or policy.cipher_suite_group is not None:
        tls = {**DEFAULT_TLS, **current.get("https_tls_version", {})}
        if policy.tls_versions is not None:
            for version, arg in VERSION_ARG.items():
                tls[arg] = _on(version in policy.tls_versions)
        if policy.cipher_suite_group is not None:
            tls["ciphersuitegroup"] = policy.cipher_suite_group
            if policy.cipher_suite_group == "custom":
                tls["ciphersuite"] = ",".join(policy.cipher_suites)
            else:
                tls.pop("ciphersuite", None)
        wanted["https_tls_version"] = tls
    return wanted


@dataclass(frozen=True)
class PostureDrift:
    function: str
    arg: str
    desired: str
    actual: str | None

    @property
    def check(self) -> str:
        if self.function in ("https_force", "http_force"):
            return FORCE_HTTPS
        if self.function == "HSTS":
            return HSTS
        return TLS_VERSIONS if self.arg in TLS_ARGS else CIPHER_SUITES


def current_args(configs: dict[str, Any]) -> dict[str, dict[str, str]]:
    """``{function: args}`` from the cdn_configs facet."""
    return {name: dict(config.get("args") or {}) for name, config in configs.items() if isinstance(config, dict)}


def posture_drift(policy: CdnHttpsPolicy, current: dict[str, dict[str, str]]) -> list[PostureDrift]:
    """Every managed argument whose live value differs from the policy (absent https_tls_version = defaults)."""
    drift = []
    for function, args in desired_functions(policy, current).items():
        have = current.get(function)
        if function == "https_tls_version":
            have = {**DEFAULT_TLS, **(have or {})}
        for arg, value in args.items():
            switched_off = (function == "HSTS" and args.get("enabled") == "off") or (
                function == "https_force" and args.get("enable") == "off")
            if switched_off and arg not in ("enabled", "enable"):
                continue  # the other arguments of a function that is off do not matter
            actual = (have or {}).get(arg)
            if function == "https_force" and arg == "enable" and have is None:
                actual = "off" if value == "on" else value  # absent = not forced, which is what "off" wants
            if function == "HSTS" and have is None and args.get("enabled") == "off":
                actual = value  # no HSTS config is HSTS off
            if actual != value:
                drift.append(PostureDrift(function, arg, value, actual))
    if policy.https_force and "http_force" in current:
        drift.append(PostureDrift("http_force", "present", "absent", "present"))
    return drift


def _policy(desired: Desired) -> CdnHttpsPolicy:
    return desired.cdn or CdnHttpsPolicy()


def _evaluate_for(check: str) -> Any:
    def evaluate(desired: Desired, actual: Actual, now: dt.datetime) -> list[Finding]:
        if not actual["cdn_certificate"].https_enabled:
            return []  # no HTTPS at all: cdn.https_enabled says so; these functions are moot until it is back
        findings = []
        for drift in posture_drift(_policy(desired), current_args(actual["cdn_configs"])):
            if drift.check != check:
                continue
            severity = Severity.HIGH if check == FORCE_HTTPS else Severity.MEDIUM
            if check == TLS_VERSIONS and drift.arg in ("tls10", "tls11") and drift.desired == "off":
                severity = Severity.HIGH
            have = drift.actual if drift.actual is not None else "unset"
            findings.append(Finding(desired.target, check, severity, f"{drift.function}.{drift.arg}={drift.desired}",
                                    f"{drift.function}.{drift.arg}={have}",
                                    f"{drift.function}.{drift.arg} is {have}, policy wants {drift.desired}",
                                    details={"function": drift.function, "arg": drift.arg, "desired": drift.desired,
                                             "actual": have}))
        return findings

    return evaluate


def _only(policy: CdnHttpsPolicy, checks: frozenset[str]) -> CdnHttpsPolicy:
    """The policy restricted to the managed parts of ``checks`` (a fix writes only what drifted)."""
    return replace(policy, https_force=policy.https_force if FORCE_HTTPS in checks else None,
                   hsts=policy.hsts if HSTS in checks else None,
                   tls_versions=policy.tls_versions if TLS_VERSIONS in checks or CIPHER_SUITES in checks else None,
                   cipher_suite_group=policy.cipher_suite_group if CIPHER_SUITES in checks or TLS_VERSIONS in checks
                   else None)


def plan_cdn_configs(desired: Desired, actual: Actual, checks: frozenset[str], now: dt.datetime) -> Action | None:
    configs: dict[str, Any] = actual["cdn_configs"]
    current = current_args(configs)
    policy = _only(_policy(desired), checks)
    drifted = {d.function for d in posture_drift(policy, current)}
    if not drifted:
        return None
    wanted = desired_functions(policy, current)
    after = {name: {"config_id": str((configs.get(name) or {}).get("config_id") or ""), "args": dict(args)}
             for name, args in current.items()}
    for name in drifted & set(wanted):
        after[name] = {"config_id": str((configs.get(name) or {}).get("config_id") or ""), "args": wanted[name]}
    deleted = []
    if policy.https_force and "http_force" in after:
        deleted.append({"function": "http_force", "config_id": after.pop("http_force")["config_id"]})
    functions = [{"functionName": name, "functionArgs": [{"argName": k, "argValue": v} for k, v in args.items()]}
                 for name, args in sorted(wanted.items()) if name in drifted]
    params: dict[str, Any] = {"DomainNames": desired.target.name, "Functions": functions}
    if deleted:
        params["DeleteSpecificConfig"] = deleted
    names = ", ".join(sorted(drifted & set(wanted)))
    summary = f"BatchSetCdnDomainConfig: {names}" + (" after DeleteSpecificConfig http_force" if deleted else "")
    return Action(desired.target, "cdn_configs", "BatchSetCdnDomainConfig", params, configs, after,
                  tuple(sorted(checks)), summary)


def live_expectation(desired: Desired, checks: frozenset[str]) -> dict[str, object]:
    """What the CDN edge must show once the configs have propagated."""
    policy = _policy(desired)
    expect: dict[str, object] = {"host": desired.target.name}
    if TLS_VERSIONS in checks and policy.tls_versions is not None:
        expect["tls_versions"] = [v for v in VERSION_ARG if v in policy.tls_versions]
    if CIPHER_SUITES in checks and policy.cipher_suite_group in ("strict", "custom"):
        expect["ciphers"] = "strong" if policy.cipher_suite_group == "strict" else \
            "custom:" + ",".join(policy.cipher_suites)
    if HSTS in checks and policy.hsts is not None:
        expect["hsts"] = policy.hsts_max_age if policy.hsts else 0
    if FORCE_HTTPS in checks and policy.https_force is not None:
        expect["https_redirect"] = bool(policy.https_force)
    return expect


_EVENTS = ("cdn:BatchSetCdnDomainConfig", "cdn:DeleteSpecificConfig")
_FACETS = ("cdn_certificate", "cdn_configs")

CHECKS = (
    Check(FORCE_HTTPS, CDN_DOMAINS, "HTTP requests are redirected to HTTPS", "HIGH", _FACETS,
          _evaluate_for(FORCE_HTTPS), fixes="cdn_configs", events=_EVENTS, live="redirect",
          applies=lambda d: _policy(d).https_force is not None,
          doc="https_force on (with https_rewrite 301 or 308); an http_force rival is deleted first."),
    Check(HSTS, CDN_DOMAINS, "HSTS is set as declared", "MEDIUM", _FACETS, _evaluate_for(HSTS),
          fixes="cdn_configs", events=_EVENTS, live="hsts", applies=lambda d: _policy(d).hsts is not None),
    Check(TLS_VERSIONS, CDN_DOMAINS, "CDN edge accepts exactly the declared TLS versions",
          "HIGH when TLS 1.0 or 1.1 should be off, else MEDIUM", _FACETS, _evaluate_for(TLS_VERSIONS),
          fixes="cdn_configs", events=_EVENTS, live="tls_versions",
          applies=lambda d: _policy(d).tls_versions is not None,
          doc="https_tls_version tls10..tls13; an absent config means every version on."),
    Check(CIPHER_SUITES, CDN_DOMAINS, "CDN edge uses the declared cipher suite group", "MEDIUM", _FACETS,
          _evaluate_for(CIPHER_SUITES), fixes="cdn_configs", events=_EVENTS, live="cipher_suites",
          applies=lambda d: _policy(d).cipher_suite_group is not None,
          doc="ciphersuitegroup all, strict or custom (ciphersuite names the suites)."),
)

PLANNERS = {"cdn_configs": plan_cdn_configs}
