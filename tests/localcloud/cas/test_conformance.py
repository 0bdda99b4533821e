"""CAS conformance: GetUserCertificateDetail answers the fields of the official model, through aliyunsdkcore
CommonRequest over HTTP.

The model is alibabacloud-cas20200407's ``GetUserCertificateDetailResponseBody`` (aliyun/alibabacloud-csharp-sdk
``cas-20200407/core/Models/GetUserCertificateDetailResponseBody.cs``); the API reference is
https://help.aliyun.com/document_detail/465112.html.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from cryptography import x509

from localcloud.cloud import LocalCloud

from .conftest import RpcCall

#: Every field of the official model that a non-SM2 certificate has (the SM2 pair fields EncryptCert,
#: EncryptPrivateKey, SignCert and SignPrivateKey belong to SM2 certificates, which localcloud does not hold).
MODEL_FIELDS = {"Algorithm", "BuyInAliyun", "Cert", "CertChain", "CertIdentifier", "City", "Common", "Country",
                "EndDate", "Expired", "Fingerprint", "Id", "InstanceId", "Issuer", "Key", "Name", "OrderId",
                "OrgName", "Province", "RequestId", "ResourceGroupId", "Sans", "SerialNo", "Sha2", "StartDate"}
#: The fields CertFilter=true leaves out (the API reference's CertFilter description).
KEY_MATERIAL = {"Cert", "Key", "EncryptCert", "EncryptPrivateKey", "SignCert", "SignPrivateKey"}
CHAIN_FIELDS = {"CommonName", "IssuerCommonName", "NotBefore", "NotAfter", "RemainDay"}


@pytest.fixture
def certificate(cloud: LocalCloud) -> Any:
    cloud.seed({"certificates": [{"name": "model-check", "kind": "valid", "domains": ["model.example.com"]}]})
    cert = cloud.cas.find_by_name(cloud.default_account_id, "model-check")
    assert cert is not None and len(cert.chain_pem) >= 2  # leaf and its issuing CA
    return cert


def test_detail_has_exactly_the_official_model_fields(cloud: LocalCloud, cas: RpcCall, certificate: Any) -> None:
    """Every model field is answered, and nothing the model does not define (no top-level NotBefore/NotAfter);
    with CertFilter=true the key material is left out and everything else stays."""
    full = cas("GetUserCertificateDetail", CertId=str(certificate.id))
    assert set(full) == MODEL_FIELDS
    filtered = cas("GetUserCertificateDetail", CertId=str(certificate.id), CertFilter="true")
    assert set(filtered) == MODEL_FIELDS - KEY_MATERIAL


def test_sha2_cert_identifier_and_chain_describe_the_certificate(cloud: LocalCloud, cas: RpcCall,
                                                                  certificate: Any) -> None:
    """``Sha2`` is the SHA-256 fingerprint (upper-case hex, as the model's example), ``CertIdentifier`` is
    ``<id>-cn-hangzhou``, and ``CertChain`` has one entry per certificate of the chain with its common name, its
    issuer's common name, its validity as ms epoch and the days it has left."""
    detail = cas("GetUserCertificateDetail", CertId=str(certificate.id), CertFilter="true")
    assert detail["Sha2"] == certificate.info.sha256 and detail["Sha2"].isupper() and len(detail["Sha2"]) == 64
    assert detail["CertIdentifier"] == f"{certificate.id}-cn-hangzhou"
    chain = detail["CertChain"]
    assert len(chain) == len(certificate.chain_pem)
    now = cloud.clock.now()
    for entry, pem in zip(chain, certificate.chain_pem, strict=True):
        parsed = x509.load_pem_x509_certificate(pem.encode())
        assert set(entry) == CHAIN_FIELDS
        assert entry["CommonName"] == parsed.subject.rfc4514_string().split("CN=", 1)[1].split(",", 1)[0]
        assert entry["IssuerCommonName"] == parsed.issuer.rfc4514_string().split("CN=", 1)[1].split(",", 1)[0]
        assert entry["NotBefore"] == int(parsed.not_valid_before_utc.timestamp() * 1000)
        assert entry["NotAfter"] == int(parsed.not_valid_after_utc.timestamp() * 1000)
        assert entry["RemainDay"] == (parsed.not_valid_after_utc - now).days
    assert chain[0]["CommonName"] == detail["Common"] == "model.example.com"


def test_an_expired_certificate_has_no_days_left(cloud: LocalCloud, cas: RpcCall) -> None:
    """``RemainDay`` of an expired certificate is 0 (never negative)."""
    cloud.seed({"certificates": [{"name": "gone", "kind": "expired", "domains": ["gone.example.com"]}]})
    cert = cloud.cas.find_by_name(cloud.default_account_id, "gone")
    assert cert is not None
    detail = cas("GetUserCertificateDetail", CertId=str(cert.id), CertFilter="true")
    assert detail["Expired"] is True and detail["CertChain"][0]["RemainDay"] == 0


def test_detail_qps_is_the_documented_100(cloud: LocalCloud, cas: RpcCall, certificate: Any) -> None:
    """The API reference gives GetUserCertificateDetail a per-user limit of 100 calls per second."""
    cloud.cas.enforce_qps = True
    cloud.cas.limiter.clock = lambda: 7000.0
    codes = []
    for _ in range(101):
        try:
            cas("GetUserCertificateDetail", CertId=str(certificate.id), CertFilter="true")
            codes.append("ok")
        except ServerException as error:
            codes.append(error.error_code)
    assert codes == ["ok"] * 100 + ["Throttling.User"]


def test_tlsguard_reads_exact_dates_from_the_documented_chain(cloud: LocalCloud, endpoints: dict[str, Any],
                                                              certificate: Any) -> None:
    """tlsguard's CAS adapter takes a candidate's exact validity from ``CertChain`` (the certificate's own entry),
    not from an undocumented top-level field, so it judges the same dates against the cloud."""
    from tlsguard.adapters.cas import AliyunCas
    from tlsguard.certs._rpc import RpcConnection

    adapter = AliyunCas(RpcConnection(region=cloud.region, access_key_id=endpoints["access_key_id"],
                                      access_key_secret=endpoints["access_key_secret"], domain=endpoints["cas"],
                                      protocol="http"))
    candidate = adapter.candidate(certificate.id)
    assert candidate.not_before == certificate.info.not_before.replace(microsecond=0)
    assert candidate.not_after == certificate.info.not_after.replace(microsecond=0)
    assert candidate.not_after.tzinfo == dt.timezone.utc and candidate.sans == ("model.example.com",)
