"""OSS bucket operations through alibabacloud-oss-v2 (V4 and V1 signing) and oss2 (V1), against localcloud."""

from __future__ import annotations

import json
from typing import Any

import alibabacloud_oss_v2 as oss
import oss2
import pytest

from localcloud.faults import FaultRule

SIGNING = pytest.mark.parametrize("signature_version", ["v4", "v1"])


def _error(exc_info: pytest.ExceptionInfo[BaseException]) -> Any:
    error = exc_info.value
    assert isinstance(error, oss.exceptions.OperationError)
    return error.unwrap()


@SIGNING
def test_list_buckets_pages_and_shows_truncation_fields_only_when_truncated(cloud, client_factory, seed_buckets,
                                                                             signature_version) -> None:
    seed_buckets(*({"name": f"page-bucket-{i:02d}", "region": "cn-shanghai" if i % 2 else "cn-hangzhou"}
                   for i in range(7)))
    seed_buckets({"name": "other-account-bucket", "account": "1500000000000002"})
    client = client_factory(signature_version=signature_version)
    full = client.list_buckets(oss.ListBucketsRequest())
    assert [b.name for b in full.buckets] == [f"page-bucket-{i:02d}" for i in range(7)]
    assert full.is_truncated is None and full.next_marker is None and full.max_keys is None
    assert full.buckets[1].region == "cn-shanghai" and full.buckets[1].location == "oss-cn-shanghai"
    names = []
    for page in client.list_buckets_paginator(limit=3).iter_page(oss.ListBucketsRequest(prefix="page-")):
        names.append([b.name for b in page.buckets])
    assert names == [[f"page-bucket-{i:02d}" for i in r] for r in (range(3), range(3, 6), range(6, 7))]
    first = client.list_buckets(oss.ListBucketsRequest(max_keys=3))
    assert first.is_truncated is True and first.next_marker == "page-bucket-02" and first.max_keys == 3


def test_list_buckets_filters_by_tag(cloud, client, seed_buckets) -> None:
    seed_buckets({"name": "tagged-prod", "tags": {"env": "prod"}}, {"name": "tagged-dev", "tags": {"env": "dev"}},
                 {"name": "untagged-one"})
    result = client.list_buckets(oss.ListBucketsRequest(tag_key="env", tag_value="prod"))
    assert [b.name for b in result.buckets] == ["tagged-prod"]
    assert [b.name for b in client.list_buckets(oss.ListBucketsRequest(tag_key="env")).buckets] == [
        "tagged-dev", "tagged-prod"]


@SIGNING
def test_get_bucket_info(cloud, client_factory, seed_buckets, signature_version) -> None:
    seed_buckets({"name": "info-bucket", "region": "cn-shanghai", "storage_class": "IA",
                  "encryption": {"algorithm": "KMS", "kms_key_id": "key-1"}})
    client = client_factory(region="cn-shanghai", signature_version=signature_version)
    info = client.get_bucket_info(oss.GetBucketInfoRequest(bucket="info-bucket")).bucket_info
    assert (info.name, info.location, info.storage_class) == ("info-bucket", "oss-cn-shanghai", "IA")
    assert info.extranet_endpoint == "oss-cn-shanghai.aliyuncs.com"
    assert (info.sse_rule.sse_algorithm, info.sse_rule.kms_master_key_id) == ("KMS", "key-1")
    assert info.owner.id == "1500000000000001"


def _https(versions: list[str], *, enable: bool = True, cipher: oss.CipherSuite | None = None) -> Any:
    return oss.HttpsConfiguration(tls=oss.TLS(enable=enable, tls_versions=versions), cipher_suite=cipher)


@SIGNING
def test_https_config_round_trip_and_tls_registry(cloud, client_factory, seed_buckets, signature_version) -> None:
    seed_buckets({"name": "https-bucket"})
    client = client_factory(signature_version=signature_version)
    never = client.get_bucket_https_config(oss.GetBucketHttpsConfigRequest(bucket="https-bucket"))
    assert never.https_configuration.tls.enable is False and never.https_configuration.cipher_suite is None
    cipher = oss.CipherSuite(enable=True, strong_cipher_suite=False,
                             custom_cipher_suites=["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"],
                             tls13_custom_cipher_suites=["TLS_AES_256_GCM_SHA384"])
    client.put_bucket_https_config(oss.PutBucketHttpsConfigRequest(
        bucket="https-bucket", https_configuration=_https(["TLSv1.2", "TLSv1.3"], cipher=cipher)))
    got = client.get_bucket_https_config(oss.GetBucketHttpsConfigRequest(bucket="https-bucket")).https_configuration
    assert got.tls.enable is True and got.tls.tls_versions == ["TLSv1.2", "TLSv1.3"]
    assert got.cipher_suite.enable is True and got.cipher_suite.strong_cipher_suite is False
    assert got.cipher_suite.custom_cipher_suites == ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"]
    assert got.cipher_suite.tls13_custom_cipher_suites == ["TLS_AES_256_GCM_SHA384"]
    served = cloud.tls.effective("https-bucket.oss-cn-hangzhou.aliyuncs.com", cloud.clock.time())
    assert served.versions == ("TLSv1.2", "TLSv1.3") and served.cipher_mode == "custom"
    assert served.custom_tls13 == ("TLS_AES_256_GCM_SHA384",) and served.kind == "oss-default" and served.chain_pem


def test_https_config_change_waits_for_propagation(cloud, client, seed_buckets) -> None:
    seed_buckets({"name": "slow-bucket", "https_config": {"tls": {"enable": True, "versions": ["TLSv1.2"]}}})
    cloud.tls.propagation_seconds = 600
    host = "slow-bucket.oss-cn-hangzhou.aliyuncs.com"
    client.put_bucket_https_config(oss.PutBucketHttpsConfigRequest(
        bucket="slow-bucket", https_configuration=_https(["TLSv1.0", "TLSv1.2"])))
    assert cloud.tls.effective(host, cloud.clock.time()).versions == ("TLSv1.2",)
    cloud.clock.advance(601)
    assert cloud.tls.effective(host, cloud.clock.time()).versions == ("TLSv1.0", "TLSv1.2")


@pytest.mark.parametrize(("body", "code", "argument"), [
    (_https([], enable=True), "MalformedXML", None),  # as the official SDK's tests expect (test_conformance.py)
    (_https(["TLSv1.4"]), "MalformedXML", None),
    (_https(["TLSv1.2"], cipher=oss.CipherSuite(enable=True, strong_cipher_suite=False,
                                                custom_cipher_suites=["NOT-A-SUITE"])), "InvalidArgument",
     "CustomCipherSuite"),
    (_https(["TLSv1.2"], cipher=oss.CipherSuite(enable=True, strong_cipher_suite=False,
                                                tls13_custom_cipher_suites=["TLS_AES_128_GCM_SHA256"])),
     "InvalidArgument", "TLS13CustomCipherSuite"),
    (_https(["TLSv1.3"], cipher=oss.CipherSuite(enable=True, strong_cipher_suite=False,
                                                custom_cipher_suites=["ECDHE-RSA-AES128-GCM-SHA256"])),
     "InvalidArgument", "CustomCipherSuite"),
    (_https(["TLSv1.2"], cipher=oss.CipherSuite(enable=True, strong_cipher_suite=False)), "InvalidArgument",
     "CustomCipherSuite"),
])
def test_https_config_validation(cloud, client, seed_buckets, body, code, argument) -> None:
    seed_buckets({"name": "strict-bucket"})
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.put_bucket_https_config(oss.PutBucketHttpsConfigRequest(bucket="strict-bucket",
                                                                        https_configuration=body))
    error = _error(info)
    assert (error.status_code, error.code) == (400, code)
    assert argument is None or f"<ArgumentName>{argument}</ArgumentName>".encode() in error.snapshot
    assert cloud.oss.get("strict-bucket").https_configured is False
    event = cloud.trail.events()[-1]["data"]
    assert event["eventName"] == "PutBucketHttpsConfig" and event["errorCode"] == code


def test_malformed_https_xml(cloud, seed_buckets, oss2_bucket) -> None:
    seed_buckets({"name": "xml-bucket"})
    bucket = oss2_bucket("xml-bucket")
    for payload in (b"<HttpsConfiguration><TLS>", b"<Other/>", b"<HttpsConfiguration/>",
                    b"<HttpsConfiguration><TLS><Enable>maybe</Enable></TLS></HttpsConfiguration>"):
        with pytest.raises(oss2.exceptions.ServerError) as info:
            bucket._Bucket__do_bucket("PUT", data=payload, params={"httpsConfig": ""})
        assert (info.value.status, info.value.code) == (400, "MalformedXML")


def test_oss2_reads_tls_and_its_put_replaces_the_whole_document(cloud, client, seed_buckets, oss2_bucket) -> None:
    seed_buckets({"name": "oss2-bucket", "https_config": {
        "tls": {"enable": True, "versions": ["TLSv1.2", "TLSv1.3"]}, "cipher_suite": {"enable": True, "strong": True}}})
    bucket = oss2_bucket("oss2-bucket")
    result = bucket.get_bucket_https_config()
    assert result.tls_enabled is True and result.tls_version == ["TLSv1.2", "TLSv1.3"]
    bucket.put_bucket_https_config(oss2.models.BucketTlsVersion(True, ["TLSv1.2"]))
    after = client.get_bucket_https_config(oss.GetBucketHttpsConfigRequest(bucket="oss2-bucket")).https_configuration
    # oss2 writes only <TLS>: PUT replaces the whole document, so the strong cipher setting is gone.
    assert after.tls.tls_versions == ["TLSv1.2"] and after.cipher_suite is None
    assert cloud.tls.effective("oss2-bucket.oss-cn-hangzhou.aliyuncs.com", cloud.clock.time()).cipher_mode == "all"


HTTPS_ONLY = {"Version": "1", "Statement": [{
    "Effect": "Deny", "Principal": ["*"], "Action": ["oss:*"],
    "Resource": ["acs:oss:*:*:policy-bucket", "acs:oss:*:*:policy-bucket/*"],
    "Condition": {"Bool": {"acs:SecureTransport": "false"}}}]}


@SIGNING
def test_policy_round_trip_and_errors(cloud, client_factory, seed_buckets, signature_version) -> None:
    seed_buckets({"name": "policy-bucket"})
    client = client_factory(signature_version=signature_version)
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.get_bucket_policy(oss.GetBucketPolicyRequest(bucket="policy-bucket"))
    assert (_error(info).status_code, _error(info).code, _error(info).ec) == (404, "NoSuchBucketPolicy",
                                                                              "0030-00000006")
    allow = {"Version": "1", "Statement": [{"Effect": "Allow", "Principal": ["20000001"], "Action": ["oss:GetObject"],
                                            "Resource": ["acs:oss:*:*:policy-bucket/*"]}]}
    client.put_bucket_policy(oss.PutBucketPolicyRequest(bucket="policy-bucket", body=json.dumps(allow)))
    assert json.loads(client.get_bucket_policy(oss.GetBucketPolicyRequest(bucket="policy-bucket")).body) == allow
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.put_bucket_policy(oss.PutBucketPolicyRequest(bucket="policy-bucket", body="{not json"))
    assert _error(info).code == "InvalidPolicyDocument"
    client.delete_bucket_policy(oss.DeleteBucketPolicyRequest(bucket="policy-bucket"))
    with pytest.raises(oss.exceptions.OperationError):
        client.get_bucket_policy(oss.GetBucketPolicyRequest(bucket="policy-bucket"))
    names = [(e["data"]["eventName"], e["data"].get("errorCode")) for e in cloud.trail.events()]
    assert names == [("PutBucketPolicy", None), ("PutBucketPolicy", "InvalidPolicyDocument"),
                     ("DeleteBucketPolicy", None)]


@pytest.mark.parametrize("condition_value", ["false", False, ["false"]])
def test_https_only_policy_rejects_plain_http_even_for_the_owner(cloud, client, seed_buckets,
                                                                 condition_value) -> None:
    policy = json.loads(json.dumps(HTTPS_ONLY))
    policy["Statement"][0]["Condition"]["Bool"]["acs:SecureTransport"] = condition_value
    seed_buckets({"name": "policy-bucket", "policy": policy})
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.get_bucket_https_config(oss.GetBucketHttpsConfigRequest(bucket="policy-bucket"))
    assert (_error(info).status_code, _error(info).code) == (403, "AccessDenied")
    with pytest.raises(oss.exceptions.OperationError):
        client.put_object(oss.PutObjectRequest(bucket="policy-bucket", key="k", body=b"x"))
    # The owner can still manage the policy itself, so it cannot lock itself out.
    client.delete_bucket_policy(oss.DeleteBucketPolicyRequest(bucket="policy-bucket"))
    client.get_bucket_https_config(oss.GetBucketHttpsConfigRequest(bucket="policy-bucket"))


def test_deny_without_condition_exempts_the_owner(cloud, client, seed_buckets) -> None:
    policy = {"Version": "1", "Statement": [{"Effect": "Deny", "Principal": ["*"], "Action": ["oss:*"],
                                             "Resource": ["acs:oss:*:*:policy-bucket"]}]}
    seed_buckets({"name": "policy-bucket", "policy": policy})
    client.get_bucket_https_config(oss.GetBucketHttpsConfigRequest(bucket="policy-bucket"))


@pytest.mark.parametrize(("rule", "expected"), [
    (oss.ApplyServerSideEncryptionByDefault(sse_algorithm="AES256"), ("AES256", None, None)),
    (oss.ApplyServerSideEncryptionByDefault(sse_algorithm="KMS", kms_master_key_id="kms-key-1"),
     ("KMS", "kms-key-1", None)),
    (oss.ApplyServerSideEncryptionByDefault(sse_algorithm="KMS", kms_data_encryption="SM4"), ("KMS", None, "SM4")),
    (oss.ApplyServerSideEncryptionByDefault(sse_algorithm="SM4"), ("SM4", None, None)),
])
@SIGNING
def test_encryption_round_trip(cloud, client_factory, seed_buckets, rule, expected, signature_version) -> None:
    seed_buckets({"name": "sse-bucket"})
    client = client_factory(signature_version=signature_version)
    client.put_bucket_encryption(oss.PutBucketEncryptionRequest(
        bucket="sse-bucket", server_side_encryption_rule=oss.ServerSideEncryptionRule(
            apply_server_side_encryption_by_default=rule)))
    got = client.get_bucket_encryption(oss.GetBucketEncryptionRequest(bucket="sse-bucket"))
    by_default = got.server_side_encryption_rule.apply_server_side_encryption_by_default
    assert (by_default.sse_algorithm, by_default.kms_master_key_id, by_default.kms_data_encryption) == expected
    client.delete_bucket_encryption(oss.DeleteBucketEncryptionRequest(bucket="sse-bucket"))
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.get_bucket_encryption(oss.GetBucketEncryptionRequest(bucket="sse-bucket"))
    error = _error(info)
    assert (error.status_code, error.code, error.ec) == (404, "NoSuchServerSideEncryptionRule", "0005-00000004")
    assert [e["data"]["eventName"] for e in cloud.trail.events()] == ["PutBucketEncryption", "DeleteBucketEncryption"]


def test_encryption_validation(cloud, client, seed_buckets) -> None:
    seed_buckets({"name": "sse-bucket"})
    for rule, code, ec in (
            (oss.ApplyServerSideEncryptionByDefault(sse_algorithm="DES"), "InvalidEncryptionAlgorithmError",
             "0005-00000003"),
            (oss.ApplyServerSideEncryptionByDefault(sse_algorithm="AES256", kms_master_key_id="k"), "InvalidArgument",
             "0005-00000204")):
        with pytest.raises(oss.exceptions.OperationError) as info:
            client.put_bucket_encryption(oss.PutBucketEncryptionRequest(
                bucket="sse-bucket", server_side_encryption_rule=oss.ServerSideEncryptionRule(
                    apply_server_side_encryption_by_default=rule)))
        assert (_error(info).code, _error(info).ec) == (code, ec)


@SIGNING
def test_tags_round_trip(cloud, client_factory, seed_buckets, signature_version) -> None:
    seed_buckets({"name": "tag-bucket", "tags": {"old": "1"}})
    client = client_factory(signature_version=signature_version)
    tagging = oss.Tagging(tag_set=oss.TagSet(tags=[oss.Tag(key="env", value="prod"),
                                                   oss.Tag(key="tls", value="strict")]))
    client.put_bucket_tags(oss.PutBucketTagsRequest(bucket="tag-bucket", tagging=tagging))
    tags = client.get_bucket_tags(oss.GetBucketTagsRequest(bucket="tag-bucket")).tagging.tag_set.tags
    assert {t.key: t.value for t in tags} == {"env": "prod", "tls": "strict"}
    client.delete_bucket_tags(oss.DeleteBucketTagsRequest(bucket="tag-bucket"))
    assert client.get_bucket_tags(oss.GetBucketTagsRequest(bucket="tag-bucket")).tagging.tag_set.tags in (None, [])
    event = cloud.trail.events()[0]["data"]
    assert event["eventName"] == "PutBucketTags" and event["referencedResources"] == {
        "ACS::OSS::Bucket": ["tag-bucket"]}


@SIGNING
def test_objects_with_forbid_overwrite_and_listing(cloud, client_factory, seed_buckets, signature_version) -> None:
    seed_buckets({"name": "journal-bucket"})
    client = client_factory(signature_version=signature_version)
    client.put_object(oss.PutObjectRequest(bucket="journal-bucket", key="runs/2026/a b.json", body=b'{"a":1}',
                                           forbid_overwrite=True))
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.put_object(oss.PutObjectRequest(bucket="journal-bucket", key="runs/2026/a b.json", body=b"{}",
                                               forbid_overwrite=True))
    assert (_error(info).status_code, _error(info).code, _error(info).ec) == (409, "FileAlreadyExists",
                                                                              "0026-00000201")
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.put_object(oss.PutObjectRequest(bucket="journal-bucket", key="other", body=b"{}",
                                               headers={"x-oss-forbid-overwrite": "sometimes"}))
    assert (_error(info).code, _error(info).ec) == ("InvalidArgument", "0017-00000279")
    got = client.get_object(oss.GetObjectRequest(bucket="journal-bucket", key="runs/2026/a b.json"))
    assert got.body.read() == b'{"a":1}'
    head = client.head_object(oss.HeadObjectRequest(bucket="journal-bucket", key="runs/2026/a b.json"))
    assert head.content_length == 7 and head.etag == got.etag
    for i in range(5):
        client.put_object(oss.PutObjectRequest(bucket="journal-bucket", key=f"idem/{i}", body=b"x"))
    keys = []
    for page in client.list_objects_v2_paginator(limit=2).iter_page(
            oss.ListObjectsV2Request(bucket="journal-bucket", prefix="idem/")):
        keys.extend(o.key for o in page.contents)
    assert keys == [f"idem/{i}" for i in range(5)]
    v1 = client.list_objects(oss.ListObjectsRequest(bucket="journal-bucket", delimiter="/"))
    assert [p.prefix for p in v1.common_prefixes] == ["idem/", "runs/"]
    client.delete_object(oss.DeleteObjectRequest(bucket="journal-bucket", key="runs/2026/a b.json"))
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.head_object(oss.HeadObjectRequest(bucket="journal-bucket", key="runs/2026/a b.json"))
    assert _error(info).status_code == 404
    assert cloud.trail.events() == []  # object writes are data events, not management events


def test_oss2_objects_and_forbid_overwrite(cloud, seed_buckets, oss2_bucket) -> None:
    seed_buckets({"name": "oss2-journal"})
    bucket = oss2_bucket("oss2-journal")
    bucket.put_object("record", b"one", headers={"x-oss-forbid-overwrite": "true"})
    with pytest.raises(oss2.exceptions.ServerError) as info:
        bucket.put_object("record", b"two", headers={"x-oss-forbid-overwrite": "true"})
    assert (info.value.status, info.value.code) == (409, "FileAlreadyExists")
    assert bucket.get_object("record").read() == b"one"


def test_missing_and_foreign_buckets(cloud, client, client_factory, seed_buckets) -> None:
    seed_buckets({"name": "foreign-bucket", "account": "1500000000000002"})
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.get_bucket_https_config(oss.GetBucketHttpsConfigRequest(bucket="no-such-bucket"))
    assert (_error(info).status_code, _error(info).code) == (404, "NoSuchBucket")
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.put_bucket_https_config(oss.PutBucketHttpsConfigRequest(
            bucket="foreign-bucket", https_configuration=_https(["TLSv1.2"])))
    assert (_error(info).status_code, _error(info).code) == (403, "AccessDenied")
    assert cloud.oss.get("foreign-bucket").https_configured is False


def test_unemulated_operation_is_not_implemented(cloud, client, seed_buckets) -> None:
    seed_buckets({"name": "plain-bucket"})
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.get_bucket_acl(oss.GetBucketAclRequest(bucket="plain-bucket"))
    assert (_error(info).status_code, _error(info).code) == (501, "NotImplemented")


def test_throttle_fault_is_slow_down(cloud, client, seed_buckets) -> None:
    seed_buckets({"name": "busy-bucket"})
    cloud.faults.add(FaultRule(kind="throttle", service="oss", operation="GetBucketHttpsConfig",
                               resource="busy-bucket"))
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.get_bucket_https_config(oss.GetBucketHttpsConfigRequest(bucket="busy-bucket"))
    error = _error(info)
    assert (error.status_code, error.code) == (503, "SlowDown") and error.request_id
    client.get_bucket_tags(oss.GetBucketTagsRequest(bucket="busy-bucket"))


def test_trail_event_names_the_caller_and_parameters(cloud, client_factory, seed_buckets) -> None:
    seed_buckets({"name": "trail-bucket", "region": "cn-shanghai"})
    alice = client_factory(key=("LCTESTUSERKEY0000001", "lc-test-user-secret-0000000000001"), region="cn-shanghai")
    alice.put_bucket_https_config(oss.PutBucketHttpsConfigRequest(
        bucket="trail-bucket", https_configuration=_https(["TLSv1.2", "TLSv1.3"])))
    envelope = cloud.trail.events()[-1]
    data = envelope["data"]
    assert envelope["source"] == "acs.oss" and envelope["type"] == "oss:ActionTrail:ApiCall"
    # The shape of ActionTrail's documented OSS sample (tests/localcloud/eventbridge/test_conformance.py).
    assert data["eventSource"] == "trail-bucket.oss-cn-shanghai-cross.aliyuncs.com"
    assert data["acsRegion"] == "cn-shanghai"
    assert data["userIdentity"]["type"] == "ram-user" and data["userIdentity"]["userName"] == "ops-alice"
    assert data["userIdentity"]["accessKeyId"] == "LCTESTUSERKEY0000001"
    assert data["referencedResources"] == {"ACS::OSS::Bucket": ["trail-bucket"]}
    assert data["sourceIpAddress"] == "Internal" and data["eventId"] == data["requestId"] == envelope["id"]
    assert "errorCode" not in data and "requestParameters" not in data


def test_injected_error_and_reset_faults(cloud, client, seed_buckets) -> None:
    seed_buckets({"name": "faulty-bucket"})
    cloud.faults.add(FaultRule(kind="error", service="oss", operation="PutBucketHttpsConfig", status=403,
                               code="AccessDenied", message="Injected deny", remaining=1))
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.put_bucket_https_config(oss.PutBucketHttpsConfigRequest(
            bucket="faulty-bucket", https_configuration=_https(["TLSv1.2"])))
    error = _error(info)
    assert (error.status_code, error.code, error.message) == (403, "AccessDenied", "Injected deny")
    client.put_bucket_https_config(oss.PutBucketHttpsConfigRequest(
        bucket="faulty-bucket", https_configuration=_https(["TLSv1.2"])))  # the rule was used up
    cloud.faults.add(FaultRule(kind="reset", service="oss", operation="GetBucketHttpsConfig", remaining=1))
    with pytest.raises(oss.exceptions.BaseError):
        client.get_bucket_https_config(oss.GetBucketHttpsConfigRequest(bucket="faulty-bucket"))
    assert client.get_bucket_https_config(
        oss.GetBucketHttpsConfigRequest(bucket="faulty-bucket")).https_configuration.tls.tls_versions == ["TLSv1.2"]


def test_concurrent_forbid_overwrite_has_exactly_one_winner(cloud, client_factory, seed_buckets) -> None:
    """tlsguard claims an event id with a forbid-overwrite PutObject: of racing writers exactly one may win."""
    import threading

    seed_buckets({"name": "claims-bucket"})
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def claim(index: int) -> None:
        client = client_factory()
        start.wait()
        try:
            client.put_object(oss.PutObjectRequest(bucket="claims-bucket", key="events/abc.json",
                                                   body=f"writer-{index}".encode(), forbid_overwrite=True))
            result = "won"
        except oss.exceptions.OperationError as exc:
            result = exc.unwrap().code
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["FileAlreadyExists"] * 7 + ["won"]
