"""Renewal by rebinding on localcloud, through the one lifecycle: CAS candidates over RPC, OSS PutCname (CertId +
PreviousCertId) and CDN SetCdnDomainSSLCertificate through the SDKs, re-read, journaled in the state bucket,
proved by a live handshake once the propagation window has passed, and undone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from tlsguard import verify_live
from tlsguard.cli import cli
from tlsguard.errors import CloudError
from tlsguard.model import LiveVerification, Mode, Outcome
from tlsguard.ports import BucketRef
from tlsguard.retry import RetryPolicy
from tlsguard.wiring import alert_path

from tests.support import wiring_for
from tests.tlsguard.certs._support import (
    cas_cert,
    cdn_domain,
    cname,
    domain_policy,
    drift,
    found,
    lifecycle_at,
    run_one,
    seed_domains,
    served_fingerprint,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tlsguard.model import TargetResult
    from tlsguard.wiring import Wiring

    from localcloud.cloud import LocalCloud

WWW = cname("www.example.com")
SITE = BucketRef("site", "cn-hangzhou")
WINDOW = 31 * 60  # past the default 30-minute propagation window


def bound_cert_id(wiring: Wiring, domain: str, bucket: BucketRef = SITE) -> str | None:
    """What ListCname says is bound to ``domain`` (OSS's ``<id>-<region>`` form)."""
    assert wiring.ports.cname is not None
    return next(b.api.cert_id for b in wiring.ports.cname.list_cnames(bucket) if b.domain == domain)


def digest(wiring: Wiring, cloud: LocalCloud, *results: TargetResult) -> dict[str, Any] | None:
    """The one alert digest a run sends (deduplicated against alert state in the state bucket; None: nothing)."""
    alerts = alert_path(wiring, cloud.clock.time)
    for result in results:
        alerts.observe(result)
    return alerts.flush(command="apply", mode="enforce").message


def said(item: dict[str, Any]) -> str:
    """What an alert item tells a person: the finding, and what the run did (or why it could not)."""
    return f"{item['message']} {item.get('reason') or ''}"


def test_oss_custom_domain_is_rebound_from_cas_verified_journaled_and_undone(cloud: LocalCloud,
                                                                             tmp_path: Path) -> None:
    # GIVEN a custom domain whose certificate expires in 10 days, and a renewed certificate already in CAS
    seed_domains(cloud, [
        {"name": "www-2026", "kind": "expiring", "domains": ["www.example.com"], "days": 10},
        {"name": "www-2027", "kind": "valid", "domains": ["www.example.com"]},
        {"name": "unrelated", "kind": "valid", "domains": ["other.example.org"]},
    ], cnames={"www.example.com": "www-2026"})
    policy = domain_policy(tmp_path)
    wiring = wiring_for(cloud, policy)
    renewed, old = cas_cert(cloud, "www-2027"), cas_cert(cloud, "www-2026")
    planned = run_one(cloud, policy, WWW, apply=False, wiring=wiring)
    assert drift(planned) == {"cert.expiry/renewal_due"} and planned.outcome is Outcome.DRIFTED
    # WHEN the domain is applied in enforce mode
    result = run_one(cloud, policy, WWW, wiring=wiring)
    # THEN the renewed certificate is bound with the old id as PreviousCertId, re-read, and served live
    assert result.outcome is Outcome.REMEDIATED, result.reason
    (action,) = result.actions
    assert action.call == "PutCname" and action.checks == ("cert.expiry",)
    assert action.params == {"Bucket": "site", "Domain": "www.example.com", "CertId": cloud.cas.oss_cert_id(renewed),
                             "PreviousCertId": cloud.cas.oss_cert_id(old)}
    assert bound_cert_id(wiring, "www.example.com") == cloud.cas.oss_cert_id(renewed)
    assert served_fingerprint(wiring, "www.example.com") == renewed.info.fingerprint_sha1
    # AND journaled: the intent with before and after, the outcome verified by the re-read
    assert result.journal_id.startswith("oss-cname/www.example.com/")
    assert wiring.state is not None
    entry = wiring.state.journal.read(result.journal_id)
    assert entry is not None and entry.status == "applied" and entry.outcome is not None
    assert entry.actions[0].before["cert_id"] == cloud.cas.oss_cert_id(old)
    assert entry.actions[0].after["fingerprint"] == renewed.info.fingerprint_sha1
    assert entry.outcome["verified"] is True and entry.outcome["live_verification"] == "pending"
    # the write is recorded in ActionTrail like every OSS write
    assert "PutCname" in [e["data"]["eventName"] for e in cloud.trail.events()]
    # AND while the live verification waits, the domain is pending; after the window it is proved by a handshake
    waiting = run_one(cloud, policy, WWW, wiring=wiring)
    assert waiting.outcome is Outcome.PENDING and waiting.actions == ()
    (verification,) = verify_live.run_due(lifecycle_at(cloud, policy, later=WINDOW, wiring=wiring).ctx)
    assert verification.verdict is LiveVerification.EFFECTIVE, verification.detail
    assert verification.journal_id == result.journal_id and verification.checks == ("cert.expiry",)
    assert "serves www.example.com" in verification.detail
    assert wiring.state.pending.all() == []
    # AND a later run finds nothing to do
    again = run_one(cloud, policy, WWW, later=WINDOW, wiring=wiring)
    assert again.outcome is Outcome.COMPLIANT and again.actions == (), again.reason
    # AND undo restores the previous certificate, journaled as an undo of the entry
    undone = lifecycle_at(cloud, policy, wiring=wiring).undo(result.journal_id)
    assert undone.outcome is Outcome.REMEDIATED, undone.reason
    assert undone.reason.startswith(f"restored the before-state of {result.journal_id} (PutCname)")
    assert bound_cert_id(wiring, "www.example.com") == cloud.cas.oss_cert_id(old)
    assert served_fingerprint(wiring, "www.example.com") == old.info.fingerprint_sha1
    undo_entry = wiring.state.journal.read(undone.journal_id)
    assert undo_entry is not None and undo_entry.intent["kind"] == "undo"
    assert undo_entry.intent["undo_of"] == result.journal_id


def test_a_concurrent_rebind_is_not_overwritten(cloud: LocalCloud, tmp_path: Path) -> None:
    # GIVEN an expired certificate, and someone else fixing it while tlsguard looks for a renewal in CAS
    seed_domains(cloud, [
        {"name": "old", "kind": "expired", "domains": ["www.example.com"]},
        {"name": "theirs", "kind": "valid", "domains": ["www.example.com"], "days": 100},
        {"name": "ours", "kind": "valid", "domains": ["www.example.com"], "days": 300},
    ], cnames={"www.example.com": "old"})
    policy = domain_policy(tmp_path)
    wiring = wiring_for(cloud, policy)
    theirs, old = cas_cert(cloud, "theirs"), cas_cert(cloud, "old")
    real_cas, cname_port = wiring.ports.cas, wiring.ports.cname
    assert real_cas is not None and cname_port is not None

    class SomeoneRebindsMeanwhile:
        """The real CAS adapter; while tlsguard lists CAS, an operator binds "theirs" (PutCname via the SDK)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real_cas, name)

        def candidates(self, domain: str = "") -> Any:
            cname_port.bind_cas_certificate(SITE, "www.example.com", cloud.cas.oss_cert_id(theirs),
                                            cloud.cas.oss_cert_id(old))
            return real_cas.candidates(domain)

    wiring.ports.cas = SomeoneRebindsMeanwhile()  # type: ignore[assignment]
    # WHEN tlsguard applies
    result = run_one(cloud, policy, WWW, wiring=wiring)
    # THEN compare-before-write sees the new binding, judges it afresh and writes nothing
    assert result.outcome is Outcome.COMPLIANT, result.reason
    assert "corrected by someone else before tlsguard wrote" in result.reason
    assert result.actions == () and not result.applied
    assert bound_cert_id(wiring, "www.example.com") == cloud.cas.oss_cert_id(theirs)
    assert served_fingerprint(wiring, "www.example.com") == theirs.info.fingerprint_sha1
    assert [e["data"]["eventName"] for e in cloud.trail.events()].count("PutCname") == 1  # theirs only


def test_previous_cert_id_makes_oss_refuse_a_stale_binding(cloud: LocalCloud, tmp_path: Path) -> None:
    """The last guard of a binding write: PutCname names the certificate it replaces, and OSS refuses it when
    someone rebound the domain in between (no Force)."""
    seed_domains(cloud, [
        {"name": "old", "kind": "expired", "domains": ["www.example.com"]},
        {"name": "theirs", "kind": "valid", "domains": ["www.example.com"], "days": 100},
        {"name": "ours", "kind": "valid", "domains": ["www.example.com"], "days": 300},
    ], cnames={"www.example.com": "old"})
    wiring = wiring_for(cloud, domain_policy(tmp_path))
    assert wiring.ports.cname is not None
    old, theirs, ours = cas_cert(cloud, "old"), cas_cert(cloud, "theirs"), cas_cert(cloud, "ours")
    wiring.ports.cname.bind_cas_certificate(SITE, "www.example.com", cloud.cas.oss_cert_id(theirs),
                                            cloud.cas.oss_cert_id(old))
    with pytest.raises(CloudError) as info:
        wiring.ports.cname.bind_cas_certificate(SITE, "www.example.com", cloud.cas.oss_cert_id(ours),
                                                cloud.cas.oss_cert_id(old))
    assert "PreviousCertId" in str(info.value)
    assert served_fingerprint(wiring, "www.example.com") == theirs.info.fingerprint_sha1


def test_cdn_domain_is_rebound_with_cert_type_cas(cloud: LocalCloud, tmp_path: Path) -> None:
    seed_domains(cloud, [
        {"name": "cdn-old", "kind": "expired", "domains": ["cdn.example.com"]},
        {"name": "cdn-new", "kind": "wildcard", "domains": ["cdn.example.com"]},
    ], cdn={"cdn.example.com": "cdn-old"})
    policy = domain_policy(tmp_path)
    wiring = wiring_for(cloud, policy)
    result = run_one(cloud, policy, cdn_domain("cdn.example.com"), wiring=wiring)
    new = cas_cert(cloud, "cdn-new")
    assert result.outcome is Outcome.REMEDIATED, result.reason
    (action,) = result.actions
    assert action.call == "SetCdnDomainSSLCertificate"
    assert action.params == {"DomainName": "cdn.example.com", "SSLProtocol": "on", "CertType": "cas",
                             "CertId": new.id, "CertRegion": "cn-hangzhou"}
    assert served_fingerprint(wiring, "cdn.example.com") == new.info.fingerprint_sha1
    assert wiring.ports.cdn is not None
    view = wiring.ports.cdn.certificate_view("cdn.example.com")
    assert view.cert_id == str(new.id) and view.cert_type == "cas" and view.status == "success"
    assert "SetCdnDomainSSLCertificate" in [e["data"]["eventName"] for e in cloud.trail.events()]
    after = run_one(cloud, policy, cdn_domain("cdn.example.com"), later=WINDOW, wiring=wiring, apply=False)
    assert drift(after) == set()


def test_backup_certificate_when_invalid_and_no_renewal(cloud: LocalCloud, tmp_path: Path) -> None:
    seed_domains(cloud, [
        {"name": "broken", "kind": "no_intermediate", "domains": ["www.example.com"]},
        {"name": "backup", "kind": "valid", "domains": ["www.example.com"], "days": 60},
    ], cnames={"www.example.com": "broken"})
    backup = cas_cert(cloud, "backup")
    # the backup (60 days) expires before the broken certificate: only as a backup may it replace it
    policy = domain_policy(tmp_path, f"  backup_certificates: {{www.example.com: {backup.id}}}\n")
    wiring = wiring_for(cloud, policy)
    without_backup = run_one(cloud, domain_policy(tmp_path, name="no-backup.yaml"), WWW, apply=False)
    assert drift(without_backup) == {"cert.chain/incomplete"}
    assert "does not outlive the bound one" in without_backup.reason
    result = run_one(cloud, policy, WWW, wiring=wiring)
    assert result.outcome is Outcome.REMEDIATED, result.reason
    assert result.actions[0].params["CertId"] == cloud.cas.oss_cert_id(backup)
    assert served_fingerprint(wiring, "www.example.com") == backup.info.fingerprint_sha1


def test_nothing_can_fix_it_alerts_with_days_left_and_what_is_missing(cloud: LocalCloud, tmp_path: Path) -> None:
    seed_domains(cloud, [
        {"name": "dying", "kind": "expiring", "domains": ["shop.example.com"], "days": 5},
        {"name": "other", "kind": "valid", "domains": ["blog.example.com"]},
    ], cnames={"shop.example.com": "dying"})
    policy = domain_policy(tmp_path)
    wiring = wiring_for(cloud, policy)
    result = run_one(cloud, policy, cname("shop.example.com"), wiring=wiring)
    assert result.outcome is Outcome.DRIFTED and result.error_code == "Unfixable"
    assert result.actions == () and not result.applied
    assert "5.0 days left" in result.reason
    assert "no CAS certificate covers shop.example.com" in result.reason
    assert served_fingerprint(wiring, "shop.example.com") == cas_cert(cloud, "dying").info.fingerprint_sha1
    # the alert says the same, once
    sent = digest(wiring, cloud, result)
    assert sent is not None
    (item,) = sent["needs_attention"]
    assert (item["check"], item["severity"]) == ("cert.expiry", "HIGH")
    assert "5.0 days left" in said(item) and "no CAS certificate covers shop.example.com" in said(item)
    assert digest(wiring, cloud, result) is None  # the next run: still open, already alerted


def test_weak_cas_candidates_are_never_bound(cloud: LocalCloud, tmp_path: Path) -> None:
    """Issue 13, item 9: an RSA-1024 key, a SHA-1 signature, an incomplete chain, an earlier expiry: apply leaves
    the binding unchanged and says why each was rejected; a good candidate added among them is chosen."""
    seed_domains(cloud, [
        {"name": "bound", "kind": "expiring", "domains": ["www.example.com"], "days": 10},
        {"name": "weak-key", "kind": "rsa1024", "domains": ["www.example.com"], "days": 500},
        {"name": "sha1-signed", "kind": "sha1", "domains": ["www.example.com"], "days": 500},
        {"name": "no-intermediate", "kind": "no_intermediate", "domains": ["www.example.com"], "days": 500},
        {"name": "too-short", "kind": "expiring", "domains": ["www.example.com"], "days": 5},
    ], cnames={"www.example.com": "bound"})
    policy = domain_policy(tmp_path)
    wiring = wiring_for(cloud, policy)
    bound = cas_cert(cloud, "bound")
    # WHEN applied in enforce mode
    result = run_one(cloud, policy, WWW, wiring=wiring)
    # THEN nothing is bound, and the reason names every candidate and why it was rejected
    assert result.outcome is Outcome.DRIFTED and result.error_code == "Unfixable", result.reason
    assert result.actions == () and result.journal_id == ""
    assert bound_cert_id(wiring, "www.example.com") == cloud.cas.oss_cert_id(bound)
    assert served_fingerprint(wiring, "www.example.com") == bound.info.fingerprint_sha1
    assert "PutCname" not in [e["data"]["eventName"] for e in cloud.trail.events()]
    why = {
        "weak-key": "RSA 1024-bit key (minimum 2048)",
        "sha1-signed": "signed with SHA1",
        "no-intermediate": "its chain is incomplete (issuer ",
    }
    for name, reason in why.items():
        assert f"{cas_cert(cloud, name).id} ({name}): {reason}" in result.reason
    assert f"{cas_cert(cloud, 'too-short').id} (too-short) does not outlive the bound one" in result.reason
    # AND the alert carries the same explanation
    sent = digest(wiring, cloud, result)
    assert sent is not None
    (item,) = sent["needs_attention"]
    assert all(reason in said(item) for reason in why.values())
    # WHEN a good certificate is uploaded to CAS among them THEN it, and nothing weaker, is bound
    cloud.seed({"certificates": [{"name": "good", "kind": "valid", "domains": ["www.example.com"]}]})
    good = cas_cert(cloud, "good")
    fixed = run_one(cloud, policy, WWW, wiring=wiring)
    assert fixed.outcome is Outcome.REMEDIATED, fixed.reason
    assert fixed.actions[0].params["CertId"] == cloud.cas.oss_cert_id(good)
    assert served_fingerprint(wiring, "www.example.com") == good.info.fingerprint_sha1


def test_dry_run_alert_mode_and_missing_state_bucket_write_nothing(cloud: LocalCloud, tmp_path: Path) -> None:
    seed_domains(cloud, [
        {"name": "old", "kind": "expired", "domains": ["www.example.com"]},
        {"name": "new", "kind": "valid", "domains": ["www.example.com"]},
    ], cnames={"www.example.com": "old"})
    policy = domain_policy(tmp_path)
    wiring = wiring_for(cloud, policy)
    planned = run_one(cloud, policy, WWW, mode=Mode.DRY_RUN, wiring=wiring)
    assert planned.outcome is Outcome.DRIFTED and "dry-run, nothing written" in planned.reason
    assert [a.call for a in planned.actions] == ["PutCname"] and not planned.applied
    alerted = run_one(cloud, policy, WWW, mode=Mode.ALERT, wiring=wiring)
    assert alerted.outcome is Outcome.DRIFTED and "alert mode, nothing written" in alerted.reason
    stateless = domain_policy(tmp_path, state="", name="stateless.yaml")
    refused = run_one(cloud, stateless, WWW)
    assert refused.outcome is Outcome.FAILED and refused.error_code == "RemediationRefused"
    assert "refusing to write without a journal" in refused.reason
    assert served_fingerprint(wiring, "www.example.com") == cas_cert(cloud, "old").info.fingerprint_sha1
    assert "PutCname" not in [e["data"]["eventName"] for e in cloud.trail.events()]


def test_an_unwritable_journal_means_no_write(cloud: LocalCloud, tmp_path: Path) -> None:
    """The intent is filed before the first write: when the journal cannot be written, nothing is."""
    seed_domains(cloud, [
        {"name": "old", "kind": "expired", "domains": ["www.example.com"]},
        {"name": "new", "kind": "valid", "domains": ["www.example.com"]},
    ], cnames={"www.example.com": "old"})
    policy = domain_policy(tmp_path, state="no-such-state-bucket")
    wiring = wiring_for(cloud, policy, retry=RetryPolicy(attempts=1))
    result = lifecycle_at(cloud, policy, wiring=wiring).run(WWW)
    assert result.outcome is Outcome.FAILED and result.error_code == "NoSuchBucket", result.reason
    assert result.journal_id == "" and not result.applied
    assert served_fingerprint(wiring, "www.example.com") == cas_cert(cloud, "old").info.fingerprint_sha1
    assert "PutCname" not in [e["data"]["eventName"] for e in cloud.trail.events()]


def test_cli_refuses_an_unusable_state_bucket_before_writing(cloud: LocalCloud, endpoints_file: Path,
                                                             tmp_path: Path) -> None:
    seed_domains(cloud, [{"name": "old", "kind": "expired", "domains": ["www.example.com"]},
                         {"name": "new", "kind": "valid", "domains": ["www.example.com"]}],
                 cnames={"www.example.com": "old"})
    policy = domain_policy(tmp_path, state="no-such-state-bucket")
    result = CliRunner().invoke(cli, ["apply", "--policy", str(policy), "--localcloud", str(endpoints_file),
                                      "--kind", "oss-cname"])
    assert result.exit_code == 1, result.output
    assert "bucket does not exist" in result.output and "Traceback" not in result.output
    wiring = wiring_for(cloud, domain_policy(tmp_path, name="ok.yaml"))
    assert served_fingerprint(wiring, "www.example.com") == cas_cert(cloud, "old").info.fingerprint_sha1
    assert found(run_one(cloud, domain_policy(tmp_path, name="ok.yaml"), WWW, apply=False)) == {
        "cert.expiry/expired"}
