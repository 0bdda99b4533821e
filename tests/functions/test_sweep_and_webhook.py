"""The sweep (inline and fanned out through FC 3.0 InvokeFunction) over every kind of target, timers through the
control API, the run digest, and the signed webhook behind localcloud's HTTP trigger."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
from tlsguard.policy.model import RawHttpsConfig
from tlsguard.ports import BucketRef

from tests.functions.conftest import (
    ALERT_SECRET,
    INBOUND_SECRET,
    POLICY,
    USER_KEY,
    AlertSink,
    cdn_domain,
    deploy_functions,
    drifted_bucket,
    finding_checks,
    invocations,
    outcomes,
    outsider,
    result_of,
    settle,
)
from tests.support import bucket_host, pem_sha1, served_sha1, tls_accepts

if TYPE_CHECKING:
    from pathlib import Path

    from localcloud.cloud import LocalCloud
    from localcloud.sdeploy import Deployment


def timer_event(payload: str = "") -> bytes:
    return json.dumps({"triggerTime": "2026-11-23T03:00:00Z", "triggerName": "hourly", "payload": payload}).encode()


def versions(cloud: LocalCloud, bucket: str, region: str = "cn-hangzhou") -> set[str]:
    return set(outsider(cloud).get_https_config(BucketRef(bucket, region)).tls_versions)


def cdn_client(cloud: LocalCloud) -> Any:
    """ops-alice's CDN client (the official RPC SDK) to read what a CDN domain is configured with."""
    from tlsguard.adapters.cdn import AliyunCdn
    from tlsguard.certs._rpc import RpcConnection

    return AliyunCdn(RpcConnection(region=cloud.region, access_key_id=USER_KEY[0], access_key_secret=USER_KEY[1],
                                   domain=cloud.endpoints["cdn"], protocol="http"))


def cdn_args(cloud: LocalCloud, domain: str) -> dict[str, dict[str, str]]:
    return {c.function_name: dict(c.args) for c in cdn_client(cloud).domain_configs(
        domain, ("https_force", "HSTS", "https_tls_version"))}


def test_small_fleet_is_swept_inline(deployed: Deployment, cloud: LocalCloud) -> None:
    body = result_of(cloud.fc.invoke("tlsguard-sweep", timer_event()))
    assert body["fanout"] is False
    assert body["summary"]["targets"] == 3  # the state bucket is never a target
    assert body["summary"]["by_kind"]["oss-bucket"] == 3
    assert outcomes(body["targets"]) == {"app-drifted": "remediated"}  # compliant ones are counted, not listed
    [item] = body["targets"]
    assert item["target"] == {"kind": "oss-bucket", "account": cloud.default_account_id, "region": "cn-hangzhou",
                              "name": "app-drifted"}
    assert "oss.tls_versions" in finding_checks(item) and item["journal_id"]
    assert item["live_verification"] == "pending" and item["trigger"]["kind"] == "sweep"
    assert versions(cloud, "app-drifted") == {"TLSv1.2", "TLSv1.3"}
    assert not tls_accepts(cloud.endpoints, bucket_host("app-drifted"), "TLSv1.0")  # a real handshake is refused
    assert tls_accepts(cloud.endpoints, bucket_host("app-drifted"), "TLSv1.2")
    assert invocations(cloud, "tlsguard-check") == []


def test_above_the_threshold_batches_fan_out_to_check_via_invoke_function(deployed: Deployment,
                                                                          cloud: LocalCloud) -> None:
    cloud.seed({"buckets": [{"name": f"bulk-{i:02d}", "region": "cn-shanghai" if i % 2 else "cn-hangzhou",
                             "https_config": {"tls": {"enable": True, "versions": ["TLSv1.0", "TLSv1.2"]}}}
                            for i in range(7)]})
    body = result_of(cloud.fc.invoke("tlsguard-sweep", timer_event('{"threshold": 4, "batch_size": 3}')))
    assert body["fanout"] is True and body["targets"] == 10 and body["batches"] == 4
    assert all(body["request_ids"])
    settle(cloud)
    checks = invocations(cloud, "tlsguard-check")
    assert len(checks) == 4 and all(c["type"] == "Async" and c["source"] == "api" for c in checks)
    assert {c["id"] for c in checks} == set(body["request_ids"])
    # Each batch carries the targets themselves (kind, region), so a worker lists nothing again.
    batches = [json.loads(c["payload"]) for c in checks]
    assert all(t["kind"] == "oss-bucket" and t["region"] for b in batches for t in b["targets"])
    assert sorted(b["batch"] for b in batches) == [1, 2, 3, 4]
    checked = [t for c in checks for t in result_of(c)["targets"]]
    assert sorted(t["target"]["name"] for t in checked) == sorted(
        ["app-drifted", *(f"bulk-{i:02d}" for i in range(7))])  # compliant ones are counted, not listed
    assert {t["outcome"] for t in checked} == {"remediated"}
    assert sum(result_of(c)["summary"]["targets"] for c in checks) == 10
    for i in range(7):
        assert versions(cloud, f"bulk-{i:02d}", "cn-shanghai" if i % 2 else "cn-hangzhou") == {"TLSv1.2", "TLSv1.3"}
    # Every batch names its sweep, so the logs of one sweep can be followed across invocations.
    assert {result_of(c)["correlation_id"] for c in checks} == {body["correlation_id"]}


def seed_every_kind(cloud: LocalCloud) -> dict[str, Any]:
    """A drifted CDN domain (TLS 1.0 and 1.1 on, the "all" suites) and a custom domain whose certificate is due
    for renewal (10 days left) while CAS holds a renewal; both certificates are valid and cover their domains."""
    cloud.seed({
        "certificates": [{"name": "shop-2026", "kind": "expiring", "domains": ["shop.example.com"], "days": 10},
                         {"name": "shop-2027", "kind": "valid", "domains": ["shop.example.com"]},
                         {"name": "edge-cert", "kind": "valid", "domains": ["edge.cdn.example"]}],
        "buckets": [{"name": "shop-site", "region": "cn-hangzhou", "policy": {
            "Version": "1", "Statement": [{"Effect": "Deny", "Principal": ["*"], "Action": ["oss:*"],
                                           "Resource": ["acs:oss:*:*:shop-site", "acs:oss:*:*:shop-site/*"],
                                           "Condition": {"Bool": {"acs:SecureTransport": ["false"]}}}]},
                     "encryption": {"algorithm": "AES256"},
                     "https_config": {"tls": {"enable": True, "versions": ["TLSv1.2", "TLSv1.3"]}},
                     "cnames": [{"domain": "shop.example.com", "certificate": "shop-2026"}]}],
        "cdn_domains": [cdn_domain("edge.cdn.example", "edge-cert", https_tls_version={
            "tls10": "on", "tls11": "on", "tls12": "on", "tls13": "on", "ciphersuitegroup": "all"})],
    })
    renewal = cloud.cas.find_by_name(cloud.default_account_id, "shop-2027")
    assert renewal is not None
    assert tls_accepts(cloud.endpoints, "edge.cdn.example", "TLSv1.0")  # the drift is real at the edge
    assert served_sha1(cloud.endpoints, "shop.example.com") != pem_sha1(renewal.chain_pem[0])
    return {"renewal": renewal}


def assert_every_kind_fixed(cloud: LocalCloud, renewal: Any) -> None:
    """Read back through the official SDKs, and prove with real handshakes what each endpoint now does."""
    from tlsguard.adapters.oss_cname import AliyunOssCname

    assert versions(cloud, "app-drifted") == {"TLSv1.2", "TLSv1.3"}
    tls = cdn_args(cloud, "edge.cdn.example")["https_tls_version"]
    assert (tls["tls10"], tls["tls11"], tls["tls12"], tls["tls13"], tls["ciphersuitegroup"]) == (
        "off", "off", "on", "on", "strict")
    assert not tls_accepts(cloud.endpoints, "edge.cdn.example", "TLSv1.0")
    assert not tls_accepts(cloud.endpoints, "edge.cdn.example", "TLSv1.1")
    assert tls_accepts(cloud.endpoints, "edge.cdn.example", "TLSv1.2")
    [binding] = AliyunOssCname(outsider(cloud)).list_cnames(BucketRef("shop-site", "cn-hangzhou"))
    assert binding.api.cert_id == cloud.cas.oss_cert_id(renewal)
    assert served_sha1(cloud.endpoints, "shop.example.com") == pem_sha1(renewal.chain_pem[0])
    writers = {(e["data"]["eventName"], e["data"]["userIdentity"]["type"]) for e in cloud.trail.events()
               if e["data"]["eventName"] in ("PutCname", "BatchSetCdnDomainConfig", "PutBucketHttpsConfig")}
    assert writers == {("PutCname", "assumed-role"), ("BatchSetCdnDomainConfig", "assumed-role"),
                       ("PutBucketHttpsConfig", "assumed-role")}


EVERY_KIND = {"app-drifted": ("oss-bucket", {"oss.tls_versions"}),
              "shop.example.com": ("oss-cname", {"cert.expiry"}),
              "edge.cdn.example": ("cdn-domain", {"cdn.tls_versions", "cdn.cipher_suites"})}


def test_the_timer_sweep_checks_and_remediates_every_kind_inline(deployed: Deployment, cloud: LocalCloud) -> None:
    renewal = seed_every_kind(cloud)["renewal"]
    body = result_of(cloud.fc.invoke("tlsguard-sweep", timer_event()))
    assert body["fanout"] is False
    assert body["summary"]["by_kind"] == {"oss-bucket": 4, "oss-cname": 1, "cdn-domain": 1}
    assert outcomes(body["targets"]) == dict.fromkeys(EVERY_KIND, "remediated")
    for item in body["targets"]:
        kind, checks = EVERY_KIND[item["target"]["name"]]
        assert item["target"]["kind"] == kind and finding_checks(item) == checks, item
        assert item["journal_id"] and item["live_verification"] == "pending"
    [cname] = [t for t in body["targets"] if t["target"]["kind"] == "oss-cname"]
    assert cname["target"]["bucket"] == "shop-site"
    [action] = cname["actions"]
    assert action["call"] == "PutCname" and action["params"]["CertId"] == cloud.cas.oss_cert_id(renewal)
    settle(cloud)
    assert_every_kind_fixed(cloud, renewal)


def test_the_timer_sweep_fans_out_every_kind_to_check(deployed: Deployment, cloud: LocalCloud) -> None:
    renewal = seed_every_kind(cloud)["renewal"]
    body = result_of(cloud.fc.invoke("tlsguard-sweep", timer_event('{"threshold": 2, "batch_size": 2}')))
    assert body["fanout"] is True and body["targets"] == 6 and body["batches"] == 3
    settle(cloud, timeout=60)
    checks = invocations(cloud, "tlsguard-check")
    assert len(checks) == 3
    sent = [t for c in checks for t in json.loads(c["payload"])["targets"]]
    assert {t["kind"] for t in sent} == {"oss-bucket", "oss-cname", "cdn-domain"}
    assert next(t for t in sent if t["kind"] == "oss-cname")["bucket"] == "shop-site"
    checked = [t for c in checks for t in result_of(c)["targets"]]
    assert outcomes(checked) == dict.fromkeys(EVERY_KIND, "remediated")
    for item in checked:
        kind, expected = EVERY_KIND[item["target"]["name"]]
        assert item["target"]["kind"] == kind and finding_checks(item) == expected, item
    assert sum(result_of(c)["summary"]["targets"] for c in checks) == 6
    assert_every_kind_fixed(cloud, renewal)


def test_timer_fired_through_the_control_api(deployed: Deployment, cloud: LocalCloud) -> None:
    request = urllib.request.Request(f"{cloud.endpoints['control']}/timers/fire", method="POST",
                                     data=json.dumps({"function": "tlsguard-sweep", "trigger": "hourly"}).encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        fired = json.loads(response.read())
    assert fired["type"] == "Async" and fired["source"] == "timer:hourly"
    settle(cloud)
    body = result_of(cloud.fc.invocation(fired["id"]).as_dict())  # type: ignore[union-attr]
    assert body["correlation_id"].startswith("sweep:hourly:") and body["summary"]["remediated"] == 1


@pytest.mark.parametrize(("payload", "problem"), [
    ("awesome-fc", None),  # FC's documented example of a timer payload: plain text
    ("not json", None),
    ("[1]", "JSON but not an object"),
    ('{"verify_only": tr', "timer payload is not JSON"),
    ('{"threshold": "many"}', "option 'threshold' ignored"),
    ('{"threshold": -1, "batch_size": 0}', "option 'batch_size' ignored"),
    ('{"batch_size": 1e999}', "number 1e999 is out of range"),
    ('{"inline": "yes", "colour": "red"}', "unknown option 'colour' ignored"),
])
def test_any_timer_payload_runs_the_sweep_and_bad_options_are_reported(deployed: Deployment, cloud: LocalCloud,
                                                                       payload: str, problem: str | None) -> None:
    """A timer fires every hour: whatever its payload says, every target is checked (with the default options when
    the payload cannot set them), and what was wrong with the payload is in the result."""
    record = cloud.fc.invoke("tlsguard-sweep", timer_event(payload))
    body = result_of(record)
    assert "skipped" not in body and body["fanout"] is False and body["summary"]["remediated"] == 1
    assert versions(cloud, "app-drifted") == {"TLSv1.2", "TLSv1.3"}
    if problem is None:
        assert "payload_problems" not in body
    else:
        assert any(problem in p for p in body["payload_problems"]), body["payload_problems"]


def test_the_pending_verifications_timer_proves_a_write_with_handshakes(
        fleet: LocalCloud, tmp_path: Path, alert_sink: AlertSink, fast_async: None, no_timers: None) -> None:
    """verify_only (the five-minute timer) probes once the propagation window passed: effective, in the digest."""
    policy = tmp_path / "tlsguard.yaml"
    policy.write_text(POLICY + "verify: {propagation_minutes: 0}\n")
    deployment = deploy_functions(fleet, tmp_path, policy, environment={
        "TLSGUARD_WEBHOOK_URL": alert_sink.url, "TLSGUARD_WEBHOOK_SECRET": ALERT_SECRET})
    try:
        swept = result_of(fleet.fc.invoke("tlsguard-sweep", timer_event()))
        assert outcomes(swept["targets"]) == {"app-drifted": "remediated"}
        assert swept["targets"][0]["live_verification"] == "pending"
        fired = fleet.fc.fire_timer("tlsguard-sweep", "pending-verifications")
        settle(fleet)
        body = result_of(fleet.fc.invocation(fired["id"]).as_dict())  # type: ignore[union-attr]
        assert body["verify_only"] is True and body["summary"]["targets"] == 0  # nothing else was checked
        [verification] = body["verifications"]
        assert verification["target"]["name"] == "app-drifted" and verification["live_verification"] == "effective"
        assert verification["journal_id"] == swept["targets"][0]["journal_id"] and verification["connections"] >= 2
        assert body["summary"]["live"]["effective"] == 1
        digests = alert_sink.wait_for(2)
        assert [d["kind"] for d in digests] == ["digest", "digest"]
        assert [v["journal_id"] for v in digests[1]["verifications"]] == [verification["journal_id"]]
        # Verified once: the next frequent timer has nothing left to probe.
        again = result_of(fleet.fc.invoke("tlsguard-sweep", timer_event('{"verify_only": true}')))
        assert again["verifications"] == []
    finally:
        deployment.close()


# -- the digest: one message per run, deduplicated across runs ------------------------------------------------------
def test_an_alert_mode_sweep_sends_one_digest_then_nothing_new_then_resolved(
        fleet: LocalCloud, tmp_path: Path, alert_sink: AlertSink, fast_async: None, no_timers: None) -> None:
    drifted = [f"drift-{i:02d}" for i in range(12)]
    fleet.seed({"buckets": [drifted_bucket(name) for name in drifted]})
    policy = tmp_path / "tlsguard.yaml"
    policy.write_text(POLICY.replace("mode: enforce", "mode: alert"))
    deployment = deploy_functions(fleet, tmp_path, policy, environment={
        "TLSGUARD_WEBHOOK_URL": alert_sink.url, "TLSGUARD_WEBHOOK_SECRET": ALERT_SECRET})
    # Only the sweeps judge here: with the rules on, on_change would report the fix first (its own digest).
    for rule in fleet.events.rules():
        fleet.events.set_enabled(rule.name, False)
    try:
        first = result_of(fleet.fc.invoke("tlsguard-sweep", timer_event()))
        assert first["summary"]["drifted"] == 13 and first["alerts"]["sent"] is True
        [digest] = alert_sink.wait_for(1)
        assert digest["version"] == 2 and digest["kind"] == "digest" and digest["run"]["command"] == "sweep"
        assert digest["run"]["mode"] == "alert" and digest["run"]["correlation_id"] == first["correlation_id"]
        assert digest["counts"]["targets"] == 15 and digest["counts"]["drifted"] == 13
        assert digest["counts"]["compliant"] == 2
        needing = {(item["target"]["name"], item["check"], item["state"]) for item in digest["needs_attention"]}
        assert needing == {(name, "oss.tls_versions", "drifted") for name in [*drifted, "app-drifted"]}
        assert all(not item["reminder"] and item["severity"] == "HIGH" for item in digest["needs_attention"])
        assert digest["remediated"] == [] and digest["resolved"] == []
        assert versions(fleet, "drift-00") == {"TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"}  # alert mode writes nothing
        # The same problems again: deduplicated against the alert state, so no message at all.
        second = result_of(fleet.fc.invoke("tlsguard-sweep", timer_event()))
        assert second["summary"]["drifted"] == 13 and second["alerts"]["sent"] is False
        time.sleep(0.3)
        assert len(alert_sink.alerts) == 1
        # Somebody fixes two buckets: the next sweep says so, once.
        for name in ("drift-03", "drift-07"):
            outsider(fleet).put_https_config(BucketRef(name, "cn-hangzhou"), RawHttpsConfig(
                tls_enabled=True, tls_versions=("TLSv1.2", "TLSv1.3")))
        third = result_of(fleet.fc.invoke("tlsguard-sweep", timer_event()))
        assert third["summary"]["drifted"] == 11 and third["alerts"]["sent"] is True
        assert third["alerts"]["resolved"] == 2 and third["alerts"]["new"] == 0
        resolved = alert_sink.wait_for(2)[1]
        assert resolved["kind"] == "digest" and resolved["needs_attention"] == []
        assert {(r["target"]["name"], r["check"], r["state"]) for r in resolved["resolved"]} == {
            ("drift-03", "oss.tls_versions", "drifted"), ("drift-07", "oss.tls_versions", "drifted")}
        assert all(r["message"].endswith("resolved") for r in resolved["resolved"])
        result_of(fleet.fc.invoke("tlsguard-sweep", timer_event()))
        time.sleep(0.3)
        assert len(alert_sink.alerts) == 2 and alert_sink.bad_signatures == 0
        assert alert_sink.digests() == alert_sink.alerts  # never a per-target message
    finally:
        deployment.close()


def test_an_enforce_sweep_digest_lists_each_remediation_with_its_undo(deployed: Deployment, cloud: LocalCloud,
                                                                      alert_sink: AlertSink) -> None:
    body = result_of(cloud.fc.invoke("tlsguard-sweep", timer_event()))
    [digest] = alert_sink.wait_for(1)
    [remediated] = digest["remediated"]
    journal_id = body["targets"][0]["journal_id"]
    assert remediated["target"]["name"] == "app-drifted" and remediated["journal_id"] == journal_id
    assert remediated["undo"] == f"tlsguard undo {journal_id}" and "oss.tls_versions" in remediated["checks"]
    assert digest["needs_attention"] == [] and digest["counts"]["remediated"] == 1


# -- webhook -------------------------------------------------------------------------------------------------------
def post(deployment: Deployment, body: bytes, *, secret: str = INBOUND_SECRET, stamp: float | None = None,
         method: str = "POST", signature: str | None = None) -> tuple[int, dict[str, Any]]:
    timestamp = str(int(stamp if stamp is not None else time.time()))
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(deployment.http_triggers["tlsguard-webhook"] + "/check", data=body,
                                     method=method, headers={
                                         "Content-Type": "application/json", "X-Tlsguard-Timestamp": timestamp,
                                         "X-Tlsguard-Signature": signature or f"sha256={digest}"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
        assert "Traceback" not in text and "File \"" not in text
        return exc.code, json.loads(text)


def test_signed_request_returns_the_report(deployed: Deployment, cloud: LocalCloud, alert_sink: AlertSink) -> None:
    status, report = post(deployed, b'{"buckets": ["app-drifted", "app-prod", "nope"]}')
    assert status == 200 and report["report_version"] == "2.0" and report["command"] == "webhook-plan"
    assert outcomes(report["targets"]) == {"app-drifted": "drifted", "app-prod": "compliant"}
    assert report["errors"] == ["target nope not found"]
    assert versions(cloud, "app-drifted") == {"TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"}  # plan writes nothing
    [planned] = next(t for t in report["targets"] if t["target"]["name"] == "app-drifted")["actions"]
    assert planned["status"] == "planned" and planned["call"] == "PutBucketHttpsConfig"
    assert report["alerts"] is None  # a plan only reports
    status, report = post(deployed, b'{"buckets": ["app-drifted"], "apply": true}')
    assert status == 200 and report["targets"][0]["outcome"] == "remediated"
    assert report["targets"][0]["trigger"]["kind"] == "webhook"
    assert versions(cloud, "app-drifted") == {"TLSv1.2", "TLSv1.3"}
    [digest] = alert_sink.wait_for(1)
    assert digest["run"]["command"] == "webhook-apply" and digest["remediated"][0]["target"]["name"] == "app-drifted"


@pytest.mark.parametrize(("kwargs", "why"), [
    ({"secret": "wrong-secret"}, "wrong key"),
    ({"stamp": time.time() - 3600}, "replayed an hour later"),
    ({"stamp": time.time() + 3600}, "from the future"),
    ({"signature": "sha256=" + "0" * 64}, "forged"),
    ({"signature": "garbage"}, "malformed"),
])
def test_bad_signatures_get_401(deployed: Deployment, kwargs: dict[str, Any], why: str) -> None:
    status, body = post(deployed, b'{"buckets": ["app-prod"]}', **kwargs)
    assert status == 401, why
    assert body == {"error": "invalid signature or timestamp outside the replay window"}


def test_a_valid_signature_over_another_body_is_refused(deployed: Deployment) -> None:
    stamp = str(int(time.time()))
    signed = hmac.new(INBOUND_SECRET.encode(), stamp.encode() + b'.{"buckets": ["app-prod"]}',
                      hashlib.sha256).hexdigest()
    status, _ = post(deployed, b'{"buckets": ["app-prod"], "apply": true}', stamp=float(stamp),
                     signature=f"sha256={signed}")
    assert status == 401


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"buckets": []}', b'{"buckets": "app-prod"}', b"{}",
                                  b'{"buckets": ["a"], "apply": "yes"}', b'{"buckets": ["a"], "rm": true}',
                                  b'{"domains": [1]}', b'{"targets": [""]}'])
def test_bad_bodies_get_400(deployed: Deployment, body: bytes) -> None:
    status, answer = post(deployed, body)
    assert status == 400 and set(answer) == {"error"}


def test_other_methods_get_405_and_missing_headers_401(deployed: Deployment) -> None:
    status, _ = post(deployed, b"{}", method="PUT")
    assert status == 405
    request = urllib.request.Request(deployed.http_triggers["tlsguard-webhook"], data=b'{"buckets": ["a"]}',
                                     method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401


def test_named_cdn_domains_get_the_posture_check(deployed: Deployment, cloud: LocalCloud) -> None:
    cloud.seed({"certificates": [{"name": "hook-cert", "kind": "valid", "domains": ["hook.cdn.example"]}],
                "cdn_domains": [cdn_domain("hook.cdn.example", "hook-cert", https_tls_version={
                    "tls10": "on", "tls11": "on", "tls12": "on", "tls13": "on", "ciphersuitegroup": "all"})]})
    status, report = post(deployed, b'{"domains": ["hook.cdn.example"]}')
    assert status == 200
    [domain] = report["targets"]
    assert domain["target"]["kind"] == "cdn-domain" and domain["target"]["name"] == "hook.cdn.example"
    assert domain["outcome"] == "drifted" and finding_checks(domain) == {"cdn.tls_versions", "cdn.cipher_suites"}
    assert tls_accepts(cloud.endpoints, "hook.cdn.example", "TLSv1.0")
    status, report = post(deployed, b'{"targets": ["cdn-domain:hook.cdn.example"], "apply": true}')
    assert status == 200 and outcomes(report["targets"]) == {"hook.cdn.example": "remediated"}
    assert cdn_args(cloud, "hook.cdn.example")["https_tls_version"]["tls10"] == "off"
    assert not tls_accepts(cloud.endpoints, "hook.cdn.example", "TLSv1.0")
