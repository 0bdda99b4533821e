"""CAS (SSL Certificates Service) RPC API 2020-04-07: ListUserCertificateOrder, GetUserCertificateDetail,
UploadUserCertificate and DeleteUserCertificate.

Field names follow the API reference and the official Tea SDK models (alibabacloud-cas20200407):
https://www.alibabacloud.com/help/en/ssl-certificate/developer-reference/api-cas-2020-04-07-listusercertificateorder
https://help.aliyun.com/document_detail/455804.html (Status semantics: empty Status with CERT/UPLOAD = ISSUED and
WILLEXPIRED; Keyword matches domain names or the resource id; ShowSize defaults to 50; QPS 10 per user)
https://www.alibabacloud.com/help/en/ssl-certificate/developer-reference/api-cas-2020-04-07-getusercertificatedetail
https://www.alibabacloud.com/help/en/ssl-certificate/developer-reference/api-cas-2020-04-07-uploadusercertificate
(https://help.aliyun.com/zh/ssl-certificate/developer-reference/api-cas-2020-04-07-uploadusercertificate: Name at most
63 characters and unique per user; QPS 100 per user)
Decisions where the docs are silent are listed in docs/emulated/cas.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from localcloud.errors import ServiceError
from localcloud.rpc.service import Action, RpcCall, RpcService

if TYPE_CHECKING:
    from localcloud.cas.backend import CasCertificate
    from localcloud.cloud import LocalCloud

#: A certificate "will expire" (Status WILLEXPIRED) within this many days of its end date.
WILL_EXPIRE_DAYS = 30
ORDER_TYPES = ("CPACK", "BUY", "CERT", "UPLOAD")
CERT_STATUSES = ("ISSUED", "WILLEXPIRED", "EXPIRED")


def _date(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d")


def _positive_int(call: RpcCall, name: str, default: int, maximum: int | None = None) -> int:
    raw = call.get(name)
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ServiceError(400, "InvalidParameter", f"Specified parameter {name} is not valid.") from None
    if value < 1 or (maximum is not None and value > maximum):
        raise ServiceError(400, "InvalidParameter", f"Specified parameter {name} is not valid.")
    return value


def certificate_status(cert: CasCertificate, now: datetime) -> str:
    """ISSUED, WILLEXPIRED (within :data:`WILL_EXPIRE_DAYS`) or EXPIRED, judged at ``now``."""
    if cert.info.not_after <= now:
        return "EXPIRED"
    if cert.info.not_after - now <= timedelta(days=WILL_EXPIRE_DAYS):
        return "WILLEXPIRED"
    return "ISSUED"


def _fingerprint(cert: CasCertificate) -> str:
    """CAS shows the SHA-1 fingerprint as upper-case hex without separators."""
    return cert.info.fingerprint_sha1.replace(":", "").upper()


def _instance_id(cert: CasCertificate) -> str:
    return f"cas-upload-{cert.id:x}" if cert.upload else f"cas-ivauto-{cert.id:x}"


def _cert_chain(cert: CasCertificate, now: datetime) -> list[dict[str, Any]]:
    """``CertChain``: one entry per certificate of the chain as held (leaf first), with the fields of the official
    model (alibabacloud-cas20200407 ``GetUserCertificateDetailResponseBodyCertChain``): ``CommonName``,
    ``IssuerCommonName``, ``NotBefore``/``NotAfter`` (ms epoch) and ``RemainDay`` (whole days left, 0 once expired)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    def common_name(name: x509.Name) -> str:
        values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(values[0].value) if values else ""

    entries: list[dict[str, Any]] = []
    for pem in cert.chain_pem:
        parsed = x509.load_pem_x509_certificate(pem.encode())
        not_before, not_after = parsed.not_valid_before_utc, parsed.not_valid_after_utc
        entries.append({
            "CommonName": common_name(parsed.subject),
            "IssuerCommonName": common_name(parsed.issuer),
            "NotBefore": int(not_before.timestamp() * 1000),
            "NotAfter": int(not_after.timestamp() * 1000),
            "RemainDay": max(0, (not_after - now).days),
        })
    return entries


def _subject_parts(cert: CasCertificate) -> dict[str, str]:
    """City/Province/Country of the certificate subject (empty when the subject does not carry them)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    leaf = x509.load_pem_x509_certificate(cert.chain_pem[0].encode())

    def first(oid: x509.ObjectIdentifier) -> str:
        values = leaf.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    return {"City": first(NameOID.LOCALITY_NAME), "Province": first(NameOID.STATE_OR_PROVINCE_NAME),
            "Country": first(NameOID.COUNTRY_NAME)}


class CasService(RpcService):
    """The CAS RPC endpoint (``endpoints["cas"]``)."""

    name = "cas"
    product = "cas"
    host_id = "cas.aliyuncs.com"
    version = "2020-04-07"
    def __init__(self, cloud: LocalCloud) -> None:
        super().__init__(cloud, cloud.cas.limiter, cloud.cas.nonces)

    def build_actions(self) -> dict[str, Action]:
        return {
            "ListUserCertificateOrder": Action(self.list_user_certificate_order),
            "GetUserCertificateDetail": Action(self.get_user_certificate_detail, resource_param="CertId"),
            "UploadUserCertificate": Action(self.upload_user_certificate, write=True, resource_param="Name"),
            "DeleteUserCertificate": Action(self.delete_user_certificate, write=True, resource_param="CertId"),
        }

    # -- actions -------------------------------------------------------------------------------------------
    def list_user_certificate_order(self, call: RpcCall) -> dict[str, Any]:
        order_type = call.get("OrderType") or "CPACK"
        if order_type not in ORDER_TYPES:
            raise ServiceError(400, "InvalidParameter", "Specified parameter OrderType is not valid.")
        status = call.get("Status")
        if status and order_type in ("CERT", "UPLOAD") and status not in CERT_STATUSES:
            raise ServiceError(400, "InvalidParameter", "Specified parameter Status is not valid.")
        page = _positive_int(call, "CurrentPage", 1)
        size = _positive_int(call, "ShowSize", 50)
        keyword = call.get("Keyword").lower()
        now = self.cloud.clock.now()
        found: list[CasCertificate] = []
        if order_type in ("CERT", "UPLOAD"):
            for cert in self.cloud.cas.certificates(call.account_id):
                if order_type == "UPLOAD" and not cert.upload:
                    continue
                state = certificate_status(cert, now)
                if status and state != status:
                    continue
                if not status and state == "EXPIRED":
                    continue  # without Status the list holds the valid ones (ISSUED and WILLEXPIRED)
                # Keyword: fuzzy match on the domain names or the resource (instance) id, as documented.
                if keyword and not any(keyword in text.lower()
                                       for text in (cert.info.common_name, *cert.info.sans, _instance_id(cert))):
                    continue
                found.append(cert)
        page_items = found[(page - 1) * size: page * size]
        return {
            "TotalCount": len(found),
            "CurrentPage": page,
            "ShowSize": size,
            "CertificateOrderList": [self._order_entry(cert, now) for cert in page_items],
        }

    def get_user_certificate_detail(self, call: RpcCall) -> dict[str, Any]:
        cert = self._lookup(call)
        cert_filter = call.get("CertFilter").lower() == "true"
        now = self.cloud.clock.now()
        info = cert.info
        detail: dict[str, Any] = {
            "Id": cert.id,
            "Name": cert.name,
            "Common": info.common_name,
            "Sans": ",".join(info.sans),
            "StartDate": _date(info.not_before),
            "EndDate": _date(info.not_after),
            "Expired": info.not_after <= now,
            "Fingerprint": _fingerprint(cert),
            "Sha2": info.sha256.upper(),
            "SerialNo": info.serial,
            "Issuer": info.issuer_org or info.issuer,
            "OrgName": info.issuer_org,
            "Algorithm": info.key_algorithm,
            "BuyInAliyun": not cert.upload,
            "OrderId": 0 if cert.upload else cert.id,
            "InstanceId": _instance_id(cert),
            "CertIdentifier": self.cloud.cas.oss_cert_id(cert),
            "ResourceGroupId": "",
            "CertChain": _cert_chain(cert, now),
            **_subject_parts(cert),
        }
        if not cert_filter:
            detail["Cert"] = cert.cert_pem
            detail["Key"] = cert.key_pem
        return detail

    def upload_user_certificate(self, call: RpcCall) -> dict[str, Any]:
        name = call.require("Name")
        if len(name) > 63:  # "supported maximum length: 63", unique per user (the API reference)
            raise ServiceError(400, "InvalidParameter", "Specified parameter Name is not valid: at most 63 characters.")
        if call.get("EncryptCert") or call.get("SignCert"):
            raise ServiceError(400, "InvalidParameter",
                               "localcloud does not emulate SM2 (EncryptCert/SignCert) certificates.")
        cert_pem = call.require("Cert")
        key_pem = call.require("Key")
        if self.cloud.cas.find_by_name(call.account_id, name) is not None:
            raise ServiceError(400, "NameRepeat", "The certificate name already exists.")
        check_key_matches(cert_pem, key_pem)
        try:
            cert = self.cloud.cas.upload(call.account_id, name, cert_pem, key_pem)
        except ValueError as exc:
            raise ServiceError(400, "InvalidParameter", f"Specified parameter Cert is not valid: {exc}") from None
        return {"CertId": cert.id, "ResourceId": _instance_id(cert)}

    def delete_user_certificate(self, call: RpcCall) -> dict[str, Any]:
        cert = self._lookup(call)
        self.cloud.cas.delete(call.account_id, cert.id)
        return {}

    # -- helpers -------------------------------------------------------------------------------------------
    def _lookup(self, call: RpcCall) -> CasCertificate:
        raw = call.require("CertId")
        if not raw.isdigit():
            raise ServiceError(400, "InvalidParameter", "Specified parameter CertId is not valid.")
        cert = self.cloud.cas.get(call.account_id, raw)
        if cert is None:
            raise ServiceError(404, "NotFound", "The certificate does not exist.")
        return cert

    def _order_entry(self, cert: CasCertificate, now: datetime) -> dict[str, Any]:
        info = cert.info
        return {
            "CertificateId": cert.id,
            "InstanceId": _instance_id(cert),
            "Name": cert.name,
            "CommonName": info.common_name,
            "Sans": ",".join(info.sans),
            "StartDate": _date(info.not_before),
            "EndDate": _date(info.not_after),
            "Expired": info.not_after <= now,
            "Status": certificate_status(cert, now),
            "Fingerprint": _fingerprint(cert),
            "Sha2": info.sha256.upper(),
            "SerialNo": info.serial,
            "Issuer": info.issuer_org or info.issuer,
            "OrgName": info.issuer_org,
            "Algorithm": info.key_algorithm,
            "Upload": cert.upload,
            "ResourceGroupId": "",
            **_subject_parts(cert),
        }


def check_key_matches(cert_pem: str, key_pem: str, code: str = "InvalidParameter") -> None:
    """CAS (and CDN's upload path) refuse a certificate whose private key is not the leaf's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        leaf = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError:
        raise ServiceError(400, code, "Specified parameter Cert is not valid.") from None
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ServiceError(400, code, "Specified parameter Key is not valid.") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != leaf.public_key().public_bytes(der, spki):
        raise ServiceError(400, code, "The certificate and the private key do not match.")
