"""CAS (SSL Certificates Service, OpenAPI 2020-04-07) adapter: the renewal candidates.

ListUserCertificateOrder with OrderType=CERT lists issued and uploaded certificates (valid ones when Status is
empty); GetUserCertificateDetail with CertFilter=true adds the SANs and exact dates without returning the
private key. aliyun-python-sdk-core ``CommonRequest`` (imported lazily via :mod:`tlsguard.certs._rpc`).
Docs followed:
https://www.alibabacloud.com/help/en/ssl-certificate/developer-reference/api-cas-2020-04-07-listusercertificateorder
https://www.alibabacloud.com/help/en/ssl-certificate/developer-reference/api-cas-2020-04-07-getusercertificatedetail
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from tlsguard.certs._rpc import RpcCaller, RpcConnection
from tlsguard.certs.model import CasCandidate
from tlsguard.log import get_logger

if TYPE_CHECKING:
    from collections.abc import Iterator

log = get_logger("tlsguard.adapters.cas")

CAS_VERSION = "2020-04-07"
CAS_PUBLIC_DOMAIN = "cas.aliyuncs.com"
SHOW_SIZE = 50
#: Pages of ListUserCertificateOrder read at most (5,000 certificates): a TotalCount that never ends stops here.
MAX_PAGES = 100
#: Characters of GetUserCertificateDetail's ``Cert`` considered; far above 20 certificates of 64 KiB as PEM.
MAX_CERT_TEXT = 2 * 1024 * 1024


def parse_cas_date(value: Any, *, end_of_day: bool = False) -> dt.datetime | None:
    """CAS dates: ms epoch numbers (``CertChain[].NotBefore/NotAfter``) or ``YYYY-MM-DD`` strings (StartDate/EndDate).

    A bare date is read conservatively: a start date as the end of that day, an end date as its start, so a
    candidate is never thought valid for longer than it is.
    """
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        return dt.datetime.fromtimestamp(int(value) / 1000, tz=dt.timezone.utc)
    text = str(value).strip()
    if len(text) == 10:
        day = dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
        return day + dt.timedelta(days=1) - dt.timedelta(seconds=1) if end_of_day else day
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _leaf_of_chain(detail: dict[str, Any]) -> dict[str, Any]:
    """The ``CertChain`` entry of the certificate itself (exact ms dates), or {} when the answer has none.

    ``CertChain`` is in the official GetUserCertificateDetail model (alibabacloud-cas20200407); its order is not
    documented (UNCONFIRMED), so the entry whose ``CommonName`` is the certificate's ``Common`` wins, else the first.
    """
    chain = detail.get("CertChain")
    entries = [e for e in chain if isinstance(e, dict)] if isinstance(chain, list) else []
    common = str(detail.get("Common") or "")
    return next((e for e in entries if common and e.get("CommonName") == common), entries[0] if entries else {})


class AliyunCas:
    """The CAS calls renewal selection needs."""

    def __init__(self, connection: RpcConnection) -> None:
        self.rpc = RpcCaller(connection, service="cas", version=CAS_VERSION, public_domain=CAS_PUBLIC_DOMAIN)
        self.region = connection.region

    def list_certificate_ids(self, keyword: str = "") -> Iterator[int]:
        """Ids of valid issued and uploaded certificates (OrderType=CERT, Status empty), paged."""
        page = 1
        while page <= MAX_PAGES:
            params: dict[str, str | int | bool] = {"OrderType": "CERT", "CurrentPage": page, "ShowSize": SHOW_SIZE}
            if keyword:
                params["Keyword"] = keyword
            answer = self.rpc.call("ListUserCertificateOrder", params)
            items = answer.get("CertificateOrderList") or []
            for item in items:
                cert_id = str(item.get("CertificateId") or "").strip() if isinstance(item, dict) else ""
                if cert_id.isdigit():  # an id that is no number cannot be asked about: skipped, never a crash
                    yield int(cert_id)
            total_text = str(answer.get("TotalCount") or 0).strip()
            total = int(total_text) if total_text.isdigit() else 0
            if not items or page * SHOW_SIZE >= total:
                return
            page += 1

    def candidate(self, cert_id: int) -> CasCandidate:
        """GetUserCertificateDetail (CertFilter=true: no key material) as a :class:`CasCandidate`."""
        detail = self.rpc.call("GetUserCertificateDetail", {"CertId": cert_id, "CertFilter": True},
                               resource=str(cert_id))
        leaf = _leaf_of_chain(detail)
        not_before = parse_cas_date(leaf.get("NotBefore")) or parse_cas_date(detail.get("StartDate"),
                                                                            end_of_day=True)
        not_after = parse_cas_date(leaf.get("NotAfter")) or parse_cas_date(detail.get("EndDate"))
        if not_before is None or not_after is None:
            raise ValueError(f"CAS certificate {cert_id} has no validity dates")
        sans = tuple(s.strip().lower() for s in str(detail.get("Sans") or "").split(",") if s.strip())
        return CasCandidate(cert_id=int(detail.get("Id") or cert_id), name=str(detail.get("Name") or ""),
                            common_name=str(detail.get("Common") or "").lower(), sans=sans,
                            not_before=not_before, not_after=not_after,
                            fingerprint_sha1=str(detail.get("Fingerprint") or ""), region=self.region)

    def certificate_chain(self, cert_id: int) -> tuple[str, ...]:
        """The certificate's public PEM chain (leaf first), to vet it before binding.

        GetUserCertificateDetail returns ``Cert`` only with CertFilter=false, which also returns the private key
        (``Key``); the key is dropped here at once, never stored, logged or returned.
        """
        detail = self.rpc.call("GetUserCertificateDetail", {"CertId": cert_id, "CertFilter": False},
                               resource=str(cert_id))
        detail.pop("Key", None)
        detail.pop("EncryptPrivateKey", None)
        detail.pop("SignPrivateKey", None)
        text = str(detail.get("Cert") or "")[:MAX_CERT_TEXT]
        marker = "-----END CERTIFICATE-----"
        blocks = tuple(part.strip() + "\n" + marker + "\n" for part in text.split(marker)[:-1] if part.strip())
        # Text holding no PEM block is passed on as it is, so vetting says why it cannot be used (reading is
        # bounded by tlsguard.certs.x509facts.read_chain).
        return blocks or ((text,) if text.strip() else ())

    def candidates(self, domain: str = "") -> list[CasCandidate]:
        """Every valid CAS certificate, with details. ``domain`` is not used as a Keyword: a wildcard certificate
        for ``*.example.com`` does not contain ``www.example.com`` as text."""
        del domain
        found = []
        for cert_id in self.list_certificate_ids():
            try:
                found.append(self.candidate(cert_id))
            except (ValueError, OverflowError, OSError) as exc:  # dates out of range or missing: not a candidate,
                log.warning("CAS certificate detail unreadable",  # and never the end of every domain's renewal
                            extra={"cert_id": cert_id, "error": f"{type(exc).__name__}: {exc}"[:300]})
        return found
