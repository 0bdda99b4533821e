"""ActionTrail conformance: an OSS write's record has the shape of ActionTrail's documented OSS sample, and
tlsguard works from the documented fields alone.

The sample (https://help.aliyun.com/document_detail/293590.html, "创建存储空间", PutBucket by a root account) is::

    {"eventId": "6110E64B004C4034363CDC5E", "eventVersion": 1,
     "eventSource": "test-123.oss-cn-hangzhou-cross.aliyuncs.com", "sourceIpAddress": "Internal",
     "eventType": "ApiCall", "referencedResources": {"ACS::OSS::Bucket": ["test-123"]},
     "userIdentity": {"accountId": "...", "principalId": "...", "type": "root-account", "userName": "root"},
     "serviceName": "Oss", "additionalEventData": {"CallerBid": "26842"}, "requestId": "6110E64B004C4034363CDC5E",
     "eventTime": "2021-08-09T08:24:43Z", "isGlobal": false, "acsRegion": "cn-hangzhou", "eventName": "PutBucket"}

It has no ``requestParameters``, ``eventRW``, ``userAgent`` or ``responseElements``, and its ``eventId`` is the
request id. Writes go through alibabacloud-oss-v2 over HTTP; the record is read as EventBridge delivers it.
"""

from __future__ import annotations

import re
from typing import Any

import alibabacloud_oss_v2 as oss
import pytest

from localcloud.cloud import LocalCloud

ROOT = ("LCTESTROOTKEY0000001", "lc-test-root-secret-0000000000001")
ALICE = ("LCTESTUSERKEY0000001", "lc-test-user-secret-0000000000001")
SAMPLE_FIELDS = {"eventId", "eventVersion", "eventSource", "sourceIpAddress", "eventType", "referencedResources",
                 "userIdentity", "serviceName", "additionalEventData", "requestId", "eventTime", "isGlobal",
                 "acsRegion", "eventName"}


def _client(cloud: LocalCloud, key: tuple[str, str], region: str = "cn-hangzhou") -> oss.Client:
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(*key)
    cfg.region = region
    cfg.endpoint = cloud.endpoints["oss"]
    cfg.retry_max_attempts = 1
    return oss.Client(cfg)


def _tls12_only(bucket: str) -> oss.PutBucketHttpsConfigRequest:
    return oss.PutBucketHttpsConfigRequest(bucket=bucket, https_configuration=oss.HttpsConfiguration(
        tls=oss.TLS(enable=True, tls_versions=["TLSv1.2"])))


def test_an_oss_record_has_exactly_the_documented_sample_fields(cloud: LocalCloud) -> None:
    """Field for field the sample's: ``<bucket>.oss-<region>-cross.aliyuncs.com``, ``Internal``, ``Oss``,
    ``isGlobal`` false, ``CallerBid``, the bucket in ``referencedResources``, and ``eventId`` = ``requestId`` = the
    OSS request id the caller saw (also the CloudEvent's ``id``)."""
    cloud.seed({"buckets": [{"name": "trail-shape", "region": "cn-shanghai"}]})
    result = _client(cloud, ROOT, "cn-shanghai").put_bucket_https_config(_tls12_only("trail-shape"))
    envelope = cloud.trail.events()[-1]
    data = envelope["data"]
    assert set(data) == SAMPLE_FIELDS
    assert data["eventId"] == data["requestId"] == result.request_id == envelope["id"]
    assert re.fullmatch(r"[0-9A-F]{24}", data["eventId"])
    assert (data["eventVersion"], data["eventType"], data["serviceName"], data["isGlobal"]) == (1, "ApiCall", "Oss",
                                                                                                 False)
    assert data["eventSource"] == "trail-shape.oss-cn-shanghai-cross.aliyuncs.com"
    assert data["sourceIpAddress"] == "Internal" and data["additionalEventData"] == {"CallerBid": "26842"}
    assert data["referencedResources"] == {"ACS::OSS::Bucket": ["trail-shape"]}
    assert (data["eventName"], data["acsRegion"]) == ("PutBucketHttpsConfig", "cn-shanghai")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["eventTime"])
    identity = data["userIdentity"]
    assert {"accountId", "principalId", "type", "userName"} <= set(identity)
    assert (identity["type"], identity["userName"], identity["accountId"]) == ("root-account", "root",
                                                                               cloud.default_account_id)
    assert (envelope["source"], envelope["type"]) == ("acs.oss", "oss:ActionTrail:ApiCall")


def test_a_failed_call_adds_only_the_error(cloud: LocalCloud) -> None:
    """A refused write is recorded with ``errorCode``/``errorMessage`` (ActionTrail's event structure) and
    otherwise the same fields."""
    cloud.seed({"buckets": [{"name": "trail-failed"}]})
    with pytest.raises(oss.exceptions.OperationError):
        _client(cloud, ALICE).put_bucket_https_config(oss.PutBucketHttpsConfigRequest(
            bucket="trail-failed", https_configuration=oss.HttpsConfiguration(tls=oss.TLS(enable=True,
                                                                                         tls_versions=["TLSv9"]))))
    data = cloud.trail.events()[-1]["data"]
    assert set(data) == SAMPLE_FIELDS | {"errorCode", "errorMessage"}
    assert data["errorCode"] == "MalformedXML" and data["userIdentity"]["type"] == "ram-user"


def test_tlsguard_classifies_the_record_from_the_documented_fields(cloud: LocalCloud) -> None:
    """tlsguard's event parsing needs only ``referencedResources``, ``eventName`` and ``userIdentity`` (the rest is
    optional): the record localcloud delivers, and the same record stripped to those, name the same bucket and
    actor."""
    from tlsguard.functions import events as ev
    from tlsguard.model import TargetKind

    cloud.seed({"buckets": [{"name": "trail-consumer", "region": "cn-shanghai"}]})
    _client(cloud, ALICE, "cn-shanghai").put_bucket_https_config(_tls12_only("trail-consumer"))
    envelope: dict[str, Any] = cloud.trail.events()[-1]
    stripped = dict(envelope, data={k: envelope["data"][k]
                                    for k in ("referencedResources", "eventName", "userIdentity")})
    for delivered in (envelope, stripped):
        change = ev.classify(delivered)
        assert isinstance(change, ev.Change), change
        [target] = change.targets
        assert (target.kind, target.name, target.region) == (TargetKind.OSS_BUCKET, "trail-consumer", "cn-shanghai")
        assert (change.event_id, change.event_name) == (envelope["id"], "PutBucketHttpsConfig")
        trigger = ev.trigger_from_trail(change.record, ["tlsguard-fc-role"])
        assert (trigger.actor, trigger.own) == ("ram-user:ops-alice", False)
