"""s.yaml: every fc3 resource validates against the pinned fc3 props schema, and every EventBridge filter pattern
parses and matches the ActionTrail events localcloud emits for exactly the actions tlsguard reacts to."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from jsonschema import Draft7Validator
from tlsguard import settings
from tlsguard.functions.events import event_names

from localcloud.eventbridge.pattern import matches, parse_pattern
from localcloud.fc.timers import parse_schedule
from localcloud.sdeploy import DEFAULT_SYAML, load_syaml
from tests.functions.conftest import USER_KEY

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud

REPO = Path(__file__).resolve().parents[2]
OSS_EVENT_NAMES = event_names("oss")
CDN_EVENT_NAMES = event_names("cdn")
#: The vendored copy (deploy/schemas/README.md); the reference copy beside the repository, when present.
SCHEMA_PATH = REPO / "deploy" / "schemas" / "fc3-props.schema.json"
REFERENCE_SCHEMA_PATH = REPO.parent / "shared" / "schemas" / "fc3-props.schema.json"
TRIGGER_DEFINITIONS = {"timer": "ITimerTriggerConfig", "eventbridge": "IEventBridge", "http": "IHttpTriggerConfig"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return document


@pytest.fixture(scope="module")
def syaml() -> dict[str, Any]:
    return load_syaml(DEFAULT_SYAML, environ={"TLSGUARD_INBOUND_SECRET": "from-the-deploy-environment"})


def resources(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(key, r["props"]) for key, r in document["resources"].items() if r.get("component") == "fc3"]


def triggers(document: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(props["functionName"], t) for _, props in resources(document) for t in props.get("triggers") or []
            if t["triggerType"] == kind]


def test_every_resource_validates_against_the_fc3_props_schema(schema: dict[str, Any],
                                                               syaml: dict[str, Any]) -> None:
    validator = Draft7Validator(schema)
    assert syaml["edition"] == "3.0.0" and resources(syaml)
    for key, props in resources(syaml):
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(props)]
        assert not errors, f"resources.{key}: {errors}"
        # triggerConfig is an anyOf in the schema; hold each one to its own type's definition as well.
        for trigger in props.get("triggers") or []:
            definition = {**schema["definitions"][TRIGGER_DEFINITIONS[trigger["triggerType"]]],
                          "definitions": schema["definitions"]}
            errors = [e.message for e in Draft7Validator(definition).iter_errors(trigger["triggerConfig"])]
            assert not errors, f"resources.{key} trigger {trigger['triggerName']}: {errors}"


def test_a_broken_resource_is_caught_by_the_schema(schema: dict[str, Any], syaml: dict[str, Any]) -> None:
    _, props = resources(syaml)[0]
    broken = {**props, "runtime": "python3.13", "memorySize": "lots"}
    assert len(list(Draft7Validator(schema).iter_errors(broken))) >= 2


def test_runtimes_roles_regions_logs_and_async_config(syaml: dict[str, Any]) -> None:
    raw = DEFAULT_SYAML.read_text()
    names = {props["functionName"] for _, props in resources(syaml)}
    assert names == {"tlsguard-sweep", "tlsguard-check", "tlsguard-on-change", "tlsguard-webhook", "tlsguard-failed",
                     "tlsguard-cert-renewal"}
    for key, props in resources(syaml):
        assert props["runtime"] in ("python3.10", "python3.12")
        assert props["role"] == f"acs:ram::{syaml['vars']['accountId']}:role/{syaml['vars']['roleName']}"
        assert props["region"] == syaml["vars"]["region"]
        assert props["logConfig"] == {"project": syaml["vars"]["logProject"], "logstore": syaml["vars"]["logStore"]}
        assert re.match(r"^\./dist/[a-z_]+\.zip$", props["code"]) and props["handler"] == "index.handler"
        assert set(props["environmentVariables"]) <= set(settings.ALL), key
        destination = ((props.get("asyncInvokeConfig") or {}).get("destinationConfig") or {}).get("onFailure")
        if destination:
            assert destination["destination"].rsplit("functions/", 1)[1] in names
    # Role ARN and region come from variables, not literals, in the file itself.
    assert raw.count("role: acs:ram::${vars.accountId}:role/${vars.roleName}") == len(names)
    assert raw.count("region: ${vars.region}") == len(names)
    # The inbound secret is injected at deploy time, never written in the file.
    webhook = next(p for _, p in resources(syaml) if p["functionName"] == "tlsguard-webhook")
    assert webhook["environmentVariables"]["TLSGUARD_INBOUND_SECRET"] == "from-the-deploy-environment"
    assert "${env('TLSGUARD_INBOUND_SECRET')}" in raw


def test_timers_parse_as_fc_cron(syaml: dict[str, Any]) -> None:
    timers = triggers(syaml, "timer")
    assert {(f, t["triggerName"]) for f, t in timers} == {("tlsguard-sweep", "hourly"),
                                                           ("tlsguard-sweep", "nightly-inline-report"),
                                                           ("tlsguard-sweep", "pending-verifications"),
                                                           ("tlsguard-cert-renewal", "daily")}
    payloads = {}
    for _, trigger in timers:
        parse_schedule(trigger["triggerConfig"]["cronExpression"])
        payloads[trigger["triggerName"]] = json.loads(trigger["triggerConfig"]["payload"])
    # The frequent timer only probes the endpoints whose changes have had time to propagate.
    assert payloads["pending-verifications"] == {"verify_only": True}
    assert payloads["hourly"] == {} and payloads["nightly-inline-report"] == {"inline": True}


def test_the_http_trigger_is_post_only_on_the_webhook(syaml: dict[str, Any]) -> None:
    [(function, trigger)] = triggers(syaml, "http")
    assert function == "tlsguard-webhook" and trigger["triggerConfig"]["methods"] == ["POST"]


def emit_every_write(cloud: LocalCloud) -> list[dict[str, Any]]:
    """Call every OSS and CDN write localcloud records in ActionTrail, through the official SDKs, as ops-alice."""
    import alibabacloud_oss_v2 as oss
    from tlsguard.adapters.cdn import AliyunCdn
    from tlsguard.certs._rpc import RpcConnection

    cloud.seed({"buckets": [{"name": "events-bucket", "region": "cn-hangzhou"}],
                "cdn_domains": [{"name": "cdn.example.test"}]})
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(*USER_KEY)
    cfg.region, cfg.endpoint, cfg.use_path_style = cloud.region, cloud.endpoints["oss"], True
    client = oss.Client(cfg)
    bucket = "events-bucket"
    calls = [
        lambda: client.put_bucket_https_config(oss.PutBucketHttpsConfigRequest(bucket=bucket, https_configuration=(
            oss.HttpsConfiguration(tls=oss.TLS(enable=True, tls_versions=["TLSv1.2"]))))),
        lambda: client.put_bucket_policy(oss.PutBucketPolicyRequest(bucket=bucket, body=json.dumps({
            "Version": "1", "Statement": [{"Effect": "Deny", "Principal": ["*"], "Action": ["oss:GetObject"],
                                           "Resource": [f"acs:oss:*:*:{bucket}/*"]}]}))),
        lambda: client.delete_bucket_policy(oss.DeleteBucketPolicyRequest(bucket=bucket)),
        lambda: client.put_bucket_encryption(oss.PutBucketEncryptionRequest(
            bucket=bucket, server_side_encryption_rule=oss.ServerSideEncryptionRule(
                apply_server_side_encryption_by_default=oss.ApplyServerSideEncryptionByDefault(
                    sse_algorithm="AES256")))),
        lambda: client.delete_bucket_encryption(oss.DeleteBucketEncryptionRequest(bucket=bucket)),
        lambda: client.put_bucket_tags(oss.PutBucketTagsRequest(bucket=bucket, tagging=oss.Tagging(
            tag_set=oss.TagSet(tags=[oss.Tag(key="env", value="prod")])))),
        lambda: client.delete_bucket_tags(oss.DeleteBucketTagsRequest(bucket=bucket)),
        lambda: client.put_cname(oss.PutCnameRequest(bucket=bucket, bucket_cname_configuration=(
            oss.BucketCnameConfiguration(cname=oss.Cname(domain="www.example.test"))))),
        lambda: client.delete_cname(oss.DeleteCnameRequest(bucket=bucket, bucket_cname_configuration=(
            oss.BucketCnameConfiguration(cname=oss.Cname(domain="www.example.test"))))),
    ]
    for call in calls:
        try:
            call()
        except Exception:  # a refused write is recorded too (with errorCode); its event counts as well
            pass
    cdn = AliyunCdn(RpcConnection(region=cloud.region, access_key_id=USER_KEY[0], access_key_secret=USER_KEY[1],
                                  domain=cloud.endpoints["cdn"], protocol="http"))
    cdn.batch_set_config("cdn.example.test", {"https_force": {"enable": "on"}})
    for call in (lambda: cdn.set_cas_certificate("cdn.example.test", 999999),
                 lambda: cdn.delete_config("cdn.example.test", "1")):
        try:
            call()
        except Exception:
            pass
    return cloud.trail.events()


def test_filter_patterns_match_exactly_the_reacted_events(cloud: LocalCloud, syaml: dict[str, Any]) -> None:
    emitted = emit_every_write(cloud)
    oss_names = {e["data"]["eventName"] for e in emitted if e["source"] == "acs.oss"}
    cdn_names = {e["data"]["eventName"] for e in emitted if e["source"] == "acs.cdn"}
    # Every OSS management write localcloud records was exercised, and the CDN writes too.
    assert oss_names >= {*OSS_EVENT_NAMES, "PutBucketTags", "DeleteBucketTags", "PutCname", "DeleteCname"}
    assert {"BatchSetCdnDomainConfig", "SetCdnDomainSSLCertificate", "DeleteSpecificConfig"} <= cdn_names
    rules = {t["triggerName"]: (function, parse_pattern(t["triggerConfig"]["eventRuleFilterPattern"]))
             for function, t in triggers(syaml, "eventbridge")}
    assert {name: function for name, (function, _) in rules.items()} == {
        "oss-tls-drift": "tlsguard-on-change", "cdn-https-drift": "tlsguard-on-change"}
    expected = {"oss-tls-drift": ("acs.oss", set(OSS_EVENT_NAMES)),
                "cdn-https-drift": ("acs.cdn", set(CDN_EVENT_NAMES))}
    for name, (_, pattern) in rules.items():
        source, names = expected[name]
        assert set(pattern["data"]["eventName"]) == names
        matched = {(e["source"], e["data"]["eventName"]) for e in emitted if matches(pattern, e)}
        assert matched == {(source, n) for n in names}, name
    every = {e["data"]["eventName"] for e in emitted if any(matches(p, e) for _, p in rules.values())}
    assert every == set(OSS_EVENT_NAMES) | set(CDN_EVENT_NAMES)
    # Custom-domain bindings and CDN certificate changes are delivered (issue 13); tag writes never are.
    assert {"PutCname", "DeleteCname", "SetCdnDomainSSLCertificate", "BatchSetCdnDomainConfig"} <= every
    unmatched = {e["data"]["eventName"] for e in emitted} - every
    assert unmatched >= {"PutBucketTags", "DeleteBucketTags"}
    # The console variant of a reacted event matches as well; another source never does.
    oss_pattern = rules["oss-tls-drift"][1]
    console = {**emitted[0], "type": "oss:ActionTrail:ConsoleOperation"}
    assert emitted[0]["data"]["eventName"] == "PutBucketHttpsConfig" and matches(oss_pattern, console)
    assert not matches(oss_pattern, {**emitted[0], "source": "acs.actiontrail"})


def test_vendored_fc3_schema_is_the_reference_copy() -> None:
    # GIVEN the team's reference schema beside the repository (CI has it; a bare clone may not)
    if not REFERENCE_SCHEMA_PATH.exists():
        assert SCHEMA_PATH.exists()  # the vendored copy is what the other tests use
        return
    # THEN the vendored copy is byte-for-byte the reference
    assert SCHEMA_PATH.read_bytes() == REFERENCE_SCHEMA_PATH.read_bytes()
