"""The policy file's ``certificates:`` section and the certs view's renderers (pure).

The renderers draw the run report's own target items (``TargetResult.to_dict()``: findings and the ``observed``
certificate facts), built here exactly as the lifecycle builds them.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest
from tlsguard.certs.model import ApiView, CertPolicy, LiveView
from tlsguard.certs.policy import cert_policy_from_mapping
from tlsguard.certs.report import render_html, render_table, sort_by_days_left, timeline_svg
from tlsguard.checks import evaluate, observe
from tlsguard.errors import ConfigError
from tlsguard.model import Mode, Outcome, Severity, TargetResult
from tlsguard.policy.loader import parse_policy

from tests.tlsguard.certs._support import DAY, NOW, actual_for, cname, desired_for

if TYPE_CHECKING:
    from tests.tlsguard.certs._support import Hierarchy, Pki

pytestmark = pytest.mark.unit


def test_policy_defaults_and_values() -> None:
    assert cert_policy_from_mapping(None) == CertPolicy()
    policy = cert_policy_from_mapping({"renew_before_days": 20, "alert_steps": [7, 30, 1], "include": ["*.Example.com"],
                                       "backup_certificates": {"WWW.example.com": 42},
                                       "propagation_grace_minutes": 10})
    assert policy.renew_before == dt.timedelta(days=20)
    assert policy.alert_steps == (30, 7, 1)
    assert policy.backup_cert_ids == {"www.example.com": 42}
    assert policy.in_scope("a.example.com") and not policy.in_scope("example.org")
    assert policy.propagation_grace == dt.timedelta(minutes=10)


@pytest.mark.parametrize("bad", [{"renew_before": 3}, {"renew_before_days": "x"}, {"alert_steps": [1.5]},
                                 {"backup_certificates": {"a": "b"}}, {"renew_fraction": 2},
                                 {"https_required": "yes"}, {"include": "a.com"}])
def test_policy_errors_name_the_field(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as info:
        cert_policy_from_mapping(bad, source="p.yaml")
    assert "p.yaml" in str(info.value) and "certificates" in str(info.value)


def test_the_certificates_section_of_the_one_policy_file() -> None:
    policy = parse_policy("""\
version: 1
defaults: {tls_versions: [TLSv1.2, TLSv1.3]}
certificates:
  renew_before_days: 20
  min_rsa_bits: 3072
  backup_certificates: {www.example.com: 42}
  cdn_https: {https_force: true, tls_versions: [TLSv1.2, TLSv1.3]}
""", "tlsguard.yaml")
    assert policy.certificates.renew_before == dt.timedelta(days=20)
    assert policy.certificates.min_rsa_bits == 3072
    assert policy.certificates.backup_cert_ids == {"www.example.com": 42}
    assert policy.cdn_https.https_force is True and policy.cdn_https.tls_versions == ("TLSv1.2", "TLSv1.3")
    assert policy.cdn_https.hsts is None  # not managed
    with pytest.raises(ConfigError) as info:
        parse_policy("version: 1\ndefaults: {}\ncertificates:\n  alert_steps: [1.5]\n", "tlsguard.yaml")
    assert "tlsguard.yaml" in str(info.value) and "certificates" in str(info.value)


def item_for(pki: Pki, hierarchy: Hierarchy, name: str, days: float | None) -> dict[str, Any]:
    """One report item as the lifecycle makes it: findings, and what a person wants to see (``observed``)."""
    target = cname(name, bucket="b")
    if days is None:  # nothing bound: expiry unknown
        actual = actual_for(target, (), hierarchy.trust, api=ApiView(https_enabled=False),
                            live=LiveView(endpoint="test", error="unrecognized_name"))
    else:
        leaf = pki.leaf(hierarchy.intermediate, name, not_before=NOW - 100 * DAY, not_after=NOW + days * DAY)
        actual = actual_for(target, (leaf.pem, hierarchy.intermediate.pem), hierarchy.trust,
                            api=ApiView(cert_id="1-x"))
    desired = desired_for(target)
    findings = evaluate(desired, actual, NOW)
    drifted = any(f.severity is not Severity.INFO for f in findings)
    return TargetResult(target, Outcome.DRIFTED if drifted else Outcome.COMPLIANT, "test", Mode.ENFORCE,
                        findings=tuple(findings), observed=observe(desired, actual, NOW)).to_dict()


def test_renderers(pki: Pki, hierarchy: Hierarchy) -> None:
    items = [item_for(pki, hierarchy, name, days) for name, days in (
        ("late.example.com", 200), ("bare.example.com", None), ("soon.example.com", 5), ("gone.example.com", -2))]
    table = render_table(items).splitlines()
    assert [line.split()[0] for line in table] == ["DAYS", "-2.0", "5.0", "200.0", "?"]
    assert "cert.expiry" in table[1] and "CRITICAL" in table[1]
    assert "cert.present" in table[4] and table[4].split()[1] == "-"
    assert [i["target"]["name"] for i in sort_by_days_left(items)] == ["gone.example.com", "soon.example.com",
                                                                       "late.example.com", "bare.example.com"]
    svg = timeline_svg(items, NOW)
    assert svg.count("<title>") == 3 and "today" in svg  # a domain with unknown expiry has no bar
    assert "bare.example.com" not in svg
    page = render_html(items, NOW, title="<x>")
    assert "&lt;x&gt;" in page and "<script" not in page
    assert "4 domains" in page and "bare.example.com" in page
