"""CDN RPC API 2018-05-10: the domain, certificate and config actions tlsguard uses.

API references followed (field names, parameters, limits, errors):
https://www.alibabacloud.com/help/en/cdn/developer-reference/api-cdn-2018-05-10-describeuserdomains
https://www.alibabacloud.com/help/en/cdn/developer-reference/api-cdn-2018-05-10-describedomaincertificateinfo
https://help.aliyun.com/document_detail/90924.html (DescribeCdnDomainConfigs)
https://help.aliyun.com/zh/cdn/developer-reference/api-cdn-2018-05-10-setcdndomainsslcertificate
https://www.alibabacloud.com/help/en/doc-detail/90915.htm (BatchSetCdnDomainConfig)
https://www.alibabacloud.com/help/en/cdn/developer-reference/api-cdn-2018-05-10-deletespecificconfig
Differences and decisions: docs/emulated/cdn.md.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from localcloud.cdn.backend import DOMAIN_STATUSES, BoundCertificate, CdnDomain
from localcloud.cdn.functions import validate_function
from localcloud.errors import ServiceError
from localcloud.rpc.service import COMMON_PARAMETERS, Action, RpcCall, RpcService
from localcloud.trail import TrailCall

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud

SEARCH_TYPES = ("fuzzy_match", "pre_match", "suf_match", "full_match")
MAX_BATCH_ITEMS = 50
#: DescribeUserDomains takes up to 50 comma-separated domain names (https://help.aliyun.com/document_detail/91188.htm).
MAX_LISTED_NAMES = 50
#: Request parameters ActionTrail must not carry in clear (the private key of an uploaded certificate).
SECRET_PARAMETERS = frozenset({"SSLPri"})


def iso(ts: float | datetime) -> str:
    """ISO-8601 UTC without fractions, as the CDN API prints times (``2018-06-03T22:03:39Z``)."""
    moment = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, tz=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_param(call: RpcCall, name: str, default: int, low: int, high: int) -> int:
    raw = call.get(name)
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ServiceError(400, f"Invalid{name}", f"Specified parameter {name} is not valid.") from None
    if not low <= value <= high:
        raise ServiceError(400, f"Invalid{name}", f"Specified parameter {name} is not valid.")
    return value


def _cert_life(cert: BoundCertificate) -> str:
    months = max(1, round((cert.info.not_after - cert.info.not_before).days / 30.4))
    return f"{months // 12} years" if months >= 12 and months % 12 == 0 else f"{months} months"


class CdnService(RpcService):
    """The CDN RPC endpoint (``endpoints["cdn"]``)."""

    name = "cdn"
    product = "Cdn"
    host_id = "cdn.aliyuncs.com"
    version = "2018-05-10"

    def __init__(self, cloud: LocalCloud) -> None:
        super().__init__(cloud, cloud.cdn.limiter, cloud.cdn.nonces)

    def build_actions(self) -> dict[str, Action]:
        return {
            "DescribeUserDomains": Action(self.describe_user_domains),
            "DescribeDomainCertificateInfo": Action(self.describe_domain_certificate_info,
                                                    resource_param="DomainName"),
            "DescribeCdnDomainConfigs": Action(self.describe_cdn_domain_configs, resource_param="DomainName"),
            "SetCdnDomainSSLCertificate": Action(self.set_cdn_domain_ssl_certificate, write=True,
                                                 resource_param="DomainName"),
            "BatchSetCdnDomainConfig": Action(self.batch_set_cdn_domain_config, write=True,
                                              resource_param="DomainNames"),
            "DeleteSpecificConfig": Action(self.delete_specific_config, write=True, resource_param="DomainName"),
        }

    # -- ActionTrail ---------------------------------------------------------------------------------------
    def record_write(self, call: RpcCall, action: Action, error: ServiceError | None) -> None:
        names = call.get(action.resource_param or "DomainName")
        resources = tuple(n.strip().lower() for n in names.split(",") if n.strip()) or ("",)
        parameters = {k: ("******" if k in SECRET_PARAMETERS else v) for k, v in call.params.items()
                      if k not in COMMON_PARAMETERS}
        self.cloud.trail.record(TrailCall(
            service="cdn", event_name=call.action, principal=call.principal, region=self.cloud.region,
            request_id=call.request_id, request_parameters=parameters, resource_type="ACS::CDN::Domain",
            resource_names=resources, source_ip=call.request.client_ip, user_agent=call.request.user_agent,
            event_source="cdn.aliyuncs.com", error_code=error.code if error else None,
            error_message=error.message if error else None, api_version=self.version,
        ))

    # -- reads ---------------------------------------------------------------------------------------------
    def describe_user_domains(self, call: RpcCall) -> dict[str, Any]:
        size = _int_param(call, "PageSize", 20, 1, 500)
        page = _int_param(call, "PageNumber", 1, 1, 100000)
        wanted = [n.strip() for n in call.get("DomainName").lower().split(",") if n.strip()]
        if len(wanted) > MAX_LISTED_NAMES:
            raise ServiceError(400, "InvalidDomainName", "Specified parameter DomainName is not valid. "
                               f"At most {MAX_LISTED_NAMES} domain names are allowed.")
        search = call.get("DomainSearchType") or "full_match"
        if search not in SEARCH_TYPES:
            raise ServiceError(400, "InvalidDomainSearchType", "Specified parameter DomainSearchType is not valid.")
        status = call.get("DomainStatus")
        if status and status not in DOMAIN_STATUSES:
            raise ServiceError(400, "InvalidDomainStatus", "Specified parameter DomainStatus is not valid.")
        cdn_type = call.get("CdnType")
        found: list[CdnDomain] = []
        for domain in self.cloud.cdn.domains(call.account_id):
            if wanted and not any(_matches(domain.name, name, search) for name in wanted):
                continue
            if status and domain.status != status:
                continue
            if cdn_type and domain.cdn_type != cdn_type:
                continue
            found.append(domain)
        page_items = found[(page - 1) * size: page * size]
        return {
            "PageNumber": page,
            "PageSize": size,
            "TotalCount": len(found),
            "Domains": {"PageData": [self._page_data(d) for d in page_items]},
        }

    def describe_domain_certificate_info(self, call: RpcCall) -> dict[str, Any]:
        domain = self.cloud.cdn.domain(call.account_id, call.require("DomainName"))
        cert = domain.certificate
        entry: dict[str, Any] = {
            "DomainName": domain.name,
            "ServerCertificateStatus": domain.ssl_protocol,
            "DomainCnameStatus": "ok",
            "Status": domain.certificate_status,
        }
        if cert is not None:
            entry.update({
                "CertName": cert.cert_name,
                "CertId": str(cert.cert_id),
                "CertRegion": cert.cert_region,
                "CertType": cert.cert_type,
                "CertDomainName": cert.info.common_name or ",".join(cert.info.sans),
                "CertStartTime": iso(cert.info.not_before),
                "CertExpireTime": iso(cert.info.not_after),
                "CertUpdateTime": iso(cert.updated_at),
                "CertLife": _cert_life(cert),
                "CertOrg": cert.info.issuer_org,
                "ServerCertificate": "".join(p if p.endswith("\n") else p + "\n" for p in cert.chain_pem),
            })
        else:
            entry.update({"CertName": "", "CertId": "", "CertRegion": "", "CertType": "", "CertDomainName": "",
                          "CertStartTime": "", "CertExpireTime": "", "CertUpdateTime": "", "CertLife": "",
                          "CertOrg": "", "ServerCertificate": ""})
        return {"CertInfos": {"CertInfo": [entry]}}

    def describe_cdn_domain_configs(self, call: RpcCall) -> dict[str, Any]:
        domain = self.cloud.cdn.domain(call.account_id, call.require("DomainName"))
        names = [n.strip() for n in call.get("FunctionNames").split(",") if n.strip()]
        config_id = call.get("ConfigId")
        configs = []
        for function_name, config in sorted(domain.configs.items()):
            if names and function_name not in names:
                continue
            if config_id and str(config.config_id) != config_id:
                continue
            configs.append({
                "FunctionName": function_name,
                "ConfigId": str(config.config_id),
                "Status": self.cloud.cdn.config_status(config),
                "ParentId": config.parent_id,
                "FunctionArgs": {"FunctionArg": [{"ArgName": k, "ArgValue": v} for k, v in config.args.items()]},
            })
        return {"DomainConfigs": {"DomainConfig": configs}}

    # -- writes --------------------------------------------------------------------------------------------
    def set_cdn_domain_ssl_certificate(self, call: RpcCall) -> dict[str, Any]:
        name = call.require("DomainName")
        protocol = call.require("SSLProtocol")  # required (https://help.aliyun.com/document_detail/2297005.htm)
        if protocol not in ("on", "off"):
            raise ServiceError(400, "InvalidSSLProtocol.ValueNotSupported", "The specified SSLProtocol is invalid.")
        domain = self.cloud.cdn.domain(call.account_id, name)
        if domain.status == "offline":
            raise ServiceError(400, "InvalidDomain.Offline", "The domain provided is offline.")
        certificate: BoundCertificate | None = None
        if protocol == "on":
            certificate = self._certificate_for(call, domain)
        self.cloud.cdn.set_certificate(call.account_id, name, protocol, certificate)
        return {}

    def batch_set_cdn_domain_config(self, call: RpcCall) -> dict[str, Any]:
        names = [n.strip().lower() for n in call.require("DomainNames").split(",") if n.strip()]
        if not names or len(names) > MAX_BATCH_ITEMS:
            raise ServiceError(400, "InvalidDomainNames", "Specified parameter DomainNames is not valid.")
        functions = _parse_functions(call.require("Functions"))
        if len(names) * len(functions) > MAX_BATCH_ITEMS:
            raise ServiceError(400, "InvalidFunctions", "Specified parameter Functions is not valid. The number "
                               "of domains times the number of functions must not exceed 50.")
        for name in names:
            self.cloud.cdn.domain(call.account_id, name)  # every domain must exist before anything changes
        for function_name, args, _parent in functions:
            validate_function(function_name, args)
        self.cloud.cdn.check_batch(call.account_id, names, [f for f, _a, _p in functions])
        results = []
        for function_name, args, parent_id in functions:
            for domain_name, config in self.cloud.cdn.set_config(call.account_id, names, function_name, args,
                                                                 parent_id):
                results.append({"DomainName": domain_name, "FunctionName": function_name,
                                "ConfigId": config.config_id})
        return {"DomainConfigList": {"DomainConfigModel": results}}

    def delete_specific_config(self, call: RpcCall) -> dict[str, Any]:
        name = call.require("DomainName")
        ids = [i.strip() for i in call.require("ConfigId").split(",") if i.strip()]
        self.cloud.cdn.delete_configs(call.account_id, name, ids, call.get("FunctionName"))
        return {}

    # -- helpers -------------------------------------------------------------------------------------------
    def _certificate_for(self, call: RpcCall, domain: CdnDomain) -> BoundCertificate:
        cert_type = call.get("CertType") or ("cas" if call.get("CertId") else "upload")
        now = self.cloud.clock.time()
        if cert_type == "cas":
            cert_id = call.get("CertId")
            if not cert_id:
                raise ServiceError(400, "MissingCertId", "CertId is mandatory when CertType is cas.")
            region = call.get("CertRegion") or "cn-hangzhou"
            if region not in ("cn-hangzhou", "ap-southeast-1"):
                raise ServiceError(400, "InvalidCertRegion", "Specified parameter CertRegion is not valid.")
            cert = self.cloud.cas.get(call.account_id, cert_id) if cert_id.isdigit() else None
            if cert is None:
                raise ServiceError(400, "InvalidCertId",
                                   f"Specified parameter CertId is not valid: certificate {cert_id} not found.")
            return BoundCertificate(cert.id, cert.name, "cas", region, cert.chain_pem, cert.key_pem, cert.info, now)
        if cert_type != "upload":
            raise ServiceError(400, "InvalidCertType", "Specified parameter CertType is not valid.")
        pub = call.get("SSLPub")
        if not pub:
            raise ServiceError(400, "SSLPub.MissingParameter", "The SSLPub parameter is required.")
        pri = call.get("SSLPri")
        if not pri:
            raise ServiceError(400, "SSLPri.MissingParameter", "The SSLPri parameter is required.")
        from localcloud.cas.service import check_key_matches

        check_key_matches(pub, pri, code="InvalidSSLPub")
        name = call.get("CertName") or f"{domain.name}-{int(now)}"
        if self.cloud.cas.find_by_name(call.account_id, name) is not None:
            name = f"{name}-{int(now * 1000) % 100000}"
        try:
            cert = self.cloud.cas.upload(call.account_id, name, pub, pri)
        except ValueError:
            raise ServiceError(400, "InvalidSSLPub", "Specified parameter SSLPub is not valid.") from None
        return BoundCertificate(cert.id, cert.name, "upload", cert.region, cert.chain_pem, cert.key_pem, cert.info,
                                now)

    def _page_data(self, domain: CdnDomain) -> dict[str, Any]:
        return {
            "DomainName": domain.name,
            "DomainId": domain.domain_id,
            "Cname": domain.cname,
            "CdnType": domain.cdn_type,
            "DomainStatus": domain.status,
            "SslProtocol": domain.ssl_protocol,
            "GmtCreated": iso(domain.created_at),
            "GmtModified": iso(domain.modified_at),
            "Description": domain.description,
            "ResourceGroupId": domain.resource_group_id,
            "Coverage": domain.coverage,
            "Sandbox": "normal",
            "Sources": {"Source": [dict(s) for s in domain.sources]},
        }


def _matches(name: str, wanted: str, search: str) -> bool:
    if search == "full_match":
        return name == wanted
    if search == "pre_match":
        return name.startswith(wanted)
    if search == "suf_match":
        return name.endswith(wanted)
    return wanted in name


def _parse_functions(raw: str) -> list[tuple[str, dict[str, str], str]]:
    """The ``Functions`` JSON string as (functionName, {argName: argValue}, parentId) triples."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise ServiceError(400, "InvalidFunctions",
                           "Specified parameter Functions is not valid. It must be a JSON array.") from None
    if not isinstance(value, list) or not value:
        raise ServiceError(400, "InvalidFunctions",
                           "Specified parameter Functions is not valid. It must be a non-empty JSON array.")
    parsed = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("functionName"), str):
            raise ServiceError(400, "InvalidFunctions",
                               "Specified parameter Functions is not valid. Each item needs a functionName.")
        args_raw = item.get("functionArgs") or []
        if not isinstance(args_raw, list):
            raise ServiceError(400, "InvalidFunctions",
                               "Specified parameter Functions is not valid. functionArgs must be an array.")
        args: dict[str, str] = {}
        for arg in args_raw:
            if not isinstance(arg, dict) or not isinstance(arg.get("argName"), str) or "argValue" not in arg:
                raise ServiceError(400, "InvalidFunctions", "Specified parameter Functions is not valid. Each "
                                   "functionArgs item needs argName and argValue.")
            args[arg["argName"]] = str(arg["argValue"])
        parent = item.get("parentId", "")
        parsed.append((item["functionName"], args, "" if parent in (None, "-1", -1) else str(parent)))
    return parsed
