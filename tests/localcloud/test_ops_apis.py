"""The operations APIs localcloud emulates for ``tlsguard doctor``, through the official SDK clients: STS
GetCallerIdentity, ActionTrail LookupEvents, EventBridge ListRules/ListTargets, FC 3.0 ListTriggers, the bucket ACL
in GetBucketInfo, and RAM action restrictions on a user or role (OSS, RPC and FC answers)."""

from __future__ import annotations

import io
import json
from typing import Any

import alibabacloud_oss_v2 as oss
import pytest
from alibabacloud_fc20230330 import models as fc_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_util.models import RuntimeOptions
from aliyunsdkcore.acs_exception.exceptions import ServerException

from localcloud.cloud import LocalCloud
from localcloud.seed import SeedError
from tests.localcloud._rpc_clients import OTHER_KEY, ROOT_KEY, USER_KEY, common_call, make_client

ACCOUNT = "1500000000000001"


def call(cloud: LocalCloud, service: str, version: str, action: str, key: tuple[str, str] = ROOT_KEY,
         token: str | None = None, **params: str) -> dict[str, Any]:
    return common_call(make_client(key, token), cloud.endpoints[service], version, action, **params)


def sts(cloud: LocalCloud, key: tuple[str, str] = ROOT_KEY, token: str | None = None) -> dict[str, Any]:
    return call(cloud, "sts", "2015-04-01", "GetCallerIdentity", key, token)


def lookup(cloud: LocalCloud, key: tuple[str, str] = ROOT_KEY, **params: str) -> dict[str, Any]:
    return call(cloud, "actiontrail", "2020-07-06", "LookupEvents", key, **params)


def eventbridge(cloud: LocalCloud, action: str, key: tuple[str, str] = ROOT_KEY, **params: str) -> dict[str, Any]:
    return call(cloud, "eventbridge", "2020-04-01", action, key, **params)


def oss_client(cloud: LocalCloud, key: tuple[str, str] = ROOT_KEY) -> oss.Client:
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(*key)
    cfg.region = "cn-hangzhou"
    cfg.endpoint = cloud.endpoints["oss"]
    cfg.use_path_style = True
    return oss.Client(cfg)


def put_https(cloud: LocalCloud, bucket: str, key: tuple[str, str] = ROOT_KEY) -> None:
    oss_client(cloud, key).put_bucket_https_config(oss.PutBucketHttpsConfigRequest(
        bucket=bucket, https_configuration=oss.HttpsConfiguration(tls=oss.TLS(enable=True,
                                                                             tls_versions=["TLSv1.2"]))))


def fc_client(cloud: LocalCloud, key: tuple[str, str] = ROOT_KEY) -> Any:
    from alibabacloud_fc20230330.client import Client
    from alibabacloud_tea_openapi.models import Config

    return Client(Config(access_key_id=key[0], access_key_secret=key[1],
                         endpoint=cloud.endpoints["fc"].removeprefix("http://"), protocol="http",
                         region_id=cloud.region))


def test_get_caller_identity_names_the_root_a_ram_user_and_an_assumed_role(cloud: LocalCloud) -> None:
    root = sts(cloud)
    assert root["IdentityType"] == "Account" and root["AccountId"] == ACCOUNT
    assert root["Arn"] == f"acs:ram::{ACCOUNT}:root" and root["RequestId"]
    user = sts(cloud, USER_KEY)
    assert user["IdentityType"] == "RAMUser" and user["Arn"] == f"acs:ram::{ACCOUNT}:user/ops-alice"
    assert user["UserId"] == user["PrincipalId"]
    session = cloud.iam.assume_role(ACCOUNT, "tlsguard-fc-role", "doctor", cloud.clock.time())
    role = sts(cloud, (session.access_key_id, session.access_key_secret), session.security_token)
    assert role["IdentityType"] == "AssumedRoleUser" and "UserId" not in role
    assert role["Arn"] == f"acs:ram::{ACCOUNT}:assumed-role/tlsguard-fc-role/doctor"
    assert role["PrincipalId"] == f"{role['RoleId']}:doctor"
    cloud.iam.restrict(ACCOUNT, "ops-alice", [])  # GetCallerIdentity needs no authorization
    assert sts(cloud, USER_KEY)["IdentityType"] == "RAMUser"


def test_lookup_events_filters_pages_and_keeps_to_the_caller_s_account(cloud: LocalCloud) -> None:
    cloud.seed({"buckets": [{"name": "ops-one"}, {"name": "ops-two"}]})
    for bucket in ("ops-one", "ops-two", "ops-one"):
        put_https(cloud, bucket)
    oss_client(cloud).put_bucket_policy(oss.PutBucketPolicyRequest(bucket="ops-two", body=json.dumps(
        {"Version": "1", "Statement": [{"Effect": "Deny", "Principal": ["*"], "Action": ["oss:*"],
                                        "Resource": ["acs:oss:*:*:ops-two/*"]}]})))
    named = lookup(cloud, **{"LookupAttribute.1.Key": "EventName", "LookupAttribute.1.Value": "PutBucketHttpsConfig"})
    assert [e["referencedResources"]["ACS::OSS::Bucket"] for e in named["Events"]] == [
        ["ops-one"], ["ops-two"], ["ops-one"]][::-1]  # newest first
    assert named["StartTime"].endswith("Z") and "NextToken" not in named
    both = lookup(cloud, **{"LookupAttribute.1.Key": "ServiceName", "LookupAttribute.1.Value": "Oss",
                            "LookupAttribute.2.Key": "ResourceName", "LookupAttribute.2.Value": "ops-two"})
    assert [e["eventName"] for e in both["Events"]] == ["PutBucketPolicy", "PutBucketHttpsConfig"]
    first = lookup(cloud, MaxResults="3")
    assert len(first["Events"]) == 3 and first["NextToken"]
    rest = lookup(cloud, MaxResults="3", NextToken=first["NextToken"])
    assert len(rest["Events"]) == 1 and "NextToken" not in rest
    assert lookup(cloud, OTHER_KEY)["Events"] == []
    for params in ({"MaxResults": "51"}, {"StartTime": "2000-01-01T00:00:00Z"},
                   {"LookupAttribute.1.Key": "Color", "LookupAttribute.1.Value": "blue"},
                   {"StartTime": "not a time"}):
        with pytest.raises(ServerException) as caught:
            lookup(cloud, **params)
        assert caught.value.get_error_code() == "InvalidParameter"


def test_list_rules_and_targets_show_the_bus_rules_and_their_function(cloud: LocalCloud) -> None:
    cloud.events.add_rule("oss-writes", {"source": ["acs.oss"], "data": {"eventName": ["PutBucketPolicy"]}},
                          "tlsguard-on-change", description="OSS writes")
    cloud.events.add_rule("cdn-writes", {"source": ["acs.cdn"]}, "tlsguard-on-change")
    cloud.events.set_enabled("cdn-writes", False)
    answer = eventbridge(cloud, "ListRules", EventBusName="default")
    assert answer["Success"] is True and answer["Code"] == "Success" and answer["Data"]["Total"] == 2
    rules = {r["RuleName"]: r for r in answer["Data"]["Rules"]}
    assert rules["cdn-writes"]["Status"] == "DISABLE" and rules["oss-writes"]["Status"] == "ENABLE"
    assert json.loads(rules["oss-writes"]["FilterPattern"])["data"] == {"eventName": ["PutBucketPolicy"]}
    assert rules["oss-writes"]["RuleARN"] == f"acs:eventbridge:cn-hangzhou:{ACCOUNT}:eventbus/default/rule/oss-writes"
    page = eventbridge(cloud, "ListRules", EventBusName="default", Limit="1")
    assert len(page["Data"]["Rules"]) == 1 and page["Data"]["NextToken"]
    (target,) = eventbridge(cloud, "ListTargets", EventBusName="default", RuleName="oss-writes")["Data"]["Targets"]
    assert target["Type"] == "acs.fc.function"
    assert target["Endpoint"] == f"acs:fc:cn-hangzhou:{ACCOUNT}:functions/tlsguard-on-change"
    for action, params, code in (("ListTargets", {"RuleName": "nope"}, "EventRuleNotExisted"),
                                 ("ListRules", {"EventBusName": "custom"}, "EventBusNotExist")):
        with pytest.raises(ServerException) as caught:
            eventbridge(cloud, action, **params)
        assert caught.value.get_error_code() == code


def test_list_triggers_shows_timers_and_the_triggers_s_yaml_declares(cloud: LocalCloud, tmp_path: Any) -> None:
    from localcloud.cloud import write_endpoints
    from localcloud.sdeploy import deploy

    write_endpoints(tmp_path / "endpoints.json", cloud.endpoints)
    deployment = deploy(cloud, endpoints_file=tmp_path / "endpoints.json", environ={}, http=False)
    try:
        client = fc_client(cloud)
        listed = client.list_triggers_with_options("tlsguard-on-change", fc_models.ListTriggersRequest(), {},
                                                   RuntimeOptions()).body.to_map()["triggers"]
        assert {t["triggerName"]: t["triggerType"] for t in listed} == {"oss-tls-drift": "eventbridge",
                                                                        "cdn-https-drift": "eventbridge"}
        config = json.loads(next(t for t in listed if t["triggerName"] == "oss-tls-drift")["triggerConfig"])
        assert "PutBucketHttpsConfig" in json.loads(config["eventRuleFilterPattern"])["data"]["eventName"]
        timers = client.list_triggers_with_options("tlsguard-sweep", fc_models.ListTriggersRequest(limit=2), {},
                                                   RuntimeOptions()).body.to_map()
        assert [t["triggerType"] for t in timers["triggers"]] == ["timer", "timer"] and timers["nextToken"]
        assert cloud.fc.remove_function("tlsguard-webhook")
        with pytest.raises(ClientException) as caught:
            client.get_function_with_options("tlsguard-webhook", fc_models.GetFunctionRequest(), {},
                                             RuntimeOptions())
        assert caught.value.code == "FunctionNotFound"
    finally:
        deployment.close()


def test_get_bucket_info_reports_the_seeded_acl(cloud: LocalCloud) -> None:
    cloud.seed({"buckets": [{"name": "acl-open", "acl": "public-read"}, {"name": "acl-closed"}]})
    info = oss_client(cloud).get_bucket_info(oss.GetBucketInfoRequest(bucket="acl-open")).bucket_info
    assert info.acl == "public-read"
    assert oss_client(cloud).get_bucket_info(oss.GetBucketInfoRequest(bucket="acl-closed")).bucket_info.acl == \
        "private"
    with pytest.raises(SeedError, match="acl"):
        cloud.seed({"buckets": [{"name": "acl-bad", "acl": "everyone"}]})


def test_a_restricted_identity_gets_each_service_s_access_denied(cloud: LocalCloud) -> None:
    cloud.seed({"buckets": [{"name": "ram-bucket"}], "functions": [
        {"name": "ram-fn", "handler": "tests.localcloud.fc.sample_functions.echo"}]})
    cloud.iam.restrict(ACCOUNT, "ops-alice", ["oss:Get*", "cdn:Describe*"])
    user = oss_client(cloud, USER_KEY)
    assert user.get_bucket_https_config(oss.GetBucketHttpsConfigRequest(bucket="ram-bucket")).https_configuration
    with pytest.raises(oss.exceptions.OperationError) as caught:
        put_https(cloud, "ram-bucket", USER_KEY)
    error = caught.value.unwrap()
    assert (error.status_code, error.code, error.ec) == (403, "AccessDenied", "0003-00000202")
    denied = [e["data"] for e in cloud.trail.events() if e["data"].get("errorCode")]
    assert [d["eventName"] for d in denied] == ["PutBucketHttpsConfig"]  # the refused write is recorded
    with pytest.raises(oss.exceptions.OperationError):
        user.list_buckets(oss.ListBucketsRequest())
    assert call(cloud, "cdn", "2018-05-10", "DescribeUserDomains", USER_KEY)["Domains"] == {"PageData": []}
    with pytest.raises(ServerException) as rpc_denied:
        call(cloud, "cas", "2020-04-07", "ListUserCertificateOrder", USER_KEY)
    assert (rpc_denied.value.get_http_status(), rpc_denied.value.get_error_code()) == (403, "Forbidden.RAM")
    with pytest.raises(ClientException) as fc_denied:
        fc_client(cloud, USER_KEY).invoke_function_with_options(
            "ram-fn", fc_models.InvokeFunctionRequest(body=io.BytesIO(b"{}")), fc_models.InvokeFunctionHeaders(),
            RuntimeOptions())
    assert fc_denied.value.code == "AccessDenied"
    put_https(cloud, "ram-bucket")  # the root account is never restricted
    cloud.iam.restrict(ACCOUNT, "ops-alice", None)
    put_https(cloud, "ram-bucket", USER_KEY)
