"""OSS custom-domain (CNAME) certificate adapter: ListCname and PutCname with CertId and PreviousCertId.

alibabacloud-oss-v2 (imported lazily); the client comes from the core OSS adapter (:class:`AliyunOss`), so
endpoint, credentials and trust are configured once. Docs followed:
https://www.alibabacloud.com/help/en/oss/developer-reference/listcname
https://alibabacloud.com/help/en/oss/developer-reference/putcname
"""

from __future__ import annotations

import datetime as dt
import email.utils
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tlsguard.adapters.oss import map_sdk_error
from tlsguard.certs.model import ApiView
from tlsguard.errors import CloudError
from tlsguard.retry import call_with_retries

if TYPE_CHECKING:
    from collections.abc import Callable

    from tlsguard.adapters.oss import AliyunOss
    from tlsguard.ports import BucketRef


@dataclass(frozen=True)
class CnameBinding:
    """One ListCname entry: the domain, its binding status and the bound certificate (API view)."""

    bucket: str
    region: str
    domain: str
    status: str
    api: ApiView


def parse_rfc1123(value: str | None) -> dt.datetime | None:
    """ListCname's certificate dates (``Wed, 15 Sep 2021 02:35:06 GMT``); empty → None."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


class AliyunOssCname:
    """ListCname / PutCname for certificate health and rebinding."""

    def __init__(self, oss: AliyunOss) -> None:
        self.oss = oss

    def _call(self, operation: str, resource: str, fn: Callable[[], Any], *, retry: bool = True) -> Any:
        def attempt() -> Any:
            self.oss.limiter.acquire(operation)
            try:
                return fn()
            except CloudError:
                raise
            except Exception as exc:
                raise map_sdk_error(exc, "oss", operation, resource) from exc

        return call_with_retries(self.oss.retry, attempt) if retry else attempt()

    def list_cnames(self, bucket: BucketRef) -> list[CnameBinding]:
        """ListCname for one bucket, each certificate as an :class:`ApiView`."""
        import alibabacloud_oss_v2 as oss

        client = self.oss.client(bucket.region)
        result = self._call("ListCname", bucket.name,
                            lambda: client.list_cname(oss.ListCnameRequest(bucket=bucket.name)))
        bindings = []
        for cname in result.cnames or []:
            cert = cname.certificate
            if cert is None:
                api = ApiView(https_enabled=False)
            else:
                api = ApiView(cert_id=cert.cert_id or None, fingerprint_sha1=cert.fingerprint or None,
                              not_before=parse_rfc1123(cert.valid_start_date),
                              not_after=parse_rfc1123(cert.valid_end_date), status=cert.status or None,
                              https_enabled=True, changed_at=parse_rfc1123(cert.creation_date),
                              cert_type=cert.type or None, region=bucket.region)
            bindings.append(CnameBinding(bucket=bucket.name, region=bucket.region,
                                         domain=str(cname.domain or "").lower(), status=str(cname.status or ""),
                                         api=api))
        return bindings

    def bind_cas_certificate(self, bucket: BucketRef, domain: str, cert_id: str, previous_cert_id: str | None) -> None:
        """PutCname with CertId and PreviousCertId (no Force): OSS refuses if someone else rebound meanwhile.

        ``cert_id`` is OSS's ``<id>-<region>`` form. With no certificate bound yet, PreviousCertId is omitted.
        """
        import alibabacloud_oss_v2 as oss

        client = self.oss.client(bucket.region)
        config = oss.CertificateConfiguration(cert_id=cert_id, previous_cert_id=previous_cert_id or None)
        request = oss.PutCnameRequest(bucket=bucket.name, bucket_cname_configuration=oss.BucketCnameConfiguration(
            cname=oss.Cname(domain=domain, certificate_configuration=config)))
        self._call("PutCname", f"{bucket.name}/{domain}", lambda: client.put_cname(request), retry=False)


def oss_cert_id(cert_id: int, region: str) -> str:
    """OSS's ``<id>-<region>`` form of a CAS certificate id."""
    return f"{cert_id}-{region}"
