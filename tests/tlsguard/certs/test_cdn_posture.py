"""CDN HTTPS posture (cdn.force_https, cdn.hsts, cdn.tls_versions, cdn.cipher_suites): pure drift detection and
planning, and remediation on localcloud through the lifecycle (one BatchSetCdnDomainConfig after deleting the
http_force rival, verified with DescribeCdnDomainConfigs, journaled, and proved live by real handshakes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from tlsguard import verify_live
from tlsguard.adapters.cdn import AliyunCdn
from tlsguard.certs.model import ApiView, LiveView
from tlsguard.certs.policy import cdn_policy_from_mapping
from tlsguard.checks import evaluate
from tlsguard.checks.cdn import current_args, plan_cdn_configs, posture_drift
from tlsguard.errors import ConfigError
from tlsguard.facets import CDN_POSTURE_FUNCTIONS, Actual
from tlsguard.model import Action, LiveVerification, Mode, Outcome, Severity
from tlsguard.policy.loader import load_policy
from tlsguard.policy.model import CdnHttpsPolicy
from tlsguard.probe import ProbeOptions, ProbeTarget, probe

from tests.support import wiring_for
from tests.tlsguard.certs._support import CDN, NOW, cdn_domain, desired_for, domain_policy, lifecycle_at

if TYPE_CHECKING:
    from pathlib import Path

    from localcloud.cloud import LocalCloud

STRICT = CdnHttpsPolicy(https_force=True, hsts=True, hsts_max_age=31536000, hsts_include_subdomains=True,
                        tls_versions=("TLSv1.2", "TLSv1.3"), cipher_suite_group="strict")
STRICT_YAML = """\
  cdn_https:
    https_force: true
    hsts: {max_age: 31536000, include_subdomains: true}
    tls_versions: [TLSv1.2, TLSv1.3]
    cipher_suite_group: strict
"""
HTTPS_ON = ApiView(cert_id="14000001", https_enabled=True, status="success")


def configs_actual(configs: dict[str, Any], api: ApiView = HTTPS_ON) -> Actual:
    return Actual(CDN, {"cdn_certificate": api, "cdn_configs": configs,
                        "served_chain": LiveView(endpoint="test", error="not probed")})


def posture_findings(configs: dict[str, Any], policy: CdnHttpsPolicy = STRICT, api: ApiView = HTTPS_ON) -> list[Any]:
    findings = evaluate(desired_for(CDN, cdn=policy), configs_actual(configs, api), NOW)
    return [f for f in findings if f.check.startswith("cdn.") and f.check not in ("cdn.cert_status",
                                                                                   "cdn.https_enabled")]


@pytest.mark.unit
def test_absent_configs_mean_defaults() -> None:
    drift = posture_drift(STRICT, {})
    assert {(d.function, d.arg, d.actual) for d in drift} == {
        ("https_force", "enable", "off"), ("https_force", "https_rewrite", None),
        ("HSTS", "enabled", None), ("HSTS", "https_hsts_max_age", None),
        ("HSTS", "https_hsts_include_subdomains", None),
        ("https_tls_version", "tls10", "on"), ("https_tls_version", "tls11", "on"),
        ("https_tls_version", "ciphersuitegroup", "all"),
    }
    assert posture_drift(CdnHttpsPolicy(), {}) == []
    assert posture_drift(CdnHttpsPolicy(hsts=False, https_force=False), {}) == []


@pytest.mark.unit
def test_each_drift_is_the_finding_of_its_check() -> None:
    findings = posture_findings({"http_force": {"config_id": "17", "args": {"enable": "on"}}})
    by_check: dict[str, set[str]] = {}
    for finding in findings:
        by_check.setdefault(finding.check, set()).add(f"{finding.details['function']}.{finding.details['arg']}")
    assert by_check == {
        "cdn.force_https": {"https_force.enable", "https_force.https_rewrite", "http_force.present"},
        "cdn.hsts": {"HSTS.enabled", "HSTS.https_hsts_max_age", "HSTS.https_hsts_include_subdomains"},
        "cdn.tls_versions": {"https_tls_version.tls10", "https_tls_version.tls11"},
        "cdn.cipher_suites": {"https_tls_version.ciphersuitegroup"},
    }
    severities = {(f.check, f.details["arg"]): f.severity for f in findings}
    assert severities[("cdn.force_https", "enable")] is Severity.HIGH
    assert severities[("cdn.tls_versions", "tls10")] is Severity.HIGH  # TLS 1.0/1.1 left on
    assert severities[("cdn.hsts", "enabled")] is Severity.MEDIUM
    # HTTPS off: the posture functions are moot, cdn.https_enabled says so instead
    assert posture_findings({}, api=ApiView(https_enabled=False)) == []


@pytest.mark.unit
def test_http_force_is_deleted_before_https_force_is_added() -> None:
    configs = {"http_force": {"config_id": "17", "args": {"enable": "off"}}}
    policy = CdnHttpsPolicy(https_force=True)
    actual = configs_actual(configs)
    planned = plan_cdn_configs(desired_for(CDN, cdn=policy), actual, frozenset({"cdn.force_https"}), NOW)
    assert isinstance(planned, Action)
    assert planned.call == "BatchSetCdnDomainConfig" and planned.facet == "cdn_configs"
    assert planned.params["DeleteSpecificConfig"] == [{"function": "http_force", "config_id": "17"}]
    assert planned.params["Functions"] == [{"functionName": "https_force", "functionArgs": [
        {"argName": "enable", "argValue": "on"}, {"argName": "https_rewrite", "argValue": "301"}]}]
    assert "http_force" not in planned.after and planned.before == configs
    assert planned.summary == "BatchSetCdnDomainConfig: https_force after DeleteSpecificConfig http_force"
    compliant = {"https_force": {"config_id": "3", "args": {"enable": "on", "https_rewrite": "301"}}}
    assert plan_cdn_configs(desired_for(CDN, cdn=policy), configs_actual(compliant),
                            frozenset({"cdn.force_https"}), NOW) is None
    assert current_args(compliant) == {"https_force": {"enable": "on", "https_rewrite": "301"}}


@pytest.mark.unit
def test_a_fix_writes_only_the_drifted_functions() -> None:
    configs = {"HSTS": {"config_id": "5", "args": {"enabled": "on", "https_hsts_max_age": "31536000",
                                                   "https_hsts_include_subdomains": "on"}},
               "https_tls_version": {"config_id": "6", "args": {"tls10": "on", "tls11": "off", "tls12": "on",
                                                                "tls13": "on", "ciphersuitegroup": "strict"}}}
    planned = plan_cdn_configs(desired_for(CDN, cdn=STRICT), configs_actual(configs),
                               frozenset({"cdn.tls_versions"}), NOW)
    assert isinstance(planned, Action)
    assert [f["functionName"] for f in planned.params["Functions"]] == ["https_tls_version"]
    assert "DeleteSpecificConfig" not in planned.params
    assert planned.after["HSTS"] == configs["HSTS"]  # untouched
    assert planned.after["https_tls_version"]["args"]["tls10"] == "off"


@pytest.mark.unit
def test_policy_mapping(tmp_path: Path) -> None:
    policy = cdn_policy_from_mapping({"https_force": True, "hsts": {"max_age": 31536000, "include_subdomains": True},
                                      "tls_versions": ["TLSv1.2", "TLSv1.3"], "cipher_suite_group": "strict"})
    assert policy == STRICT
    with pytest.raises(ConfigError):
        cdn_policy_from_mapping({"tls_versions": ["SSLv3"]})
    # the policy file's certificates.cdn_https is the same thing, and it reaches CDN domains only
    loaded = load_policy(domain_policy(tmp_path, STRICT_YAML))
    assert loaded.cdn_https == STRICT


def test_drift_remediated_on_localcloud(cloud: LocalCloud, tmp_path: Path) -> None:
    # GIVEN a CDN domain forcing HTTP, with no HSTS and every TLS version on
    cloud.seed({
        "certificates": [{"name": "cdn", "kind": "valid", "domains": ["cdn.example.com"]}],
        "buckets": [{"name": "tlsguard-state"}],
        "cdn_domains": [{"name": "cdn.example.com", "certificate": "cdn",
                         "configs": {"http_force": {"enable": "on"}}}],
    })
    policy_path = domain_policy(tmp_path, STRICT_YAML)
    wiring = wiring_for(cloud, policy_path)
    assert isinstance(wiring.ports.cdn, AliyunCdn) and wiring.ports.live is not None
    target = cdn_domain("cdn.example.com")
    edge = ProbeTarget("cdn.example.com", connect=wiring.ports.live.connect)
    assert probe(edge, options=ProbeOptions(versions=("TLSv1.1",))).accepted_versions() == ("TLSv1.1",)
    # WHEN checked in dry-run: drift reported, nothing written
    planned = lifecycle_at(cloud, policy_path, mode=Mode.DRY_RUN, wiring=wiring).run(target)
    assert planned.outcome is Outcome.DRIFTED, planned.reason
    assert {f.details["function"] for f in planned.findings} == {"https_force", "http_force", "HSTS",
                                                                  "https_tls_version"}
    assert [a.call for a in planned.actions] == ["BatchSetCdnDomainConfig"] and not planned.applied
    assert "http_force" in current_args(_configs(wiring))
    # WHEN enforced
    result = lifecycle_at(cloud, policy_path, wiring=wiring).run(target)
    # THEN http_force was deleted, the rest set in one batch, re-read compliant, journaled
    assert result.outcome is Outcome.REMEDIATED, result.reason
    configs = current_args(_configs(wiring))
    assert "http_force" not in configs
    assert configs["https_force"]["enable"] == "on"
    assert configs["HSTS"] == {"enabled": "on", "https_hsts_max_age": "31536000",
                               "https_hsts_include_subdomains": "on"}
    assert (configs["https_tls_version"]["tls10"], configs["https_tls_version"]["tls11"]) == ("off", "off")
    assert wiring.state is not None
    entry = wiring.state.journal.read(result.journal_id)
    assert entry is not None and entry.status == "applied" and entry.outcome is not None
    assert entry.outcome["verified"] is True
    (action,) = entry.actions
    assert action.params["DeleteSpecificConfig"][0]["function"] == "http_force"
    assert action.before["http_force"]["args"] == {"enable": "on"}
    events = [e["data"]["eventName"] for e in cloud.trail.events()]
    assert "DeleteSpecificConfig" in events and "BatchSetCdnDomainConfig" in events
    assert events.index("DeleteSpecificConfig") < events.index("BatchSetCdnDomainConfig")  # the rival first
    # AND the edge really refuses TLS 1.1 now
    assert probe(edge, options=ProbeOptions(versions=("TLSv1.1",))).accepted_versions() == ()
    # AND once the propagation window has passed, the live verification proves every part of the fix
    assert result.live_verification is LiveVerification.PENDING
    assert verify_live.run_due(lifecycle_at(cloud, policy_path, wiring=wiring).ctx) == []  # not due yet
    (verification,) = verify_live.run_due(lifecycle_at(cloud, policy_path, later=31 * 60, wiring=wiring).ctx)
    assert verification.verdict is LiveVerification.EFFECTIVE, verification.detail
    assert verification.journal_id == result.journal_id
    for proof in ("accepts exactly TLSv1.2, TLSv1.3 with strong suites", "sends HSTS max-age=31536000",
                  "HTTP answers 301 to https://cdn.example.com/"):
        assert proof in verification.detail
    # AND a second run is a no-op
    again = lifecycle_at(cloud, policy_path, later=31 * 60, wiring=wiring).run(target)
    assert again.outcome is Outcome.COMPLIANT, again.reason
    assert again.actions == ()


def _configs(wiring: Any) -> dict[str, Any]:
    return {c.function_name: {"config_id": c.config_id, "args": c.args}
            for c in wiring.ports.cdn.domain_configs("cdn.example.com", CDN_POSTURE_FUNCTIONS)}
