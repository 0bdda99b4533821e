"""OSS conformance: behaviour the documentation or the official SDKs' own tests pin down, checked through
alibabacloud-oss-v2 and oss2 over HTTP, each test naming its source.

These are the divergences running the SDKs' tests against localcloud found (EMULATED_APIS.md, "Conformance
fixes"). The SDKs' tests read here: aliyun/alibabacloud-oss-python-sdk-v2 ``tests/integration/`` and
aliyun/aliyun-oss-python-sdk ``tests/``.
"""

from __future__ import annotations

import json
import socket
import ssl
from email.utils import parsedate_to_datetime
from typing import Any

import alibabacloud_oss_v2 as oss
import oss2
import pytest
from cryptography import x509

ACCOUNT = "1500000000000001"


def _error(info: pytest.ExceptionInfo[BaseException]) -> Any:
    assert isinstance(info.value, oss.exceptions.OperationError)
    return info.value.unwrap()


def _cname(domain: str, **cert: Any) -> oss.BucketCnameConfiguration:
    config = oss.CertificateConfiguration(**cert) if cert else None
    return oss.BucketCnameConfiguration(cname=oss.Cname(domain=domain, certificate_configuration=config))


# -- bucket policy ---------------------------------------------------------------------------------------------
def test_a_policy_without_principal_is_accepted(cloud, client, seed_buckets, oss2_bucket) -> None:
    """PutBucketPolicy accepts a statement without ``Principal``: the v2 SDK's test_bucket_policy_client.py puts
    exactly this policy and expects 200, then reads the same text back."""
    seed_buckets({"name": "policy-conformance"})
    text = ('{"Version":"1","Statement":[{"Action":["oss:PutObject"],"Effect":"Allow",'
            '"Resource": ["acs:oss:*:*:policy-conformance","acs:oss:*:*:policy-conformance/*"]}]}')
    result = client.put_bucket_policy(oss.PutBucketPolicyRequest(bucket="policy-conformance", body=text))
    assert result.status_code == 200
    assert client.get_bucket_policy(oss.GetBucketPolicyRequest(bucket="policy-conformance")).body == text
    oss2_bucket("policy-conformance").put_bucket_policy(text)  # oss2 (V1-signed) too
    assert cloud.oss.get("policy-conformance").policy == text


@pytest.mark.parametrize(("body", "ec"), [
    # https://help.aliyun.com/en/oss/user-guide/0030-00000005: not the policy syntax ("Version": 1 is its example)
    ("{not json", "0030-00000005"),
    (json.dumps({"Version": 1, "Statement": [{"Effect": "Allow", "Principal": ["*"], "Action": ["oss:GetObject"],
                                              "Resource": ["acs:oss:*:*:policy-ec/*"]}]}), "0030-00000005"),
    # https://help.aliyun.com/zh/oss/user-guide/0030-00000002: Version must be "1"
    (json.dumps({"Version": "2", "Statement": [{"Effect": "Allow", "Principal": ["*"], "Action": ["oss:GetObject"],
                                                "Resource": ["acs:oss:*:*:policy-ec/*"]}]}), "0030-00000002"),
    # https://help.aliyun.com/zh/oss/user-guide/0030-00000001: the policy must be smaller than 16 KB
    (json.dumps({"Version": "1", "Statement": [{"Effect": "Allow", "Principal": ["*"], "Action": ["oss:GetObject"],
                                                "Resource": [f"acs:oss:*:*:policy-ec/p{i}" for i in range(700)]}]}),
     "0030-00000001"),
    # https://help.aliyun.com/en/oss/user-guide/0030-00000003: a field value longer than 4,095 bytes
    (json.dumps({"Version": "1", "Statement": [{"Effect": "Allow", "Principal": ["*"], "Action": ["oss:GetObject"],
                                                "Resource": ["acs:oss:*:*:policy-ec/" + "k" * 4100]}]}),
     "0030-00000003"),
])
def test_policy_errors_carry_the_documented_ec(cloud, client, seed_buckets, body, ec) -> None:
    """Each invalid policy answers 400 InvalidPolicyDocument with the EC OSS's error centre gives its cause."""
    seed_buckets({"name": "policy-ec"})
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.put_bucket_policy(oss.PutBucketPolicyRequest(bucket="policy-ec", body=body))
    error = _error(info)
    assert (error.status_code, error.code, error.ec) == (400, "InvalidPolicyDocument", ec)
    assert cloud.oss.get("policy-ec").policy is None


# -- buckets named oss-... ---------------------------------------------------------------------------------------
def _served_names(cloud: Any, host: str) -> list[str]:
    """The DNS names of the certificate the TLS plane serves for ``host``, verified against the CA bundle."""
    context = ssl.create_default_context(cafile=cloud.endpoints["ca_bundle"])
    with socket.create_connection(("127.0.0.1", cloud.endpoints["tls_port"]), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:  # verifies the chain and the hostname
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    leaf = x509.load_der_x509_certificate(der)
    return leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)


def test_a_bucket_named_oss_something_is_an_ordinary_bucket(cloud, client, seed_buckets) -> None:
    """OSS reserves no ``oss-`` prefix (https://www.alibabacloud.com/help/en/oss/user-guide/bucket-naming-conventions;
    the API reference's own samples use a bucket called ``oss-example``): its default domain is served the
    regional wildcard like any bucket's, and its https config can be written."""
    name = "oss-acme-production-archive-logs"  # long enough that a per-bucket wildcard could not even be minted
    seed_buckets({"name": name})
    result = client.put_bucket_https_config(oss.PutBucketHttpsConfigRequest(
        bucket=name, https_configuration=oss.HttpsConfiguration(tls=oss.TLS(enable=True,
                                                                            tls_versions=["TLSv1.2"]))))
    assert result.status_code == 200
    for host, wildcard in ((f"{name}.oss-cn-hangzhou.aliyuncs.com", "*.oss-cn-hangzhou.aliyuncs.com"),
                           (f"{name}.oss-cn-hangzhou-internal.aliyuncs.com",
                            "*.oss-cn-hangzhou-internal.aliyuncs.com")):
        assert wildcard in _served_names(cloud, host)


# -- https config ----------------------------------------------------------------------------------------------
def test_malformed_https_config_answers_malformed_xml(cloud, seed_buckets, oss2_bucket) -> None:
    """oss2's tests/test_bucket_https_config.py: ``Enable=true`` without a version and unknown versions are
    MalformedXML; a version listed twice is stored once; ``Enable=false`` reads back with no versions."""
    seed_buckets({"name": "https-conformance"})
    bucket = oss2_bucket("https-conformance")
    for config in (oss2.models.BucketTlsVersion(True), oss2.models.BucketTlsVersion(True, ["aaa", "bbb"])):
        with pytest.raises(oss2.exceptions.ServerError) as info:
            bucket.put_bucket_https_config(config)
        assert (info.value.status, info.value.code) == (400, "MalformedXML")
    assert bucket.put_bucket_https_config(oss2.models.BucketTlsVersion(True, ["TLSv1.2", "TLSv1.2"])).status == 200
    got = bucket.get_bucket_https_config()
    assert (got.tls_enabled, got.tls_version) == (True, ["TLSv1.2"])
    bucket.put_bucket_https_config(oss2.models.BucketTlsVersion())
    got = bucket.get_bucket_https_config()
    assert (got.tls_enabled, got.tls_version) == (False, [])


# -- default encryption ----------------------------------------------------------------------------------------
def test_an_unknown_sse_algorithm_is_invalid_encryption_algorithm(cloud, client, seed_buckets, oss2_bucket) -> None:
    """An SSEAlgorithm other than AES256, KMS or SM4 (https://www.alibabacloud.com/help/en/oss/user-guide/0005-00000003,
    whose example is DES) answers 400 InvalidEncryptionAlgorithmError, the code oss2 maps to its
    ``InvalidEncryptionAlgorithmError`` exception."""
    seed_buckets({"name": "sse-conformance"})
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.put_bucket_encryption(oss.PutBucketEncryptionRequest(
            bucket="sse-conformance", server_side_encryption_rule=oss.ServerSideEncryptionRule(
                apply_server_side_encryption_by_default=oss.ApplyServerSideEncryptionByDefault(sse_algorithm="DES"))))
    error = _error(info)
    assert (error.status_code, error.code, error.ec) == (400, "InvalidEncryptionAlgorithmError", "0005-00000003")
    rule = oss2.models.ServerSideEncryptionRule()
    rule.sse_algorithm = "DES"
    with pytest.raises(oss2.exceptions.InvalidEncryptionAlgorithmError):
        oss2_bucket("sse-conformance").put_bucket_encryption(rule)
    assert cloud.oss.get("sse-conformance").encryption is None


def test_kms_data_encryption_beside_aes256_or_sm4_is_dropped(cloud, seed_buckets, oss2_bucket) -> None:
    """oss2's tests/test_server_side_encryotion.py: AES256 (or SM4) with ``KMSDataEncryption=SM4`` is accepted and
    reads back without a data encryption; with KMS it is kept."""
    seed_buckets({"name": "sse-data"})
    bucket = oss2_bucket("sse-data")
    for algorithm, kept in (("AES256", None), ("SM4", None), ("KMS", "SM4")):
        rule = oss2.models.ServerSideEncryptionRule()
        rule.sse_algorithm = algorithm
        rule.kms_data_encryption = "SM4"
        bucket.put_bucket_encryption(rule)
        got = bucket.get_bucket_encryption()
        assert (got.sse_algorithm, got.kms_data_encryption) == (algorithm, kept)


# -- CNAME: DeleteCname, ownership verification ----------------------------------------------------------------
def test_delete_cname_of_an_unbound_domain_is_200(cloud, client, seed_buckets, oss2_bucket) -> None:
    """The v2 SDK's test_bucket_cname_client.py deletes a domain it never bound and expects 200 (oss2's
    tests/test_bucket_cname.py does the same); nothing changes."""
    seed_buckets({"name": "cname-delete"})
    result = client.delete_cname(oss.DeleteCnameRequest(bucket="cname-delete",
                                                        bucket_cname_configuration=_cname("example.com")))
    assert result.status_code == 200
    assert oss2_bucket("cname-delete").delete_bucket_cname("www.example.com").status == 200
    assert cloud.oss.get("cname-delete").cnames == {}
    assert [e["data"].get("errorCode") for e in cloud.trail.events()] == [None, None]


@pytest.mark.parametrize("signature_version", ["v4", "v1"])
def test_put_cname_needs_domain_ownership_as_the_sdk_tests_expect(cloud, client_factory, seed_buckets,
                                                                  signature_version) -> None:
    """The v2 SDK's test_cname_token / test_cname_token_v1: CreateCnameToken and GetCnameToken answer 200; PutCname
    of a domain whose ownership is not verified answers 403 NeedVerifyDomainOwnership (with a certificate and with
    ``DeleteCertificate``); ListCname 200; DeleteCname 200. The code and message are
    https://help.aliyun.com/document_detail/436755.html's."""
    seed_buckets({"name": "cname-token"})
    client = client_factory(signature_version=signature_version)
    created = client.create_cname_token(oss.CreateCnameTokenRequest(bucket="cname-token",
                                                                    bucket_cname_configuration=_cname("example.com")))
    assert created.status_code == 200 and len(created.request_id) == 24
    token = created.cname_token
    assert (token.bucket, token.cname, len(token.token)) == ("cname-token", "example.com", 32)
    got = client.get_cname_token(oss.GetCnameTokenRequest(bucket="cname-token", cname="example.com"))
    assert got.status_code == 200 and got.cname_token.token == token.token
    for config in (_cname("example.com", cert_id="493****-cn-hangzhou", previous_cert_id="493****-cn-hangzhou",
                          force=True),
                   _cname("example.com", delete_certificate=True)):
        with pytest.raises(oss.exceptions.OperationError) as info:
            client.put_cname(oss.PutCnameRequest(bucket="cname-token", bucket_cname_configuration=config))
        error = _error(info)
        assert (error.status_code, error.code, len(error.request_id)) == (403, "NeedVerifyDomainOwnership", 24)
        assert error.message == "Please verify domain ownership by CreateCnameToken and try again."
    listed = client.list_cname(oss.ListCnameRequest(bucket="cname-token"))
    assert listed.status_code == 200 and listed.bucket == "cname-token" and listed.owner and not listed.cnames
    deleted = client.delete_cname(oss.DeleteCnameRequest(bucket="cname-token",
                                                         bucket_cname_configuration=_cname("example.com")))
    assert deleted.status_code == 200


def test_oss2_cname_token_flow(cloud, seed_buckets, oss2_bucket) -> None:
    """oss2's tests/test_bucket_cname.py: create and get the token, then PutCname without the TXT record fails
    with NeedVerifyDomainOwnership; ListCname and DeleteCname answer 200."""
    seed_buckets({"name": "cname-oss2"})
    bucket = oss2_bucket("cname-oss2")
    created = bucket.create_bucket_cname_token("www.example.com")
    assert created.status == 200 and created.cname == "www.example.com"
    got = bucket.get_bucket_cname_token("www.example.com")
    assert got.status == 200 and got.token == created.token
    cert = oss2.models.CertInfo("49311111-cn-hangzhou", None, None, "493333", True, False)
    with pytest.raises(oss2.exceptions.ServerError) as info:
        bucket.put_bucket_cname(oss2.models.PutBucketCnameRequest("www.example.com", cert))
    assert info.value.details["Code"] == "NeedVerifyDomainOwnership"
    assert bucket.list_bucket_cname().status == 200
    assert bucket.delete_bucket_cname("www.example.com").status == 200


def test_the_dnsauth_txt_record_with_the_token_proves_ownership(cloud, client, seed_buckets) -> None:
    """Ownership is proven by the token in the TXT record ``_dnsauth.<domain>``
    (https://help.aliyun.com/document_detail/436755.html); the token lasts 72 hours and a second CreateCnameToken
    within them returns the same token (https://help.aliyun.com/en/oss/developer-reference/createcnametoken);
    an expired token is 404 CnameTokenNotFound EC 0018-00000301 (https://help.aliyun.com/document_detail/428390.htm)
    and no longer proves anything. A domain already bound needs no new proof to change its certificate."""
    cloud.seed({"certificates": [{"name": "proven", "kind": "valid", "domains": ["www.proven.example"]}],
                "buckets": [{"name": "cname-proof"}]})
    cloud.oss.cname_token_ttl_seconds = 60  # 72 hours of clock would put the SDK's signatures out of skew
    first = client.create_cname_token(oss.CreateCnameTokenRequest(
        bucket="cname-proof", bucket_cname_configuration=_cname("www.proven.example"))).cname_token
    with pytest.raises(oss.exceptions.OperationError) as info:  # the token exists, the TXT record does not yet
        client.put_cname(oss.PutCnameRequest(bucket="cname-proof", bucket_cname_configuration=_cname(
            "www.proven.example")))
    assert _error(info).code == "NeedVerifyDomainOwnership"
    cloud.oss.set_dns_txt("_dnsauth.www.proven.example", ["some-other-value", first.token])
    client.put_cname(oss.PutCnameRequest(bucket="cname-proof", bucket_cname_configuration=_cname(
        "www.proven.example")))
    cert = cloud.cas.find_by_name(ACCOUNT, "proven")
    cloud.clock.advance(61)  # the token has expired: a bound domain still takes a certificate
    client.put_cname(oss.PutCnameRequest(bucket="cname-proof", bucket_cname_configuration=_cname(
        "www.proven.example", cert_id=cloud.cas.oss_cert_id(cert))))
    listed = client.list_cname(oss.ListCnameRequest(bucket="cname-proof")).cnames
    assert [(c.domain, c.certificate.cert_id) for c in listed] == [("www.proven.example", f"{cert.id}-cn-hangzhou")]
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.get_cname_token(oss.GetCnameTokenRequest(bucket="cname-proof", cname="www.proven.example"))
    error = _error(info)
    assert (error.status_code, error.code, error.ec) == (404, "CnameTokenNotFound", "0018-00000301")
    assert b"<Cname>www.proven.example</Cname>" in error.snapshot
    # An expired token proves nothing, even with the TXT record still in place.
    cloud.oss.set_dns_txt("_dnsauth.img.proven.example", [first.token])
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.put_cname(oss.PutCnameRequest(bucket="cname-proof", bucket_cname_configuration=_cname(
            "img.proven.example")))
    assert _error(info).code == "NeedVerifyDomainOwnership"
    cloud.oss.cname_token_ttl_seconds = 72 * 3600
    again = client.create_cname_token(oss.CreateCnameTokenRequest(
        bucket="cname-proof", bucket_cname_configuration=_cname("www.proven.example"))).cname_token
    assert again.token != first.token
    expires = parsedate_to_datetime(again.expire_time).timestamp()
    assert expires - cloud.clock.time() == pytest.approx(72 * 3600, abs=2)
    repeat = client.create_cname_token(oss.CreateCnameTokenRequest(
        bucket="cname-proof", bucket_cname_configuration=_cname("www.proven.example"))).cname_token
    assert (repeat.token, repeat.expire_time) == (again.token, again.expire_time)


def test_a_seeded_verified_domain_needs_only_the_token(cloud, client, seed_buckets) -> None:
    """A seed may say the TXT records are in place (``verified_domains``, globs allowed): PutCname still needs a
    token from CreateCnameToken, and covers only the domains named."""
    seed_buckets({"name": "cname-seeded", "verified_domains": ["*.seeded.example"]})
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.put_cname(oss.PutCnameRequest(bucket="cname-seeded", bucket_cname_configuration=_cname(
            "www.seeded.example")))
    assert _error(info).code == "NeedVerifyDomainOwnership"
    for domain in ("www.seeded.example", "www.elsewhere.example"):
        client.create_cname_token(oss.CreateCnameTokenRequest(bucket="cname-seeded",
                                                              bucket_cname_configuration=_cname(domain)))
    client.put_cname(oss.PutCnameRequest(bucket="cname-seeded", bucket_cname_configuration=_cname(
        "www.seeded.example")))
    with pytest.raises(oss.exceptions.OperationError) as info:
        client.put_cname(oss.PutCnameRequest(bucket="cname-seeded", bucket_cname_configuration=_cname(
            "www.elsewhere.example")))
    assert _error(info).code == "NeedVerifyDomainOwnership"
    assert list(cloud.oss.get("cname-seeded").cnames) == ["www.seeded.example"]
