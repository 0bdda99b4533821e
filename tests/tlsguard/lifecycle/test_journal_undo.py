"""The journal and undo (issue 13, item 7) for every kind of target, through the ``tlsguard`` CLI against
localcloud: ``journal list`` (``--target``, ``--since``, incomplete entries), ``journal show``, ``undo``.

Undo compares before it writes: an action whose facet changed since tlsguard wrote it is left alone (that action
only), a bucket policy changed since keeps every statement but the one tlsguard added, and what cannot be restored
(default encryption that did not exist) is reported action by action while the other actions are undone. No
command prints a traceback: a bad id, a missing entry or a missing state bucket is one line and exit 1.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import pytest
from tlsguard import verify_live
from tlsguard.model import Action, TargetRef, Trigger
from tlsguard.policy.model import RawHttpsConfig
from tlsguard.ports import BucketRef
from tlsguard.state import new_journal_id

from tests.support import ACCOUNT, lifecycle_for, outsider, write_policy
from tests.tlsguard.lifecycle._fixtures import (
    LEGACY_HTTPS,
    STATE_BUCKET,
    bucket_snapshot,
    cdn_snapshot,
    cli,
    compliant_bucket,
    json_out,
)

if TYPE_CHECKING:
    from pathlib import Path

POLICY = f"""
version: 1
mode: enforce
defaults:
  tls_versions: [TLSv1.2, TLSv1.3]
  cipher_suites: {{mode: strong}}
  https_only: true
  encryption: {{algorithm: AES256}}
state: {{bucket: {STATE_BUCKET}}}
certificates:
  renew_before_days: 30
  cdn_https:
    https_force: true
    hsts: {{max_age: 5184000}}
    tls_versions: [TLSv1.2, TLSv1.3]
verify: {{propagation_minutes: 0}}
"""

#: A statement somebody else put in the bucket policy: tlsguard must never lose it.
PARTNER_READ = {"Effect": "Allow", "Principal": ["20000000000001"], "Action": ["oss:GetObject"],
                "Resource": ["acs:oss:*:*:{bucket}/*"]}
#: The CDN posture the policy declares, as it would be seeded on a compliant domain.
COMPLIANT_CDN_CONFIGS = {
    "https_force": {"enable": "on", "https_rewrite": "301"},
    "HSTS": {"enabled": "on", "https_hsts_max_age": "5184000", "https_hsts_include_subdomains": "off"},
    "https_tls_version": {"tls10": "off", "tls11": "off", "tls12": "on", "tls13": "on", "ciphersuitegroup": "all"},
}


def _partner(bucket: str) -> dict[str, Any]:
    return json.loads(json.dumps(PARTNER_READ).replace("{bucket}", bucket))


def _legacy_bucket(name: str) -> dict[str, Any]:
    """TLS 1.0 to 1.3 with every suite, no HTTPS-only Deny (another statement instead), no default encryption."""
    bucket = compliant_bucket(name, https_config=LEGACY_HTTPS,
                              policy={"Version": "1", "Statement": [_partner(name)]})
    del bucket["encryption"]
    return bucket


@pytest.fixture
def common(tmp_path: Path, endpoints_file: Path) -> list[str]:
    return ["--policy", str(write_policy(tmp_path, POLICY)), "--localcloud", str(endpoints_file)]


def _apply(common: list[str], target: str) -> dict[str, Any]:
    result = cli("apply", *common, "--json", "--target", target)
    assert result.exit_code == 0, result.output
    (item,) = json_out(result)["targets"]
    assert item["outcome"] == "remediated" and item["journal_id"], item
    return dict(item)


def _undo(common: list[str], journal_id: str, exit_code: int) -> dict[str, Any]:
    result = cli("undo", journal_id, *common, "--json")
    assert result.exit_code == exit_code, result.output
    (item,) = json_out(result)["targets"]
    return dict(item)


def _show(common: list[str], journal_id: str) -> dict[str, Any]:
    result = cli("journal", "show", journal_id, *common, "--json")
    assert result.exit_code == 0, result.output
    return dict(json_out(result))


def _statements(cloud: Any, bucket: str) -> list[dict[str, Any]]:
    policy = bucket_snapshot(cloud, bucket)["policy"]
    document = json.loads(policy) if isinstance(policy, str) else policy
    return list(document["Statement"])


def _is_https_only(statement: dict[str, Any]) -> bool:
    return statement.get("Effect") == "Deny" and "acs:SecureTransport" in json.dumps(statement.get("Condition"))


def _cas_id(cloud: Any, name: str) -> int:
    certificate = cloud.cas.find_by_name(ACCOUNT, name)
    assert certificate is not None
    return int(certificate.id)


# -- buckets -----------------------------------------------------------------------------------------------------
def test_a_bucket_entry_is_shown_and_undone_action_by_action(cloud: Any, tmp_path: Path, common: list[str]) -> None:
    cloud.seed({"buckets": [{"name": STATE_BUCKET}, _legacy_bucket("undo-all")]})
    applied = _apply(common, "undo-all")
    journal_id = applied["journal_id"]
    assert [a["call"] for a in applied["actions"]] == ["PutBucketHttpsConfig", "PutBucketEncryption",
                                                       "PutBucketPolicy"]

    entry = _show(common, journal_id)
    assert entry["status"] == "applied" and entry["intent"]["kind"] == "remediation"
    assert entry["intent"]["target"]["name"] == "undo-all"
    https, encryption, policy = entry["intent"]["actions"]
    assert https["before"]["tls"]["versions"] == LEGACY_HTTPS["tls"]["versions"]
    assert https["after"]["tls"]["versions"] == ["TLSv1.2", "TLSv1.3"] and https["after"]["cipher_suite"]["strong"]
    assert encryption["before"] is None and encryption["after"]["algorithm"] == "AES256"
    assert [s["Effect"] for s in json.loads(policy["after"])["Statement"]] == ["Allow", "Deny"]
    assert [a["status"] for a in entry["outcome"]["actions"]] == ["written"] * 3
    human = cli("journal", "show", journal_id, *common)
    assert human.exit_code == 0
    assert f"{journal_id}: applied" in human.stdout and f"undo:    tlsguard undo {journal_id}" in human.stdout
    assert "- PutBucketEncryption [written]" in human.stdout and "before: null" in human.stdout

    undone = _undo(common, journal_id, 2)  # partly restored is drift left: exit 2, never a whole refusal
    assert undone["outcome"] == "remediated" and undone["error_code"] == "PartialUndo"
    assert [a["call"] for a in undone["actions"]] == ["PutBucketPolicy", "PutBucketHttpsConfig"]
    assert "not restored: PutBucketEncryption: the before-state had no default encryption" in undone["reason"]
    assert undone["live_verification"] == "not_applicable"  # a before-state is not the policy: nothing to prove

    bucket = bucket_snapshot(cloud, "undo-all")
    assert bucket["https_config"]["TLS"]["TLSVersion"] == LEGACY_HTTPS["tls"]["versions"]
    assert not (bucket["https_config"].get("CipherSuite") or {}).get("StrongCipherSuite")
    assert _statements(cloud, "undo-all") == [_partner("undo-all")]
    assert bucket["encryption"] == {"SSEAlgorithm": "AES256"}  # tlsguard never deletes encryption

    undo_entry = _show(common, undone["journal_id"])
    assert undo_entry["intent"]["kind"] == "undo" and undo_entry["intent"]["undo_of"] == journal_id
    assert undo_entry["status"] == "applied"
    listed = json_out(cli("journal", "list", *common, "--json"))
    assert [(e["journal_id"], e["kind"], e["status"]) for e in listed] == [
        (journal_id, "remediation", "applied"), (undone["journal_id"], "undo", "applied")]
    state = lifecycle_for(cloud, tmp_path / "tlsguard.yaml").ctx.state
    assert state is not None
    # Undone: the remediation's pending verification is withdrawn (it could only disprove a write that is gone),
    # and the undo records none (a before-state is not what the policy declares).
    assert [p.journal_id for p in state.pending.all()] == []
    withdrawn = state.pending.result(TargetRef.bucket_target("undo-all"), journal_id.rsplit("/", 1)[-1])
    assert withdrawn is not None and withdrawn["verdict"] == "undone"
    assert withdrawn["detail"] == f"undone by {undone['journal_id']}"
    ctx = lifecycle_for(cloud, tmp_path / "tlsguard.yaml").ctx
    assert verify_live.run_due(ctx) == []  # nothing is probed, so nothing is alerted as "not effective"

    again = _undo(common, journal_id, 2)  # the entry's writes are gone: each action says why, nothing is written
    assert again["outcome"] == "refused" and not again["actions"]
    assert again["reason"] == ("PutBucketPolicy: what tlsguard added is already gone; PutBucketEncryption: the "
                               "before-state had no default encryption and tlsguard never deletes encryption; "
                               "PutBucketHttpsConfig: already in its before-state")


def test_undo_keeps_what_changed_since_for_that_action_only(cloud: Any, common: list[str]) -> None:
    cloud.seed({"buckets": [{"name": STATE_BUCKET}, _legacy_bucket("undo-raced")]})
    journal_id = _apply(common, "undo-raced")["journal_id"]
    alice = outsider(cloud)
    ref = BucketRef("undo-raced", "cn-hangzhou")
    alice.put_https_config(ref, RawHttpsConfig(True, ("TLSv1.2",), True, True, True))  # a newer https config
    audit = {"Effect": "Allow", "Principal": ["20000000000002"], "Action": ["oss:ListObjects"],
             "Resource": ["acs:oss:*:*:undo-raced"]}
    document = json.loads(alice.get_policy(ref) or "{}")
    document["Statement"].append(audit)  # a statement added since tlsguard merged its Deny
    alice.put_policy(ref, json.dumps(document))

    undone = _undo(common, journal_id, 2)
    assert undone["error_code"] == "PartialUndo"
    assert [a["call"] for a in undone["actions"]] == ["PutBucketPolicy"]
    assert "PutBucketHttpsConfig: the https_config changed after tlsguard wrote it; the newer state is kept" in \
        undone["reason"]
    assert "PutBucketEncryption: the before-state had no default encryption" in undone["reason"]

    assert bucket_snapshot(cloud, "undo-raced")["https_config"]["TLS"]["TLSVersion"] == ["TLSv1.2"]
    statements = _statements(cloud, "undo-raced")
    assert not any(_is_https_only(s) for s in statements)  # only tlsguard's statement is gone...
    assert _partner("undo-raced") in statements and audit in statements  # ...everyone else's is kept
    assert len(statements) == 2


def test_undo_of_a_bucket_policy_that_had_none_deletes_only_what_tlsguard_wrote(cloud: Any,
                                                                                 common: list[str]) -> None:
    bucket = compliant_bucket("undo-nopolicy")
    del bucket["policy"]
    cloud.seed({"buckets": [{"name": STATE_BUCKET}, bucket]})
    applied = _apply(common, "undo-nopolicy")
    assert [a["call"] for a in applied["actions"]] == ["PutBucketPolicy"]
    assert [s for s in _statements(cloud, "undo-nopolicy") if _is_https_only(s)]
    undone = _undo(common, applied["journal_id"], 0)
    assert undone["outcome"] == "remediated" and not undone["error_code"]
    assert [a["call"] for a in undone["actions"]] == ["DeleteBucketPolicy"]
    assert bucket_snapshot(cloud, "undo-nopolicy")["policy"] is None


# -- custom domains and CDN domains --------------------------------------------------------------------------------
def _certificates(cloud: Any, domain: str) -> None:
    cloud.seed({"certificates": [
        {"name": "old-leaf", "kind": "expiring", "days": 5, "domains": [domain]},
        {"name": "new-leaf", "kind": "valid", "domains": [domain]}]})


def test_a_custom_domain_certificate_binding_is_listed_shown_and_undone(cloud: Any, tmp_path: Path,
                                                                        common: list[str]) -> None:
    domain = "static.example.test"
    _certificates(cloud, domain)
    cloud.seed({"buckets": [{"name": STATE_BUCKET},
                            compliant_bucket("site-bucket", cnames=[{"domain": domain, "certificate": "old-leaf"}])]})
    old, new = _cas_id(cloud, "old-leaf"), _cas_id(cloud, "new-leaf")

    def bound() -> int:
        (cname,) = bucket_snapshot(cloud, "site-bucket")["cnames"]
        return int(str(cname["cert_id"]).split("-", 1)[0])

    applied = _apply(common, f"oss-cname:{domain}")
    journal_id = applied["journal_id"]
    assert journal_id.startswith(f"oss-cname/{domain}/")
    assert bound() == new
    (action,) = _show(common, journal_id)["intent"]["actions"]
    assert action["call"] == "PutCname" and action["facet"] == "cname_certificate"
    assert int(str(action["before"]["cert_id"]).split("-")[0]) == old
    assert int(str(action["after"]["cert_id"]).split("-")[0]) == new
    listed = json_out(cli("journal", "list", *common, "--target", domain, "--json"))
    assert [e["journal_id"] for e in listed] == [journal_id]
    assert listed[0]["target"]["kind"] == "oss-cname" and listed[0]["target"]["bucket"] == "site-bucket"

    undone = _undo(common, journal_id, 0)
    assert undone["outcome"] == "remediated" and [a["call"] for a in undone["actions"]] == ["PutCname"]
    assert bound() == old
    # The undo binds a known certificate: the edge must serve that leaf, which a live verification proves.
    assert undone["live_verification"] == "pending"
    ctx = lifecycle_for(cloud, tmp_path / "tlsguard.yaml").ctx
    (verification,) = [v for v in verify_live.run_due(ctx) if v.journal_id == undone["journal_id"]]
    assert verification.verdict.value == "effective", verification.detail


def test_a_cdn_certificate_binding_is_undone(cloud: Any, common: list[str]) -> None:
    domain = "edge.example.test"
    _certificates(cloud, domain)
    cloud.seed({"buckets": [{"name": STATE_BUCKET}],
                "cdn_domains": [{"name": domain, "certificate": "old-leaf", "configs": COMPLIANT_CDN_CONFIGS}]})
    old, new = _cas_id(cloud, "old-leaf"), _cas_id(cloud, "new-leaf")
    applied = _apply(common, domain)
    assert [a["call"] for a in applied["actions"]] == ["SetCdnDomainSSLCertificate"]
    assert cdn_snapshot(cloud, domain)["certificate"]["cert_id"] == new
    (action,) = _show(common, applied["journal_id"])["intent"]["actions"]
    assert action["facet"] == "cdn_certificate" and int(action["before"]["cert_id"]) == old

    undone = _undo(common, applied["journal_id"], 0)
    assert [a["call"] for a in undone["actions"]] == ["SetCdnDomainSSLCertificate"]
    assert cdn_snapshot(cloud, domain)["certificate"]["cert_id"] == old
    assert cdn_snapshot(cloud, domain)["configs"].keys() == COMPLIANT_CDN_CONFIGS.keys()  # configs untouched


def test_cdn_configs_undo_restores_the_deleted_http_force_rival(cloud: Any, common: list[str]) -> None:
    domain = "www.example.test"
    seeded = {"http_force": {"enable": "on"},
              "https_tls_version": {"tls10": "on", "tls11": "on", "tls12": "on", "tls13": "on",
                                    "ciphersuitegroup": "all"}}
    cloud.seed({"certificates": [{"name": "www-leaf", "kind": "valid", "domains": [domain]}],
                "buckets": [{"name": STATE_BUCKET}],
                "cdn_domains": [{"name": domain, "certificate": "www-leaf", "configs": seeded}]})
    applied = _apply(common, domain)
    (action,) = applied["actions"]
    assert action["summary"] == "BatchSetCdnDomainConfig: HSTS, https_force, https_tls_version after " \
                                "DeleteSpecificConfig http_force"
    configs = cdn_snapshot(cloud, domain)["configs"]
    assert "http_force" not in configs and configs["https_force"]["args"]["enable"] == "on"
    assert configs["HSTS"]["args"]["https_hsts_max_age"] == "5184000"
    assert configs["https_tls_version"]["args"]["tls10"] == "off"

    (journaled,) = _show(common, applied["journal_id"])["intent"]["actions"]
    assert journaled["before"]["http_force"]["args"] == {"enable": "on"} and "http_force" not in journaled["after"]

    undone = _undo(common, applied["journal_id"], 0)
    assert undone["outcome"] == "remediated" and not undone["error_code"], undone["reason"]
    assert undone["live_verification"] == "not_applicable"
    restored = cdn_snapshot(cloud, domain)["configs"]
    assert {name: config["args"] for name, config in restored.items()} == seeded


def test_a_cdn_config_undo_is_refused_when_the_configs_changed_since(cloud: Any, common: list[str]) -> None:
    domain = "raced.example.test"
    cloud.seed({"certificates": [{"name": "raced-leaf", "kind": "valid", "domains": [domain]}],
                "buckets": [{"name": STATE_BUCKET}],
                "cdn_domains": [{"name": domain, "certificate": "raced-leaf", "configs": {
                    "https_force": {"enable": "on", "https_rewrite": "301"},
                    "https_tls_version": COMPLIANT_CDN_CONFIGS["https_tls_version"]}}]})
    applied = _apply(common, domain)  # adds HSTS
    cloud.cdn.set_config(ACCOUNT, [domain], "HSTS", {"enabled": "on", "https_hsts_max_age": "600",
                                                     "https_hsts_include_subdomains": "on"})
    undone = _undo(common, applied["journal_id"], 2)
    assert undone["outcome"] == "refused" and not undone["actions"]
    assert "the cdn_configs changed after tlsguard wrote it; the newer state is kept" in undone["reason"]
    assert cdn_snapshot(cloud, domain)["configs"]["HSTS"]["args"]["https_hsts_max_age"] == "600"


# -- journal list -----------------------------------------------------------------------------------------------------
def test_journal_list_filters_by_target_and_time_and_shows_incomplete_entries(cloud: Any, tmp_path: Path,
                                                                              common: list[str]) -> None:
    cloud.seed({"buckets": [{"name": STATE_BUCKET}, _legacy_bucket("early-bird"), _legacy_bucket("late-comer")]})
    policy = tmp_path / "tlsguard.yaml"
    by_tests = Trigger("cli", actor="tests")
    early = lifecycle_for(cloud, policy).run(TargetRef.bucket_target("early-bird", "cn-hangzhou", ACCOUNT),
                                             trigger=by_tests)
    cloud.clock.advance(10 * 60)  # within the signing skew: the cloud and the journal both move on
    between = dt.datetime.fromtimestamp(cloud.clock.time() - 5 * 60, dt.timezone.utc)
    late_lifecycle = lifecycle_for(cloud, policy)
    late = late_lifecycle.run(TargetRef.bucket_target("late-comer", "cn-hangzhou", ACCOUNT), trigger=by_tests)
    # An intent whose run died before any outcome: it is listed, as incomplete.
    state = late_lifecycle.ctx.state
    assert state is not None
    target = TargetRef.bucket_target("late-comer", "cn-hangzhou", ACCOUNT)
    action = Action(target, "https_config", "PutBucketHttpsConfig", {}, {"tls": {"enable": False}},
                    {"tls": {"enable": True, "versions": ["TLSv1.2", "TLSv1.3"]}}, ("oss.tls_versions",))
    incomplete_id = new_journal_id(target, cloud.clock.time())
    state.journal.write_intent(state.journal.intent_document(
        incomplete_id, target, [action], now=cloud.clock.time(), trigger={"kind": "event", "actor": "tests"},
        reason="drift in oss.tls_versions", mode="enforce"))

    everything = json_out(cli("journal", "list", *common, "--json"))
    assert [(e["journal_id"], e["status"]) for e in everything] == [
        (early.journal_id, "applied"), (late.journal_id, "applied"), (incomplete_id, "incomplete")]
    assert everything[0]["calls"] == ["PutBucketHttpsConfig", "PutBucketEncryption", "PutBucketPolicy"]
    assert everything[0]["actor"] == "tests" and everything[0]["kind"] == "remediation"

    by_target = json_out(cli("journal", "list", *common, "--target", "early-bird", "--json"))
    assert [e["journal_id"] for e in by_target] == [early.journal_id]
    since = json_out(cli("journal", "list", *common, "--since", between.strftime("%Y-%m-%dT%H:%M:%S"), "--json"))
    assert [e["journal_id"] for e in since] == [late.journal_id, incomplete_id]
    both = json_out(cli("journal", "list", *common, "--target", "late-comer", "--since",
                        between.isoformat(), "--json"))
    assert [e["journal_id"] for e in both] == [late.journal_id, incomplete_id]
    tomorrow = (dt.datetime.fromtimestamp(cloud.clock.time(), dt.timezone.utc) + dt.timedelta(days=1)).date()
    assert json_out(cli("journal", "list", *common, "--since", tomorrow.isoformat(), "--json")) == []
    assert json_out(cli("journal", "list", *common, "--target", "nobody-here", "--json")) == []

    human = cli("journal", "list", *common)
    assert human.exit_code == 0
    lines = human.stdout.splitlines()
    assert lines[-1] == "3 entries; 1 incomplete"
    assert any(line.startswith(incomplete_id) and " incomplete " in line for line in lines)

    shown = cli("journal", "show", incomplete_id, *common)
    assert shown.exit_code == 0, shown.output
    assert f"{incomplete_id}: incomplete" in shown.stdout and "[no outcome]" in shown.stdout
    assert _show(common, incomplete_id)["outcome"] is None


# -- errors: one line, exit 1, never a traceback ---------------------------------------------------------------
def _one_line_error(result: Any, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tlsguard: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


MISSING_ID = "oss-bucket/nobody-here/20300101T000000000000Z-0badc0de"


def test_bad_ids_missing_entries_and_a_missing_state_bucket_are_one_line_errors(cloud: Any, tmp_path: Path,
                                                                                endpoints_file: Path,
                                                                                common: list[str]) -> None:
    cloud.seed({"buckets": [{"name": STATE_BUCKET}]})
    _one_line_error(cli("journal", "show", "not-an-id", *common), "not a journal id: 'not-an-id'")
    _one_line_error(cli("undo", "not-an-id", *common), "not a journal id")
    _one_line_error(cli("undo", "oss-bucket/../../etc/20300101T000000000000Z-0badc0de", *common), "not a journal id")
    _one_line_error(cli("journal", "show", MISSING_ID, *common), f"journal entry {MISSING_ID} not found")
    _one_line_error(cli("journal", "list", *common, "--since", "last tuesday"), "--since wants a date")

    missing = cli("undo", MISSING_ID, *common)
    assert missing.exit_code == 1 and "Traceback" not in missing.output
    assert f"journal entry {MISSING_ID} not found" in missing.stdout

    stateless = write_policy(tmp_path, POLICY.replace(f"state: {{bucket: {STATE_BUCKET}}}\n", ""), "stateless.yaml")
    no_state = ["--policy", str(stateless), "--localcloud", str(endpoints_file)]
    _one_line_error(cli("journal", "list", *no_state), "no state bucket")
    _one_line_error(cli("journal", "show", MISSING_ID, *no_state), "no state bucket")
    _one_line_error(cli("undo", MISSING_ID, *no_state), "no state bucket")

    absent = write_policy(tmp_path, POLICY.replace(STATE_BUCKET, "tlsguard-state-gone"), "absent.yaml")
    no_bucket = ["--policy", str(absent), "--localcloud", str(endpoints_file)]
    _one_line_error(cli("journal", "list", *no_bucket), "The specified bucket does not exist")
    _one_line_error(cli("journal", "show", MISSING_ID, *no_bucket), "The specified bucket does not exist")
    _one_line_error(cli("undo", MISSING_ID, *no_bucket), "The specified bucket does not exist")


def test_a_damaged_entry_is_a_one_line_error(cloud: Any, tmp_path: Path, common: list[str]) -> None:
    cloud.seed({"buckets": [{"name": STATE_BUCKET}]})
    state = lifecycle_for(cloud, tmp_path / "tlsguard.yaml").ctx.state
    assert state is not None
    damaged = "oss-bucket/broken-entry/20300101T000000000000Z-0badc0de"
    assert state.bucket.create(state.bucket.key("journal", f"{damaged}.intent.json"), b"{not json")
    _one_line_error(cli("journal", "show", damaged, *common), damaged, "damaged")
    _one_line_error(cli("undo", damaged, *common), damaged, "damaged")
    listed = cli("journal", "list", *common, "--json")
    assert listed.exit_code == 0 and "Traceback" not in listed.output
