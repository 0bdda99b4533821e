"""``tlsguard certs`` against localcloud: the certificate view (table soonest expiry first, --json, --html) of the
same plan run every command makes; renewal is ``tlsguard apply --kind oss-cname --kind cdn-domain``."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from click.testing import CliRunner
from tlsguard.certs.cli import certs
from tlsguard.certs.report import sort_by_days_left
from tlsguard.cli import cli
from tlsguard.report import EXIT_DRIFT, EXIT_OK

from tests.support import STATE_BUCKET
from tests.tlsguard.certs._support import domain_policy

if TYPE_CHECKING:
    from pathlib import Path

    from click.testing import Result

    from localcloud.cloud import LocalCloud

DOMAIN_KINDS = ("--kind", "oss-cname", "--kind", "cdn-domain")


def seed_fleet(cloud: LocalCloud) -> None:
    cloud.seed({
        "certificates": [
            {"name": "www-old", "kind": "expiring", "domains": ["www.example.com"], "days": 9},
            {"name": "www-new", "kind": "valid", "domains": ["www.example.com"]},
            {"name": "shop", "kind": "expiring", "domains": ["shop.example.com"], "days": 3},
            {"name": "blog", "kind": "expired", "domains": ["blog.example.com"]},
            {"name": "cdn", "kind": "valid", "domains": ["cdn.example.com"], "days": 60},
        ],
        "buckets": [{"name": STATE_BUCKET},
                    {"name": "site", "cnames": [{"domain": "www.example.com", "certificate": "www-old"},
                                                {"domain": "shop.example.com", "certificate": "shop"},
                                                {"domain": "blog.example.com", "certificate": "blog"}]}],
        "cdn_domains": [{"name": "cdn.example.com", "certificate": "cdn"}],
    })


def invoke(command: Any, *args: str) -> Result:
    result = CliRunner().invoke(command, list(args))
    assert "Traceback" not in result.output, result.output
    return result


def view(policy: Path, endpoints_file: Path, *args: str) -> Result:
    return invoke(certs, "--policy", str(policy), "--localcloud", str(endpoints_file), *args)


def by_domain(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["target"]["name"]: item for item in document["targets"]}


def test_table_is_sorted_by_days_left(cloud: LocalCloud, endpoints_file: Path, tmp_path: Path) -> None:
    seed_fleet(cloud)
    result = view(domain_policy(tmp_path), endpoints_file)
    assert result.exit_code == EXIT_DRIFT, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["DAYS", "EXPIRES", "(UTC)", "DOMAIN"]
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[1:5]]
    assert [row[2] for row in rows] == ["blog.example.com", "shop.example.com", "www.example.com", "cdn.example.com"]
    assert [float(row[0]) for row in rows] == sorted(float(row[0]) for row in rows)
    assert rows[0][3] == "oss-cname/site" and rows[3][3] == "cdn-domain"
    assert "cert.expiry" in lines[1] and "CRITICAL" in lines[1] and "drifted" in lines[1]
    assert rows[3][5:7] == ["OK", "compliant"]
    assert lines[5].startswith("certs (enforce): 4 targets")


def test_json_report(cloud: LocalCloud, endpoints_file: Path, tmp_path: Path) -> None:
    seed_fleet(cloud)
    result = view(domain_policy(tmp_path), endpoints_file, "--json")
    assert result.exit_code == EXIT_DRIFT
    document = json.loads(result.stdout)
    assert document["report_version"] == "2.0" and document["command"] == "certs"
    assert document["summary"]["by_kind"] == {"oss-bucket": 0, "oss-cname": 3, "cdn-domain": 1}
    ordered = [item["target"]["name"] for item in sort_by_days_left(document["targets"])]
    assert ordered == ["blog.example.com", "shop.example.com", "www.example.com", "cdn.example.com"]
    www = by_domain(document)["www.example.com"]
    assert {f["check"] for f in www["findings"]} == {"cert.expiry"}
    (due,) = www["findings"]
    assert due["details"]["ladder"] == "14d" and due["details"]["alert_state"].startswith("renewal_due:")
    assert www["observed"]["chain"] == "VERIFIED"
    assert "LocalCloud RSA Issuing CA 1" in www["observed"]["issuer"]
    assert www["observed"]["days_left"] == 9.0 and www["observed"]["key"] == "RSA-2048"
    assert [a["status"] for a in www["actions"]] == ["planned"]  # the renewal apply would make
    expired = [f for item in document["targets"] for f in item["findings"] if f["details"]["alert_state"] == "expired"]
    assert len(expired) == 1 and expired[0]["check"] == "cert.expiry"


def test_html_report_is_self_contained_with_a_timeline(cloud: LocalCloud, endpoints_file: Path,
                                                       tmp_path: Path) -> None:
    seed_fleet(cloud)
    out = tmp_path / "certs.html"
    result = view(domain_policy(tmp_path), endpoints_file, "--html", str(out))
    assert result.exit_code == EXIT_DRIFT
    assert f"HTML report written to {out}" in result.output
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "</svg>" in page
    for external in ("<script", "src=", "<link", "@import", "url("):
        assert external not in page
    svg = page[page.index("<svg"):page.index("</svg>")]
    for domain in ("www.example.com", "shop.example.com", "blog.example.com", "cdn.example.com"):
        assert domain in svg
    assert svg.index("blog.example.com") < svg.index("shop.example.com") < svg.index("cdn.example.com")
    assert "PutCname: bind CAS certificate" in page  # the planned renewal is shown with the findings


def test_apply_renews_what_cas_can_and_alerts_the_rest(cloud: LocalCloud, endpoints_file: Path,
                                                       tmp_path: Path) -> None:
    seed_fleet(cloud)
    policy = domain_policy(tmp_path)
    base = ["--policy", str(policy), "--localcloud", str(endpoints_file), *DOMAIN_KINDS, "--json"]
    planned = json.loads(invoke(cli, "plan", *base).stdout)
    assert [a["call"] for a in by_domain(planned)["www.example.com"]["actions"]] == ["PutCname"]
    result = invoke(cli, "apply", *base)
    assert result.exit_code == EXIT_DRIFT, result.output  # shop and blog need a person
    done = by_domain(json.loads(result.stdout))
    assert {name: item["outcome"] for name, item in done.items()} == {
        "www.example.com": "remediated", "shop.example.com": "drifted", "blog.example.com": "drifted",
        "cdn.example.com": "compliant"}
    assert done["www.example.com"]["journal_id"].startswith("oss-cname/www.example.com/")
    assert done["www.example.com"]["live_verification"] == "pending"
    for name in ("shop.example.com", "blog.example.com"):
        assert done[name]["error_code"] == "Unfixable"
        assert f"no CAS certificate covers {name}" in done[name]["reason"]
    alerts = json.loads(result.stdout)["alerts"]
    assert alerts["new"] == 2 and alerts["remediated"] == 1
    # the view now shows the renewed certificate
    after = by_domain(json.loads(view(policy, endpoints_file, "--json").stdout))
    assert [f for f in after["www.example.com"]["findings"] if f["severity"] != "INFO"] == []
    assert after["www.example.com"]["observed"]["days_left"] > 300


def test_healthy_fleet_exits_zero(cloud: LocalCloud, endpoints_file: Path, tmp_path: Path) -> None:
    cloud.seed({"certificates": [{"name": "ok", "kind": "valid", "domains": ["ok.example.com"]}],
                "buckets": [{"name": STATE_BUCKET},
                            {"name": "site", "cnames": [{"domain": "ok.example.com", "certificate": "ok"}]}]})
    result = view(domain_policy(tmp_path), endpoints_file)
    assert result.exit_code == EXIT_OK, result.output


def test_target_limits_the_view_and_an_unknown_one_is_an_error(cloud: LocalCloud, endpoints_file: Path,
                                                               tmp_path: Path) -> None:
    seed_fleet(cloud)
    policy = domain_policy(tmp_path)
    one = json.loads(view(policy, endpoints_file, "--target", "cdn.example.com", "--json").stdout)
    assert [item["target"]["name"] for item in one["targets"]] == ["cdn.example.com"] and one["exit_code"] == 0
    missing = view(policy, endpoints_file, "--target", "nowhere.example.com")
    assert missing.exit_code == 1
    assert "target nowhere.example.com not found" in missing.output


def test_cdn_posture_from_policy_file(cloud: LocalCloud, endpoints_file: Path, tmp_path: Path) -> None:
    cloud.seed({"certificates": [{"name": "cdn", "kind": "valid", "domains": ["cdn.example.com"]}],
                "buckets": [{"name": STATE_BUCKET}],
                "cdn_domains": [{"name": "cdn.example.com", "certificate": "cdn",
                                 "configs": {"http_force": {"enable": "on"}}}]})
    policy = domain_policy(tmp_path, "  cdn_https:\n    https_force: true\n    hsts: {max_age: 31536000}\n",
                           extra="verify: {propagation_minutes: 0}\n")
    drifted = view(policy, endpoints_file, "--json")
    assert drifted.exit_code == EXIT_DRIFT
    (item,) = json.loads(drifted.stdout)["targets"]
    assert item["outcome"] == "drifted"
    assert {f["check"] for f in item["findings"]} == {"cdn.force_https", "cdn.hsts"}
    fixed = invoke(cli, "apply", "--policy", str(policy), "--localcloud", str(endpoints_file), "--kind",
                   "cdn-domain", "--json")
    assert fixed.exit_code == EXIT_OK, fixed.output
    (item,) = json.loads(fixed.stdout)["targets"]
    assert item["outcome"] == "remediated" and item["live_verification"] == "pending"
    # the live verification is due at once (propagation 0): `tlsguard verify` proves the redirect and HSTS
    verified = invoke(cli, "verify", "--policy", str(policy), "--localcloud", str(endpoints_file), "--json")
    assert verified.exit_code == EXIT_OK, verified.output
    (verification,) = json.loads(verified.stdout)["verifications"]
    assert verification["live_verification"] == "effective", verification["detail"]
    clean = view(policy, endpoints_file, "--json")
    assert clean.exit_code == EXIT_OK, clean.output
    assert json.loads(clean.stdout)["targets"][0]["outcome"] == "compliant"
