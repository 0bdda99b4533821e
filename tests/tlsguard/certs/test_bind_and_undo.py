"""Issue 13, item 9, on localcloud: a custom domain without a certificate (cert.present) is fixed by binding a
covering CAS certificate, proved by the re-read and later by a live handshake; and ``tlsguard undo ID`` restores the
certificate a binding replaced (custom domain and CDN domain), comparing before it writes: a domain someone rebound
since is left alone. Everything through the official SDKs and the CLI, with real handshakes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from click.testing import CliRunner
from tlsguard import verify_live
from tlsguard.cli import cli
from tlsguard.model import LiveVerification, Mode, Outcome
from tlsguard.ports import BucketRef

from tests.support import wiring_for
from tests.tlsguard.certs._support import (
    cas_cert,
    cname,
    domain_policy,
    drift,
    lifecycle_at,
    one,
    run_one,
    seed_domains,
    served_fingerprint,
)

if TYPE_CHECKING:
    from pathlib import Path

    from click.testing import Result
    from tlsguard.wiring import Wiring

    from localcloud.cloud import LocalCloud

SITE = BucketRef("site", "cn-hangzhou")
WINDOW = 31 * 60  # past the default 30-minute propagation window


def bound_cert_id(wiring: Wiring, domain: str) -> str | None:
    assert wiring.ports.cname is not None
    return next(b.api.cert_id for b in wiring.ports.cname.list_cnames(SITE) if b.domain == domain)


def tlsguard(*args: str) -> Result:
    """The ``tlsguard`` command, as a person runs it; it never prints a traceback."""
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    return result


def report_of(result: Result) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(result.stdout)
    return document


# -- cert.present: a custom domain with no certificate bound ----------------------------------------------------
def test_a_custom_domain_without_a_certificate_is_bound_verified_and_proved_live(cloud: LocalCloud,
                                                                                 tmp_path: Path) -> None:
    # GIVEN a custom domain bound to a bucket without any certificate, and a covering certificate in CAS
    seed_domains(cloud, [{"name": "bare-cert", "kind": "valid", "domains": ["bare.example.com"]},
                         {"name": "elsewhere", "kind": "valid", "domains": ["other.example.org"]}],
                 cnames={"bare.example.com": None})
    policy = domain_policy(tmp_path)
    wiring = wiring_for(cloud, policy)
    target = cname("bare.example.com")
    assert bound_cert_id(wiring, "bare.example.com") is None
    # WHEN checked THEN cert.present is a finding (and the endpoint serves nothing for the name)
    planned = run_one(cloud, policy, target, apply=False, wiring=wiring)
    assert drift(planned) == {"cert.present/missing", "cert.reachable/unreachable"}
    assert "no certificate is bound to custom domain bare.example.com" in one(planned.findings,
                                                                              "cert.present").message
    # AND alert mode only reports it
    alerted = run_one(cloud, policy, target, mode=Mode.ALERT, wiring=wiring)
    assert alerted.outcome is Outcome.DRIFTED and bound_cert_id(wiring, "bare.example.com") is None
    # WHEN applied in enforce mode
    result = run_one(cloud, policy, target, wiring=wiring)
    # THEN the covering CAS certificate is bound (no PreviousCertId: nothing was bound), verified by the re-read
    bare = cas_cert(cloud, "bare-cert")
    assert result.outcome is Outcome.REMEDIATED, result.reason
    assert "re-read confirms it" in result.reason
    (action,) = result.actions
    assert action.checks == ("cert.present",)
    assert action.params == {"Bucket": "site", "Domain": "bare.example.com", "CertId": cloud.cas.oss_cert_id(bare),
                             "PreviousCertId": None}
    assert bound_cert_id(wiring, "bare.example.com") == cloud.cas.oss_cert_id(bare)
    assert wiring.state is not None
    entry = wiring.state.journal.read(result.journal_id)
    assert entry is not None and entry.outcome is not None and entry.outcome["verified"] is True
    # AND later the live verification is effective: a handshake with SNI gets the bound certificate
    assert result.live_verification is LiveVerification.PENDING
    assert verify_live.run_due(lifecycle_at(cloud, policy, wiring=wiring).ctx) == []  # inside the window
    (verification,) = verify_live.run_due(lifecycle_at(cloud, policy, later=WINDOW, wiring=wiring).ctx)
    assert verification.verdict is LiveVerification.EFFECTIVE, verification.detail
    assert verification.checks == ("cert.present",)
    assert served_fingerprint(wiring, "bare.example.com") == bare.info.fingerprint_sha1
    after = run_one(cloud, policy, target, later=WINDOW, wiring=wiring)
    assert after.outcome is Outcome.COMPLIANT and after.findings == (), after.reason
    # AND undo refuses: tlsguard never unbinds a certificate (there is no before-state to restore)
    undone = tlsguard("undo", result.journal_id, "--policy", str(policy), "--localcloud", _endpoints(cloud, tmp_path))
    assert undone.exit_code == 2, undone.output
    assert "no certificate was bound before: nothing to restore" in undone.output
    assert bound_cert_id(wiring, "bare.example.com") == cloud.cas.oss_cert_id(bare)


def test_a_domain_no_cas_certificate_covers_stays_unbound_and_says_so(cloud: LocalCloud, tmp_path: Path) -> None:
    seed_domains(cloud, [{"name": "elsewhere", "kind": "valid", "domains": ["other.example.org"]}],
                 cnames={"bare.example.com": None})
    policy = domain_policy(tmp_path)
    wiring = wiring_for(cloud, policy)
    result = run_one(cloud, policy, cname("bare.example.com"), wiring=wiring)
    assert result.outcome is Outcome.DRIFTED and result.error_code == "Unfixable"
    assert "no CAS certificate covers bare.example.com" in result.reason
    assert bound_cert_id(wiring, "bare.example.com") is None
    # a domain served elsewhere is excluded from the policy, and then not judged at all
    excluded = domain_policy(tmp_path, "  exclude: [bare.example.com]\n", name="excluded.yaml")
    apply = tlsguard("apply", "--policy", str(excluded), "--localcloud", _endpoints(cloud, tmp_path),
                     "--kind", "oss-cname", "--json")
    assert apply.exit_code == 0, apply.output
    assert report_of(apply)["targets"] == []


# -- undo of a certificate binding, through `tlsguard undo ID` ---------------------------------------------------
def _endpoints(cloud: LocalCloud, tmp_path: Path) -> str:
    from localcloud.cloud import write_endpoints

    path = tmp_path / "endpoints.json"
    if not path.exists():
        write_endpoints(path, cloud.endpoints)
    return str(path)


def _apply(cloud: LocalCloud, tmp_path: Path, policy: Path, target: str) -> dict[str, Any]:
    result = tlsguard("apply", "--policy", str(policy), "--localcloud", _endpoints(cloud, tmp_path),
                      "--target", target, "--json")
    assert result.exit_code == 0, result.output
    (item,) = report_of(result)["targets"]
    assert item["outcome"] == "remediated", item["reason"]
    return item


def _undo(cloud: LocalCloud, tmp_path: Path, policy: Path, journal_id: str) -> tuple[int, dict[str, Any]]:
    result = tlsguard("undo", journal_id, "--policy", str(policy), "--localcloud", _endpoints(cloud, tmp_path),
                      "--json")
    (item,) = report_of(result)["targets"]
    return result.exit_code, item


def test_undo_restores_the_certificate_a_custom_domain_binding_replaced(cloud: LocalCloud, tmp_path: Path) -> None:
    # GIVEN a renewal tlsguard bound (journaled)
    seed_domains(cloud, [{"name": "www-old", "kind": "expiring", "domains": ["www.example.com"], "days": 9},
                         {"name": "www-new", "kind": "valid", "domains": ["www.example.com"]}],
                 cnames={"www.example.com": "www-old"})
    policy = domain_policy(tmp_path)
    wiring = wiring_for(cloud, policy)
    old, new = cas_cert(cloud, "www-old"), cas_cert(cloud, "www-new")
    applied = _apply(cloud, tmp_path, policy, "www.example.com")
    assert applied["journal_id"].startswith("oss-cname/www.example.com/")
    assert served_fingerprint(wiring, "www.example.com") == new.info.fingerprint_sha1
    # WHEN it is undone with `tlsguard undo ID`
    code, item = _undo(cloud, tmp_path, policy, applied["journal_id"])
    # THEN the previous certificate is bound again (PutCname naming the current one as PreviousCertId) and served
    assert code == 0 and item["outcome"] == "remediated", item["reason"]
    assert item["reason"].startswith(f"restored the before-state of {applied['journal_id']}")
    (action,) = item["actions"]
    assert action["call"] == "PutCname" and action["status"] == "written"
    assert action["after"]["cert_id"] == cloud.cas.oss_cert_id(old)
    assert action["before"]["cert_id"] == cloud.cas.oss_cert_id(new)
    assert bound_cert_id(wiring, "www.example.com") == cloud.cas.oss_cert_id(old)
    assert served_fingerprint(wiring, "www.example.com") == old.info.fingerprint_sha1
    # AND the undo is journaled too, and undoing twice finds nothing to do
    shown = tlsguard("journal", "show", item["journal_id"], "--policy", str(policy), "--localcloud",
                     _endpoints(cloud, tmp_path), "--json")
    assert json.loads(shown.stdout)["intent"]["undo_of"] == applied["journal_id"]
    code, again = _undo(cloud, tmp_path, policy, applied["journal_id"])
    assert code == 2 and again["outcome"] == "refused", again["reason"]
    assert bound_cert_id(wiring, "www.example.com") == cloud.cas.oss_cert_id(old)


def test_undo_refuses_a_custom_domain_someone_rebound_since(cloud: LocalCloud, tmp_path: Path) -> None:
    seed_domains(cloud, [{"name": "www-old", "kind": "expiring", "domains": ["www.example.com"], "days": 9},
                         {"name": "www-new", "kind": "valid", "domains": ["www.example.com"]},
                         {"name": "theirs", "kind": "valid", "domains": ["www.example.com"], "days": 200}],
                 cnames={"www.example.com": "www-old"})
    policy = domain_policy(tmp_path)
    wiring = wiring_for(cloud, policy)
    applied = _apply(cloud, tmp_path, policy, "www.example.com")
    new, theirs = cas_cert(cloud, "www-new"), cas_cert(cloud, "theirs")
    # someone binds another certificate after tlsguard's write
    assert wiring.ports.cname is not None
    wiring.ports.cname.bind_cas_certificate(SITE, "www.example.com", cloud.cas.oss_cert_id(theirs),
                                            cloud.cas.oss_cert_id(new))
    writes = [e["data"]["eventName"] for e in cloud.trail.events()].count("PutCname")
    # WHEN tlsguard's binding is undone THEN the newer binding is kept and the undo says why
    code, item = _undo(cloud, tmp_path, policy, applied["journal_id"])
    assert code == 2 and item["outcome"] == "refused", item["reason"]
    assert "the cname_certificate changed after tlsguard wrote it; the newer state is kept" in item["reason"]
    assert bound_cert_id(wiring, "www.example.com") == cloud.cas.oss_cert_id(theirs)
    assert served_fingerprint(wiring, "www.example.com") == theirs.info.fingerprint_sha1
    assert [e["data"]["eventName"] for e in cloud.trail.events()].count("PutCname") == writes


def test_undo_restores_the_certificate_a_cdn_binding_replaced_and_refuses_after_a_rebind(cloud: LocalCloud,
                                                                                          tmp_path: Path) -> None:
    # GIVEN a CDN domain tlsguard rebound from an expired certificate
    seed_domains(cloud, [{"name": "cdn-old", "kind": "expired", "domains": ["cdn.example.com"]},
                         {"name": "cdn-new", "kind": "valid", "domains": ["cdn.example.com"]},
                         {"name": "cdn-theirs", "kind": "wildcard", "domains": ["cdn.example.com"], "days": 100}],
                 cdn={"cdn.example.com": "cdn-old"})
    policy = domain_policy(tmp_path)
    wiring = wiring_for(cloud, policy)
    assert wiring.ports.cdn is not None
    old, new, theirs = cas_cert(cloud, "cdn-old"), cas_cert(cloud, "cdn-new"), cas_cert(cloud, "cdn-theirs")
    first = _apply(cloud, tmp_path, policy, "cdn.example.com")
    assert first["actions"][0]["call"] == "SetCdnDomainSSLCertificate"
    assert wiring.ports.cdn.certificate_view("cdn.example.com").cert_id == str(new.id)
    # WHEN undone THEN the previous certificate is bound again (CertType cas) and served
    code, item = _undo(cloud, tmp_path, policy, first["journal_id"])
    assert code == 0 and item["outcome"] == "remediated", item["reason"]
    view = wiring.ports.cdn.certificate_view("cdn.example.com")
    assert (view.cert_id, view.cert_type) == (str(old.id), "cas")
    assert served_fingerprint(wiring, "cdn.example.com") == old.info.fingerprint_sha1
    # GIVEN tlsguard rebinds again, and then someone else binds their own certificate
    second = _apply(cloud, tmp_path, policy, "cdn.example.com")
    wiring.ports.cdn.set_cas_certificate("cdn.example.com", theirs.id)
    # WHEN the second binding is undone THEN theirs is kept
    code, item = _undo(cloud, tmp_path, policy, second["journal_id"])
    assert code == 2 and item["outcome"] == "refused", item["reason"]
    assert "the cdn_certificate changed after tlsguard wrote it; the newer state is kept" in item["reason"]
    assert wiring.ports.cdn.certificate_view("cdn.example.com").cert_id == str(theirs.id)
    assert served_fingerprint(wiring, "cdn.example.com") == theirs.info.fingerprint_sha1


def test_undo_of_an_unknown_or_malformed_journal_id_is_an_error_without_a_traceback(cloud: LocalCloud,
                                                                                     tmp_path: Path) -> None:
    seed_domains(cloud, [], cnames={})
    policy = domain_policy(tmp_path)
    endpoints = _endpoints(cloud, tmp_path)
    missing = tlsguard("undo", "oss-cname/www.example.com/20261201T000000000000Z-0123abcd", "--policy", str(policy),
                       "--localcloud", endpoints)
    assert missing.exit_code == 1 and "not found" in missing.output
    malformed = tlsguard("undo", "site.20261201", "--policy", str(policy), "--localcloud", endpoints)
    assert malformed.exit_code == 1
    assert "tlsguard: error: not a journal id" in malformed.output
