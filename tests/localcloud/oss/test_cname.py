"""ListCname / PutCname / DeleteCname through alibabacloud-oss-v2: certificate binding from CAS and by upload."""

from __future__ import annotations

import contextlib
from email.utils import format_datetime
from typing import Any

import alibabacloud_oss_v2 as oss
import pytest

ACCOUNT = "1500000000000001"
CERTS = [
    {"name": "site-2026", "kind": "valid", "domains": ["www.site.example", "static.site.example"]},
    {"name": "site-renewed", "kind": "valid", "domains": ["www.site.example"]},
    {"name": "wild-site", "kind": "wildcard", "domains": ["*.site.example"]},
    {"name": "other-host", "kind": "valid", "domains": ["elsewhere.example"]},
]


def _error(info: pytest.ExceptionInfo[BaseException]) -> Any:
    assert isinstance(info.value, oss.exceptions.OperationError)
    return info.value.unwrap()


@pytest.fixture(autouse=True)
def _fleet(seed_buckets) -> None:
    # The _dnsauth TXT records of *.site.example are in place (ownership checks: test_conformance.py).
    seed_buckets({"name": "site-bucket", "verified_domains": ["*.site.example"]},
                 {"name": "second-bucket", "verified_domains": ["*.site.example"]}, certificates=CERTS)


def _put(client: oss.Client, domain: str, bucket: str = "site-bucket", **cert: Any) -> Any:
    """CreateCnameToken (as binding a new domain needs), then PutCname."""
    cname_config = oss.BucketCnameConfiguration(cname=oss.Cname(domain=domain))
    with contextlib.suppress(oss.exceptions.OperationError):  # a reserved domain: PutCname says why
        client.create_cname_token(oss.CreateCnameTokenRequest(bucket=bucket, bucket_cname_configuration=cname_config))
    config = oss.CertificateConfiguration(**cert) if cert else None
    return client.put_cname(oss.PutCnameRequest(bucket=bucket, bucket_cname_configuration=oss.BucketCnameConfiguration(
        cname=oss.Cname(domain=domain, certificate_configuration=config))))


def _cnames(client: oss.Client, bucket: str = "site-bucket") -> dict[str, Any]:
    return {c.domain: c for c in client.list_cname(oss.ListCnameRequest(bucket=bucket)).cnames or []}


def _gmt(value: Any) -> str:
    return format_datetime(value, usegmt=True)


@pytest.mark.parametrize("signature_version", ["v4", "v1"])
def test_bind_cas_certificate_and_list_fields(cloud, client_factory, signature_version) -> None:
    client = client_factory(signature_version=signature_version)
    cert = cloud.cas.find_by_name(ACCOUNT, "site-2026")
    _put(client, "www.site.example", cert_id=cloud.cas.oss_cert_id(cert))
    _put(client, "plain.site.example")
    listed = _cnames(client)
    assert set(listed) == {"www.site.example", "plain.site.example"}
    assert listed["plain.site.example"].certificate is None and listed["plain.site.example"].status == "Enabled"
    bound = listed["www.site.example"].certificate
    assert (bound.type, bound.cert_id, bound.status) == ("CAS", f"{cert.id}-cn-hangzhou", "Enabled")
    assert bound.fingerprint == cert.info.fingerprint_sha1
    assert bound.valid_start_date == _gmt(cert.info.not_before) and bound.valid_end_date == _gmt(cert.info.not_after)
    assert bound.creation_date.endswith("GMT")
    served = cloud.tls.effective("www.site.example", cloud.clock.time())
    assert served.kind == "oss-cname" and served.chain_pem == cert.chain_pem and served.bucket == "site-bucket"
    assert cloud.tls.effective("plain.site.example", cloud.clock.time()) is None
    event = cloud.trail.events()[0]["data"]
    assert event["eventName"] == "PutCname" and event["referencedResources"] == {"ACS::OSS::Bucket": ["site-bucket"]}


def test_previous_cert_id_guards_replacement(cloud, client) -> None:
    first = cloud.cas.find_by_name(ACCOUNT, "site-2026")
    renewed = cloud.cas.find_by_name(ACCOUNT, "site-renewed")
    _put(client, "www.site.example", cert_id=str(first.id))
    with pytest.raises(oss.exceptions.OperationError) as info:
        _put(client, "www.site.example", cert_id=str(renewed.id), previous_cert_id=f"{renewed.id}-cn-hangzhou")
    error = _error(info)
    assert (error.status_code, error.code, error.ec) == (400, "InvalidArgument", "0018-00000209")
    assert _cnames(client)["www.site.example"].certificate.cert_id == f"{first.id}-cn-hangzhou"
    _put(client, "www.site.example", cert_id=str(renewed.id), previous_cert_id=f"{first.id}-cn-hangzhou")
    assert _cnames(client)["www.site.example"].certificate.cert_id == f"{renewed.id}-cn-hangzhou"
    _put(client, "www.site.example", cert_id=str(first.id), previous_cert_id="123-cn-hangzhou", force=True)
    assert _cnames(client)["www.site.example"].certificate.cert_id == f"{first.id}-cn-hangzhou"
    # Without PreviousCertId there is nothing to check: the new certificate replaces the old one.
    _put(client, "www.site.example", cert_id=str(renewed.id))
    assert _cnames(client)["www.site.example"].certificate.cert_id == f"{renewed.id}-cn-hangzhou"
    assert cloud.tls.effective("www.site.example", cloud.clock.time()).chain_pem == renewed.chain_pem


def test_reserved_domain_and_half_an_upload(cloud, client) -> None:
    with pytest.raises(oss.exceptions.OperationError) as info:
        _put(client, "cdn.oss-cn-hangzhou.aliyuncs.com")
    assert (_error(info).code, _error(info).ec) == ("InvalidArgument", "0018-00000401")
    issued = cloud.certs.issue("valid", ["half.site.example"])
    with pytest.raises(oss.exceptions.OperationError) as info:
        _put(client, "half.site.example", private_key=issued.key_pem)
    assert (_error(info).code, _error(info).ec) == ("InvalidArgument", "0018-00000210")


def test_wildcard_certificate_covers_one_label(cloud, client) -> None:
    wild = cloud.cas.find_by_name(ACCOUNT, "wild-site")
    _put(client, "img.site.example", cert_id=str(wild.id))
    with pytest.raises(oss.exceptions.OperationError) as info:
        _put(client, "a.b.site.example", cert_id=str(wild.id))
    assert (_error(info).status_code, _error(info).code) == (400, "InvalidArgument")


def test_upload_certificate_registers_it_in_cas(cloud, client) -> None:
    issued = cloud.certs.issue("valid", ["upload.site.example"])
    before = len(cloud.cas.certificates(ACCOUNT))
    _put(client, "upload.site.example", certificate="".join(issued.full_chain_pem), private_key=issued.key_pem)
    bound = _cnames(client)["upload.site.example"].certificate
    assert bound.type == "Upload" and bound.fingerprint == issued.info.fingerprint_sha1
    stored = cloud.cas.certificates(ACCOUNT)
    assert len(stored) == before + 1 and stored[0].upload is True and bound.cert_id.startswith(f"{stored[0].id}-")


def test_upload_rejects_wrong_key_and_wrong_domain(cloud, client) -> None:
    issued = cloud.certs.issue("valid", ["upload.site.example"])
    stranger = cloud.certs.issue("valid", ["upload.site.example"])
    with pytest.raises(oss.exceptions.OperationError) as info:
        _put(client, "upload.site.example", certificate=issued.leaf_pem, private_key=stranger.key_pem)
    assert (_error(info).code, b"PrivateKey" in _error(info).snapshot) == ("InvalidArgument", True)
    with pytest.raises(oss.exceptions.OperationError) as info:
        _put(client, "other.site.example", certificate=issued.leaf_pem, private_key=issued.key_pem)
    assert _error(info).code == "InvalidArgument"
    other = cloud.cas.find_by_name(ACCOUNT, "other-host")
    with pytest.raises(oss.exceptions.OperationError) as info:
        _put(client, "www.site.example", cert_id=str(other.id))
    assert _error(info).code == "InvalidArgument"
    with pytest.raises(oss.exceptions.OperationError) as info:
        _put(client, "www.site.example", cert_id="99999999-cn-hangzhou")
    assert (_error(info).status_code, _error(info).code) == (404, "NoSuchCertificate")
    errors = [e["data"].get("errorCode") for e in cloud.trail.events()]
    assert errors == ["InvalidArgument", "InvalidArgument", "InvalidArgument", "NoSuchCertificate"]


def test_delete_certificate_then_cname(cloud, client) -> None:
    cert = cloud.cas.find_by_name(ACCOUNT, "site-2026")
    _put(client, "www.site.example", cert_id=str(cert.id))
    _put(client, "www.site.example", delete_certificate=True)
    assert _cnames(client)["www.site.example"].certificate is None
    assert cloud.tls.effective("www.site.example", cloud.clock.time()) is None
    client.delete_cname(oss.DeleteCnameRequest(bucket="site-bucket", bucket_cname_configuration=(
        oss.BucketCnameConfiguration(cname=oss.Cname(domain="www.site.example")))))
    assert _cnames(client) == {}
    # Deleting it again is a 200 that changes nothing (the SDK's expectation: test_conformance.py).
    again = client.delete_cname(oss.DeleteCnameRequest(bucket="site-bucket", bucket_cname_configuration=(
        oss.BucketCnameConfiguration(cname=oss.Cname(domain="www.site.example")))))
    assert again.status_code == 200 and _cnames(client) == {}
    assert [(e["data"]["eventName"], e["data"].get("errorCode")) for e in cloud.trail.events()] == [
        ("PutCname", None), ("PutCname", None), ("DeleteCname", None), ("DeleteCname", None)]


def test_domain_bound_to_another_bucket(cloud, client) -> None:
    _put(client, "shared.site.example")
    with pytest.raises(oss.exceptions.OperationError) as info:
        _put(client, "shared.site.example", bucket="second-bucket")
    assert (_error(info).status_code, _error(info).code) == (409, "CnameAlreadyExists")


def test_seeded_cname_is_listed_and_served(cloud, client, seed_buckets) -> None:
    seed_buckets({"name": "seeded-site", "cnames": [{"domain": "static.site.example", "certificate": "site-2026"}]})
    bound = _cnames(client, "seeded-site")["static.site.example"].certificate
    assert bound.type == "CAS"
    assert cloud.tls.effective("static.site.example", cloud.clock.time()).kind == "oss-cname"
