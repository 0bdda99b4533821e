"""on_change end to end: an outsider's write → ActionTrail → the s.yaml EventBridge rule → the handler → rollback.

Every kind of target: bucket writes, custom domains bound (PutCname) or unbound (DeleteCname), CDN configs
(BatchSetCdnDomainConfig) and a CDN domain's certificate (SetCdnDomainSSLCertificate).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from tlsguard.policy.model import RawHttpsConfig
from tlsguard.ports import BucketRef

from tests.functions.conftest import (
    ALERT_SECRET,
    STATE_BUCKET,
    USER_KEY,
    AlertSink,
    cdn_domain,
    deploy_functions,
    finding_checks,
    invocations,
    outsider,
    result_of,
    settle,
)
from tests.support import pem_sha1, served_sha1, tls_accepts

if TYPE_CHECKING:
    from pathlib import Path

    from localcloud.cloud import LocalCloud
    from localcloud.sdeploy import Deployment

TLS10 = RawHttpsConfig(tls_enabled=True, tls_versions=("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"))


def journal_entries(cloud: LocalCloud, kind: str, name: str) -> list[dict[str, Any]]:
    """The filed journal entries of one target: each intent with its outcome."""
    oss = outsider(cloud)
    prefix = f"tlsguard/journal/{kind}/{name}/"
    entries = []
    for key in oss.list_objects(STATE_BUCKET, prefix):
        if key.endswith(".intent.json"):
            intent = json.loads(oss.get_object(STATE_BUCKET, key) or b"{}")
            outcome = json.loads(oss.get_object(STATE_BUCKET, key.replace(".intent.json", ".outcome.json")) or b"{}")
            entries.append({**intent, "outcome": outcome})
    return entries


def handled_items(cloud: LocalCloud) -> list[dict[str, Any]]:
    return [h for r in invocations(cloud, "tlsguard-on-change") for h in result_of(r)["handled"]]


def cdn_as(cloud: LocalCloud, key: tuple[str, str] = USER_KEY) -> Any:
    """A CDN client (the official RPC SDK) with ops-alice's keys."""
    from tlsguard.adapters.cdn import AliyunCdn
    from tlsguard.certs._rpc import RpcConnection

    return AliyunCdn(RpcConnection(region=cloud.region, access_key_id=key[0], access_key_secret=key[1],
                                   domain=cloud.endpoints["cdn"], protocol="http"))


def delivered(cloud: LocalCloud, event_name: str) -> list[dict[str, Any]]:
    """EventBridge deliveries of ``event_name`` to tlsguard-on-change (through the rules s.yaml declares)."""
    return [d for d in cloud.events.deliveries() if d["event_name"] == event_name
            and d["function"] == "tlsguard-on-change"]


@pytest.mark.parametrize("runtime", ["python3.10", "python3.12"])
def test_outsider_change_is_rolled_back_journaled_and_alerted(fleet: LocalCloud, tmp_path: Path,
                                                              policy_file: Path, alert_sink: AlertSink,
                                                              fast_async: None, no_timers: None,
                                                              runtime: str) -> None:
    deployment = deploy_functions(fleet, tmp_path, policy_file, runtime=runtime, environment={
        "TLSGUARD_WEBHOOK_URL": alert_sink.url, "TLSGUARD_WEBHOOK_SECRET": ALERT_SECRET})
    try:
        bucket = BucketRef("app-prod", "cn-hangzhou")
        outsider(fleet).put_https_config(bucket, TLS10)
        settle(fleet)
        # Restored and verified: the outsider reads the declared versions back.
        assert set(outsider(fleet).get_https_config(bucket).tls_versions) == {"TLSv1.2", "TLSv1.3"}
        runs = invocations(fleet, "tlsguard-on-change")
        first = result_of(runs[0])
        handled = first["handled"][0]
        assert handled["outcome"] == "remediated" and handled["target"]["name"] == "app-prod"
        assert handled["target"]["kind"] == "oss-bucket" and handled["event_name"] == "PutBucketHttpsConfig"
        assert handled["trigger"]["actor"] == "ram-user:ops-alice" and handled["trigger"]["own"] is False
        assert handled["event_id"] == handled["trigger"]["event_id"] and "oss.tls_versions" in finding_checks(handled)
        # The remediation's own PutBucketHttpsConfig also reached the function; it was compared, not rewritten
        # (pending once the rollback waits for its live verification, compliant if the event outran that record).
        own = [h for r in runs[1:] for h in result_of(r)["handled"]]
        assert own and all(h["trigger"]["own"] and h["outcome"] in ("compliant", "pending") for h in own)
        assert all(h["actions"] == [] and h["journal_id"] is None for h in own)
        assert len(runs) == 2
        entries = journal_entries(fleet, "oss-bucket", "app-prod")
        assert [e["journal_id"] for e in entries] == [handled["journal_id"]]
        assert entries[0]["trigger"]["actor"] == "ram-user:ops-alice"
        assert entries[0]["trigger"]["event_id"] == handled["trigger"]["event_id"]
        assert entries[0]["outcome"]["status"] == "applied" and entries[0]["outcome"]["verified"] is True
        [action] = entries[0]["actions"]
        assert action["call"] == "PutBucketHttpsConfig" and set(action["before"]["tls"]["versions"]) == set(
            TLS10.tls_versions) and set(action["after"]["tls"]["versions"]) == {"TLSv1.2", "TLSv1.3"}
        # One digest for the outsider's change; the own event's invocation sends none.
        alerts = alert_sink.wait_for(1)
        assert [a["kind"] for a in alerts] == ["digest"]
        [remediated] = alerts[0]["remediated"]
        assert remediated["target"]["name"] == "app-prod" and remediated["journal_id"] == handled["journal_id"]
        assert remediated["actor"] == "ram-user:ops-alice" and remediated["event_id"] == handled["event_id"]
        assert alert_sink.bad_signatures == 0
        # The role's keys were STS keys minted for the function, used by every call it made.
        identities = {e["data"]["userIdentity"]["type"] for e in fleet.trail.events()}
        assert identities == {"ram-user", "assumed-role"}
    finally:
        deployment.close()


def test_duplicate_deliveries_are_processed_once(deployed: Deployment, cloud: LocalCloud) -> None:
    rule = next(r for r in cloud.events.rules() if r.function == "tlsguard-on-change")
    cloud.events.add_rule(rule.name, rule.pattern, rule.function, duplicates=2)
    outsider(cloud).put_https_config(BucketRef("app-prod", "cn-hangzhou"), TLS10)
    settle(cloud)
    outcomes = [h for h in handled_items(cloud) if not h["trigger"]["own"]]
    assert len(outcomes) == 3, outcomes
    assert len({h["event_id"] for h in outcomes}) == 1
    assert [h["outcome"] for h in outcomes].count("remediated") == 1
    duplicates = [h for h in outcomes if h["outcome"] != "remediated"]
    # A copy that met the claim is a DuplicateEvent; one that read after the rollback found nothing to do.
    assert all(h["error_code"] == "DuplicateEvent" or h["outcome"] in ("compliant", "pending") for h in duplicates)
    assert all(h["actions"] == [] and h["journal_id"] is None for h in duplicates)
    assert len(journal_entries(cloud, "oss-bucket", "app-prod")) == 1
    # The same event delivered again later, while the bucket has drifted anew (a change no rule delivered): the
    # completed claim keeps it a duplicate; it is compared, never acted on twice.
    first = next(h for h in outcomes if h["outcome"] == "remediated")
    envelope = next(e for e in cloud.trail.events() if e["id"] == first["event_id"])
    for each in cloud.events.rules():
        cloud.events.set_enabled(each.name, False)
    outsider(cloud).put_https_config(BucketRef("app-prod", "cn-hangzhou"), TLS10)
    [again] = result_of(cloud.fc.invoke("tlsguard-on-change", json.dumps(envelope).encode()))["handled"]
    assert again["error_code"] == "DuplicateEvent" and again["outcome"] == "compliant" and again["actions"] == []
    assert len(journal_entries(cloud, "oss-bucket", "app-prod")) == 1


def test_failed_calls_reads_and_poison_events_are_acknowledged(deployed: Deployment, cloud: LocalCloud) -> None:
    from tlsguard.errors import CloudError

    # A refused write (an invalid TLS version) is still an ActionTrail event, with errorCode.
    with pytest.raises(CloudError) as refused:
        outsider(cloud).put_https_config(BucketRef("app-prod", "cn-hangzhou"),
                                         RawHttpsConfig(tls_enabled=True, tls_versions=("TLSv9",)))
    settle(cloud)
    runs = invocations(cloud, "tlsguard-on-change")
    assert len(runs) == 1
    body = result_of(runs[0])
    assert body["handled"] == [] and f"failed call ({refused.value.code})" in body["skipped"][0]["reason"]
    assert body["skipped"][0]["event_name"] == "PutBucketHttpsConfig"
    for poison in (b"\x00garbage", b"[1, 2]", b'{"source": "acs.oss", "data": {"eventName": "PutBucketHttpsConfig"}}'):
        record = cloud.fc.invoke("tlsguard-on-change", poison)
        assert record["status"] == "succeeded" and record["attempts"] == 1, record
        assert result_of(record)["handled"] == []


def test_a_list_of_cloudevents_is_handled_event_by_event(deployed: Deployment, cloud: LocalCloud) -> None:
    rule = next(r for r in cloud.events.rules() if r.function == "tlsguard-on-change")
    cloud.events.set_enabled(rule.name, False)
    oss = outsider(cloud)
    oss.put_https_config(BucketRef("app-prod", "cn-hangzhou"), TLS10)
    oss.delete_policy(BucketRef("logs-sh", "cn-shanghai"))
    batch = [e for e in cloud.trail.events()]
    assert len(batch) == 2
    body = result_of(cloud.fc.invoke("tlsguard-on-change", json.dumps(batch).encode()))
    assert [(h["target"]["name"], h["event_name"], h["outcome"]) for h in body["handled"]] == [
        ("app-prod", "PutBucketHttpsConfig", "remediated"), ("logs-sh", "DeleteBucketPolicy", "remediated")]
    assert outsider(cloud).get_policy(BucketRef("logs-sh", "cn-shanghai")) is not None


def test_transient_error_raises_so_fc_retries_the_batch(deployed: Deployment, cloud: LocalCloud) -> None:
    # Exactly as many 503s as one invocation's adapter attempts (5): the first FC attempt fails, the retry works.
    cloud.faults.add_dict({"kind": "error", "service": "oss", "operation": "GetBucketHttpsConfig",
                           "resource": "app-drifted", "status": 503, "code": "ServiceUnavailable", "remaining": 5})
    record = cloud.fc.invoke("tlsguard-check", json.dumps({"buckets": [{"name": "app-drifted",
                                                                         "region": "cn-hangzhou"}]}).encode(),
                             invocation_type="Async")
    settle(cloud, timeout=60)
    final = cloud.fc.invocation(record["id"])
    assert final is not None and final.status == "succeeded" and final.attempts == 2
    body = json.loads(final.result or b"{}")
    assert [t["outcome"] for t in body["targets"]] == ["remediated"]
    assert set(outsider(cloud).get_https_config(BucketRef("app-drifted", "cn-hangzhou")).tls_versions) == {
        "TLSv1.2", "TLSv1.3"}


def test_exhausted_retries_reach_the_failure_destination_which_alerts(
        deployed: Deployment, cloud: LocalCloud, alert_sink: AlertSink) -> None:
    import dataclasses

    spec = cloud.fc.function("tlsguard-check")
    broken = {**spec.environment, "TLSGUARD_POLICY": "/nonexistent/tlsguard.yaml"}
    cloud.fc.register(dataclasses.replace(spec, environment=broken))
    record = cloud.fc.invoke("tlsguard-check", b'{"buckets": ["app-prod"]}', invocation_type="Async")
    settle(cloud, timeout=30)
    final = cloud.fc.invocation(record["id"])
    assert final is not None and final.status == "failed" and final.attempts == 4  # 1 + maxAsyncRetryAttempts 3
    assert final.error is not None and final.error["errorType"] == "ConfigError"
    destination = invocations(cloud, "tlsguard-failed")
    assert len(destination) == 1 and result_of(destination[0])["alerted"] is True
    assert result_of(destination[0])["failed_function"] == "tlsguard-check"
    [digest] = alert_sink.wait_for(1)
    assert digest["kind"] == "digest" and digest["run"]["command"] == "failed"
    [notice] = digest["notices"]
    assert notice["kind"] == "function-failed" and notice["function"] == "tlsguard-check"
    assert notice["request_id"] == record["id"] and "4 attempts" in notice["message"]
    assert "nonexistent" in notice["message"] and json.loads(notice["payload"]) == {"buckets": ["app-prod"]}


# -- custom domains: PutCname / DeleteCname ------------------------------------------------------------------------
def prove_ownership(cloud: LocalCloud, bucket: str, domain: str) -> None:
    """What binding a new domain needs: ops-alice's CreateCnameToken (alibabacloud-oss-v2, over HTTPS), then the
    token in the domain's ``_dnsauth`` TXT record (localcloud's DNS stand-in)."""
    import alibabacloud_oss_v2 as oss

    config = oss.BucketCnameConfiguration(cname=oss.Cname(domain=domain))
    token = outsider(cloud).client(cloud.region).create_cname_token(oss.CreateCnameTokenRequest(
        bucket=bucket, bucket_cname_configuration=config))
    cloud.oss.set_dns_txt(f"_dnsauth.{domain}", [token.cname_token.token])


def bind_as_outsider(cloud: LocalCloud, bucket: str, domain: str) -> None:
    """ops-alice binds ``domain`` to ``bucket`` without a certificate (alibabacloud-oss-v2 PutCname, over HTTPS:
    the bucket policy denies plain HTTP), having proven she owns it."""
    import alibabacloud_oss_v2 as oss

    prove_ownership(cloud, bucket, domain)
    outsider(cloud).client(cloud.region).put_cname(oss.PutCnameRequest(bucket=bucket, bucket_cname_configuration=(
        oss.BucketCnameConfiguration(cname=oss.Cname(domain=domain)))))


def unbind_as_outsider(cloud: LocalCloud, bucket: str, domain: str) -> None:
    import alibabacloud_oss_v2 as oss

    outsider(cloud).client(cloud.region).delete_cname(oss.DeleteCnameRequest(
        bucket=bucket, bucket_cname_configuration=oss.BucketCnameConfiguration(cname=oss.Cname(domain=domain))))


def test_a_newly_bound_custom_domain_is_checked_and_fixed_at_once(deployed: Deployment, cloud: LocalCloud,
                                                                  alert_sink: AlertSink) -> None:
    from tlsguard.adapters.oss_cname import AliyunOssCname

    cloud.seed({"certificates": [{"name": "fresh-cert", "kind": "valid", "domains": ["fresh.example.com"]},
                                 {"name": "old-cert", "kind": "valid", "domains": ["old.example.com"]}]})
    cname = AliyunOssCname(outsider(cloud))
    cert = cloud.cas.find_by_name(cloud.default_account_id, "old-cert")
    assert cert is not None
    prove_ownership(cloud, "app-prod", "old.example.com")
    cname.bind_cas_certificate(BucketRef("app-prod", "cn-hangzhou"), "old.example.com", cloud.cas.oss_cert_id(cert),
                               None)  # an earlier, compliant binding of the same bucket
    settle(cloud)
    before = len(invocations(cloud, "tlsguard-on-change"))
    bind_as_outsider(cloud, "app-prod", "fresh.example.com")
    settle(cloud)
    assert delivered(cloud, "PutCname")  # the s.yaml rule delivers PutCname
    runs = invocations(cloud, "tlsguard-on-change")[before:]
    first = result_of(runs[0])
    by_name = {h["target"]["name"]: h for h in first["handled"]}
    # Every custom domain of the bucket is re-read; the new one is fixed within this invocation.
    assert set(by_name) == {"fresh.example.com", "old.example.com"}
    fresh = by_name["fresh.example.com"]
    assert fresh["target"]["kind"] == "oss-cname" and fresh["target"]["bucket"] == "app-prod"
    assert fresh["event_name"] == "PutCname" and fresh["trigger"]["actor"] == "ram-user:ops-alice"
    assert fresh["outcome"] == "remediated" and "cert.present" in finding_checks(fresh)
    assert by_name["old.example.com"]["outcome"] in ("compliant", "pending")
    [action] = fresh["actions"]
    bound = cloud.cas.find_by_name(cloud.default_account_id, "fresh-cert")
    assert bound is not None
    assert action["call"] == "PutCname" and action["params"]["CertId"] == cloud.cas.oss_cert_id(bound)
    bindings = {b.domain: b.api.cert_id for b in cname.list_cnames(BucketRef("app-prod", "cn-hangzhou"))}
    assert bindings["fresh.example.com"] == cloud.cas.oss_cert_id(bound)
    assert served_sha1(cloud.endpoints, "fresh.example.com") == pem_sha1(bound.chain_pem[0])  # a real handshake
    # tlsguard's own PutCname came back as an event: compared, never written twice.
    own = [h for r in runs[1:] for h in result_of(r)["handled"]]
    assert own and all(h["trigger"]["own"] and h["actions"] == [] for h in own)
    assert [e["journal_id"] for e in journal_entries(cloud, "oss-cname", "fresh.example.com")] == [fresh["journal_id"]]
    digest = next(a for a in alert_sink.wait_for(1) if a["remediated"])
    assert digest["remediated"][0]["target"]["name"] == "fresh.example.com"


def test_an_unbound_custom_domain_leaves_the_bucket_s_other_domains_rechecked(deployed: Deployment,
                                                                             cloud: LocalCloud) -> None:
    cloud.seed({"certificates": [{"name": "keep-cert", "kind": "valid", "domains": ["keep.example.com"]},
                                 {"name": "gone-cert", "kind": "valid", "domains": ["gone.example.com"]}],
                "buckets": [{"name": "site", "region": "cn-hangzhou",
                             "cnames": [{"domain": "keep.example.com", "certificate": "keep-cert"},
                                        {"domain": "gone.example.com", "certificate": "gone-cert"}]}]})
    unbind_as_outsider(cloud, "site", "gone.example.com")
    settle(cloud)
    assert delivered(cloud, "DeleteCname")
    [run] = invocations(cloud, "tlsguard-on-change")
    body = result_of(run)
    assert body["skipped"] == []
    [handled] = body["handled"]
    assert handled["target"] == {"kind": "oss-cname", "account": cloud.default_account_id, "region": "cn-hangzhou",
                                 "name": "keep.example.com", "bucket": "site"}
    assert handled["event_name"] == "DeleteCname" and handled["outcome"] == "compliant" and handled["actions"] == []
    assert not [e for e in cloud.trail.events() if e["data"]["userIdentity"]["type"] == "assumed-role"]


# -- CDN domains: BatchSetCdnDomainConfig / SetCdnDomainSSLCertificate ---------------------------------------------
def test_cdn_posture_change_is_rolled_back(deployed: Deployment, cloud: LocalCloud, alert_sink: AlertSink) -> None:
    """An outsider turns TLS 1.0 back on for a CDN domain; the CDN rule delivers; the policy's cdn_https wins."""
    domain = "www.posture.example"
    cloud.seed({"certificates": [{"name": "posture-cert", "kind": "valid", "domains": [domain]}],
                "cdn_domains": [cdn_domain(domain, "posture-cert")]})
    cdn = cdn_as(cloud)
    cdn.batch_set_config(domain, {"https_tls_version": {"tls10": "on", "tls11": "on", "tls12": "on", "tls13": "on",
                                                        "ciphersuitegroup": "all"}})
    settle(cloud)
    assert delivered(cloud, "BatchSetCdnDomainConfig")
    handled = handled_items(cloud)
    outsider_item = next(h for h in handled if not h["trigger"]["own"])
    assert outsider_item["target"]["name"] == domain and outsider_item["target"]["kind"] == "cdn-domain"
    assert outsider_item["outcome"] == "remediated" and outsider_item["event_name"] == "BatchSetCdnDomainConfig"
    assert outsider_item["trigger"]["actor"] == "ram-user:ops-alice" and outsider_item["journal_id"]
    assert finding_checks(outsider_item) == {"cdn.tls_versions", "cdn.cipher_suites"}
    # tlsguard's own BatchSetCdnDomainConfig came back as an event: compared read-only, nothing written.
    own = [h for h in handled if h["trigger"]["own"]]
    assert own and all(h["outcome"] in ("compliant", "pending") and h["actions"] == [] for h in own)
    args = {c.function_name: c.args for c in cdn.domain_configs(domain, ("https_tls_version",))}
    assert args["https_tls_version"]["tls10"] == "off" and args["https_tls_version"]["tls11"] == "off"
    assert args["https_tls_version"]["ciphersuitegroup"] == "strict"
    assert not tls_accepts(cloud.endpoints, domain, "TLSv1.0") and tls_accepts(cloud.endpoints, domain, "TLSv1.2")
    digests = [a for a in alert_sink.wait_for(1) if a["remediated"]]
    assert [d["remediated"][0]["target"]["name"] for d in digests] == [domain]


def test_https_turned_off_on_a_cdn_domain_is_fixed_within_the_invocation(deployed: Deployment, cloud: LocalCloud,
                                                                         alert_sink: AlertSink) -> None:
    domain = "secure.cdn.example"
    cloud.seed({"certificates": [{"name": "secure-cert", "kind": "valid", "domains": [domain]}],
                "cdn_domains": [cdn_domain(domain, "secure-cert")]})
    cert = cloud.cas.find_by_name(cloud.default_account_id, "secure-cert")
    assert cert is not None and served_sha1(cloud.endpoints, domain) == pem_sha1(cert.chain_pem[0])
    cdn = cdn_as(cloud)
    cdn.rpc.call("SetCdnDomainSSLCertificate", {"DomainName": domain, "SSLProtocol": "off"}, resource=domain,
                 retry=False)
    settle(cloud)
    assert delivered(cloud, "SetCdnDomainSSLCertificate")
    runs = invocations(cloud, "tlsguard-on-change")
    first = result_of(runs[0])
    [item] = first["handled"]
    assert item["event_name"] == "SetCdnDomainSSLCertificate" and item["trigger"]["actor"] == "ram-user:ops-alice"
    assert item["outcome"] == "remediated" and "cdn.https_enabled" in finding_checks(item), item
    [action] = item["actions"]
    assert action["call"] == "SetCdnDomainSSLCertificate" and action["params"]["SSLProtocol"] == "on"
    assert action["before"]["https_enabled"] is False and action["after"]["https_enabled"] is True
    # Fixed by the invocation the event started, not by a later timer: HTTPS is back on and really served.
    assert cdn.certificate_view(domain).https_enabled is True
    assert served_sha1(cloud.endpoints, domain) == pem_sha1(cert.chain_pem[0])
    assert invocations(cloud, "tlsguard-cert-renewal") == [] and invocations(cloud, "tlsguard-sweep") == []
    writes = [(e["data"]["userIdentity"]["type"], e["data"]["requestParameters"].get("SSLProtocol"))
              for e in cloud.trail.events() if e["data"]["eventName"] == "SetCdnDomainSSLCertificate"]
    assert writes == [("ram-user", "off"), ("assumed-role", "on")]
    own = [h for r in runs[1:] for h in result_of(r)["handled"]]
    assert own and all(h["trigger"]["own"] and h["actions"] == [] for h in own)
    [entry] = journal_entries(cloud, "cdn-domain", domain)
    assert entry["journal_id"] == item["journal_id"] and entry["outcome"]["status"] == "applied"
    digest = next(a for a in alert_sink.wait_for(1) if a["remediated"])
    assert digest["remediated"][0]["target"]["name"] == domain
    assert "cdn.https_enabled" in digest["remediated"][0]["checks"]
