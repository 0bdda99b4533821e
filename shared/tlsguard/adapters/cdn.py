"""CDN (OpenAPI 2018-05-10) adapter for certificate health: discovery, certificate info, rebinding, HTTPS posture.

aliyun-python-sdk-core ``CommonRequest`` (imported lazily via :mod:`tlsguard.certs._rpc`).
Docs followed:
https://www.alibabacloud.com/help/en/cdn/developer-reference/api-cdn-2018-05-10-describeuserdomains
https://www.alibabacloud.com/help/en/cdn/developer-reference/api-cdn-2018-05-10-describedomaincertificateinfo
https://help.aliyun.com/zh/cdn/developer-reference/api-cdn-2018-05-10-setcdndomainsslcertificate
https://help.aliyun.com/zh/cdn/developer-reference/parameters-for-configuring-features-for-domain-names
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tlsguard.certs._rpc import RpcCaller, RpcConnection
from tlsguard.certs.model import ApiView

if TYPE_CHECKING:
    from collections.abc import Iterator

CDN_VERSION = "2018-05-10"
CDN_PUBLIC_DOMAIN = "cdn.aliyuncs.com"
#: DescribeUserDomains allows PageSize 1-500.
PAGE_SIZE = 500


@dataclass(frozen=True)
class CdnDomainSummary:
    """One DescribeUserDomains PageData entry (the fields certificate health needs)."""

    name: str
    status: str
    ssl_protocol: bool
    cname: str = ""


@dataclass(frozen=True)
class CdnFunctionConfig:
    """One DescribeCdnDomainConfigs entry: a function with its args and ConfigId."""

    function_name: str
    config_id: str
    args: dict[str, str] = field(default_factory=dict)
    status: str = ""


def parse_cdn_time(value: str) -> dt.datetime | None:
    """CDN's ISO-8601 UTC times (``2018-06-03T22:03:39Z``); empty → None."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


class AliyunCdn:
    """The CDN calls tlsguard's certificate features make."""

    def __init__(self, connection: RpcConnection) -> None:
        self.rpc = RpcCaller(connection, service="cdn", version=CDN_VERSION, public_domain=CDN_PUBLIC_DOMAIN)

    def list_domains(self) -> Iterator[CdnDomainSummary]:
        """Every CDN domain of the account (DescribeUserDomains, paged)."""
        page = 1
        while True:
            answer = self.rpc.call("DescribeUserDomains", {"PageSize": PAGE_SIZE, "PageNumber": page})
            items = (answer.get("Domains") or {}).get("PageData") or []
            for item in items:
                yield CdnDomainSummary(name=str(item.get("DomainName", "")).lower(),
                                       status=str(item.get("DomainStatus", "")),
                                       ssl_protocol=str(item.get("SslProtocol", "off")).lower() == "on",
                                       cname=str(item.get("Cname", "")))
            total = int(answer.get("TotalCount") or 0)
            if not items or page * PAGE_SIZE >= total:
                return
            page += 1

    def certificate_view(self, domain: str) -> ApiView:
        """DescribeDomainCertificateInfo as an :class:`ApiView` (Status, ServerCertificate PEM, dates)."""
        answer = self.rpc.call("DescribeDomainCertificateInfo", {"DomainName": domain}, resource=domain)
        infos = (answer.get("CertInfos") or {}).get("CertInfo") or []
        info: dict[str, Any] = next((i for i in infos if str(i.get("DomainName", "")).lower() == domain.lower()),
                                    infos[0] if infos else {})
        https = str(info.get("ServerCertificateStatus", "off")).lower() == "on"
        pem = str(info.get("ServerCertificate") or "") or None
        return ApiView(
            cert_id=str(info.get("CertId") or "") or None,
            cert_name=str(info.get("CertName") or "") or None,
            not_before=parse_cdn_time(str(info.get("CertStartTime") or "")),
            not_after=parse_cdn_time(str(info.get("CertExpireTime") or "")),
            status=str(info.get("Status") or "") or None,
            https_enabled=https,
            pem=pem,
            changed_at=parse_cdn_time(str(info.get("CertUpdateTime") or "")),
            cert_type=str(info.get("CertType") or "") or None,
            region=str(info.get("CertRegion") or "") or None,
        )

    def set_cas_certificate(self, domain: str, cert_id: int, region: str = "cn-hangzhou") -> None:
        """Bind CAS certificate ``cert_id`` (SetCdnDomainSSLCertificate, SSLProtocol on, CertType cas)."""
        self.rpc.call("SetCdnDomainSSLCertificate", {"DomainName": domain, "SSLProtocol": "on", "CertType": "cas",
                                                     "CertId": cert_id, "CertRegion": region or "cn-hangzhou"},
                      resource=domain, retry=False)

    def domain_configs(self, domain: str, function_names: tuple[str, ...]) -> list[CdnFunctionConfig]:
        """DescribeCdnDomainConfigs for the named functions."""
        answer = self.rpc.call("DescribeCdnDomainConfigs",
                               {"DomainName": domain, "FunctionNames": ",".join(function_names)}, resource=domain)
        configs = (answer.get("DomainConfigs") or {}).get("DomainConfig") or []
        result = []
        for config in configs:
            args = {str(a.get("ArgName")): str(a.get("ArgValue"))
                    for a in (config.get("FunctionArgs") or {}).get("FunctionArg") or []}
            result.append(CdnFunctionConfig(function_name=str(config.get("FunctionName", "")),
                                            config_id=str(config.get("ConfigId", "")), args=args,
                                            status=str(config.get("Status", ""))))
        return result

    def batch_set_config(self, domain: str, functions: dict[str, dict[str, str]]) -> None:
        """BatchSetCdnDomainConfig: ``functions`` maps functionName → {argName: argValue} (JSON on the wire)."""
        payload = [{"functionName": name, "functionArgs": [{"argName": k, "argValue": v} for k, v in args.items()]}
                   for name, args in functions.items()]
        self.rpc.call("BatchSetCdnDomainConfig", {"DomainNames": domain, "Functions": json.dumps(payload)},
                      resource=domain, retry=False)

    def delete_config(self, domain: str, config_id: str, function_name: str = "") -> None:
        """DeleteSpecificConfig (needed before switching between the conflicting https_force and http_force)."""
        params: dict[str, str | int | bool] = {"DomainName": domain, "ConfigId": config_id}
        if function_name:
            params["FunctionName"] = function_name
        self.rpc.call("DeleteSpecificConfig", params, resource=domain, retry=False)
