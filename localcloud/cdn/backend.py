"""CDN state (``cloud.cdn``): accelerated domains, their bound certificates and domain configs.

Every change that alters what a domain's edge negotiates is published into ``cloud.tls`` (contract 4): kind
"cdn", versions from ``https_tls_version``, cipher mode from ``ciphersuitegroup``, ``https_force`` and the
HSTS arguments; immediate when seeding, after the propagation delay when changed through the API.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from localcloud.cdn.functions import CONFLICTS, DEFAULT_TLS_ARGS, split_suites, validate_function
from localcloud.errors import ServiceError
from localcloud.rpc.qps import RpcGuards
from localcloud.tlsregistry import EndpointTlsConfig

if TYPE_CHECKING:
    from localcloud.certs import CertificateInfo
    from localcloud.cloud import LocalCloud

#: Documented per-account QPS limits (each from the action's API reference; see docs/emulated/cdn.md).
CDN_QPS_LIMITS = {
    "DescribeUserDomains": 100,
    "DescribeDomainCertificateInfo": 100,
    "DescribeCdnDomainConfigs": 100,
    "SetCdnDomainSSLCertificate": 30,
    # 3/s in the current zh/ja references (help.aliyun.com/document_detail/90915.htm, updated 2025-12);
    # older English pages say 30/s. localcloud follows the current one.
    "BatchSetCdnDomainConfig": 3,
    "DeleteSpecificConfig": 30,
}
DOMAIN_STATUSES = ("online", "offline", "configuring", "configure_failed", "checking", "check_failed",
                   "stopping", "deleting")
CDN_TYPES = ("web", "download", "video")
TLS_VERSION_ARGS = (("tls10", "TLSv1.0"), ("tls11", "TLSv1.1"), ("tls12", "TLSv1.2"), ("tls13", "TLSv1.3"))
CIPHER_MODES = {"all": "all", "strict": "strong", "custom": "custom"}
FIRST_CONFIG_ID = 310000000001
FIRST_DOMAIN_ID = 11000001


@dataclass(frozen=True)
class BoundCertificate:
    """The certificate a domain serves: from CAS (``cas``) or uploaded with the call (``upload``)."""

    cert_id: int
    cert_name: str
    cert_type: str  # "cas" | "upload"
    cert_region: str
    chain_pem: tuple[str, ...]
    key_pem: str
    info: CertificateInfo
    updated_at: float


@dataclass
class DomainConfig:
    """One function configured on a domain (what DescribeCdnDomainConfigs lists)."""

    config_id: int
    function_name: str
    args: dict[str, str]
    parent_id: str = ""
    updated_at: float = 0.0


@dataclass
class CdnDomain:
    name: str
    account_id: str
    cdn_type: str = "web"
    status: str = "online"
    sources: list[dict[str, Any]] = field(default_factory=list)
    created_at: float = 0.0
    modified_at: float = 0.0
    ssl_protocol: str = "off"
    certificate: BoundCertificate | None = None
    configs: dict[str, DomainConfig] = field(default_factory=dict)
    description: str = ""
    coverage: str = "domestic"
    resource_group_id: str = "rg-acfmyuji4b6r4ry"
    #: DescribeDomainCertificateInfo's ``Status`` (seedable; a new certificate binding resets it to success).
    certificate_status: str = "success"
    #: DescribeUserDomains' ``DomainId`` (an integer in alibabacloud-cdn20180510's PageData model).
    domain_id: int = 0

    @property
    def cname(self) -> str:
        return f"{self.name}.w.kunlunca.com"


#: DescribeDomainCertificateInfo ``Status`` values
#: (https://www.alibabacloud.com/help/en/cdn/developer-reference/api-cdn-2018-05-10-describedomaincertificateinfo).
CERTIFICATE_STATUSES = ("success", "checking", "cname_error", "top_domain_cname_error", "domain_invalid",
                        "unsupport_wildcard", "applying", "get_token_timeout", "check_token_timeout",
                        "get_cert_timeout", "failed")


def domain_not_found() -> ServiceError:
    # https://alibabacloud.com/help/en/cdn/api-setdomainservercertificate (common CDN errors)
    return ServiceError(404, "InvalidDomain.NotFound", "The domain provided does not belong to you.")


class CdnBackend(RpcGuards):
    """Domains of every account, keyed by name (a CDN domain name is unique across accounts)."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self._lock = threading.RLock()
        self._domains: dict[str, CdnDomain] = {}
        self._config_ids = itertools.count(FIRST_CONFIG_ID)
        self._domain_ids = itertools.count(FIRST_DOMAIN_ID)
        self.init_guards(CDN_QPS_LIMITS)

    def reset(self) -> None:
        with self._lock:
            self._domains.clear()
            self._config_ids = itertools.count(FIRST_CONFIG_ID)
            self._domain_ids = itertools.count(FIRST_DOMAIN_ID)
        self.reset_guards()

    # -- reads ---------------------------------------------------------------------------------------------
    def domain(self, account_id: str, name: str) -> CdnDomain:
        """The account's domain, or InvalidDomain.NotFound (also for another account's domain)."""
        with self._lock:
            found = self._domains.get(name.lower())
        if found is None or found.account_id != account_id:
            raise domain_not_found()
        return found

    def domains(self, account_id: str) -> list[CdnDomain]:
        with self._lock:
            return sorted((d for d in self._domains.values() if d.account_id == account_id),
                          key=lambda d: (d.created_at, d.name))

    def get(self, name: str) -> CdnDomain | None:
        """Any account's domain by name (the TLS plane's CDN edge reads ``configs`` through it)."""
        with self._lock:
            return self._domains.get(name.lower())

    def config_status(self, config: DomainConfig) -> str:
        """``configuring`` until the propagation delay has passed since the change, then ``success``."""
        if self.cloud.clock.time() < config.updated_at + self.cloud.tls.propagation_seconds:
            return "configuring"
        return "success"

    # -- writes --------------------------------------------------------------------------------------------
    def set_certificate(self, account_id: str, name: str, ssl_protocol: str, certificate: BoundCertificate | None,
                        *, immediate: bool = False) -> None:
        with self._lock:
            domain = self.domain(account_id, name)
            domain.ssl_protocol = ssl_protocol
            if certificate is not None:
                domain.certificate = certificate
                domain.certificate_status = "success"
            domain.modified_at = self.cloud.clock.time()
            self._publish(domain, immediate)

    def check_batch(self, account_id: str, names: list[str], function_names: list[str]) -> None:
        """Refuse a batch that would put https_force and http_force on one domain (nothing is changed)."""
        batch = set(function_names)
        with self._lock:
            for name in names:
                domain = self.domain(account_id, name)
                for function_name in function_names:
                    rival = CONFLICTS.get(function_name)
                    if rival is None:
                        continue
                    if rival in batch or rival in domain.configs:
                        where = (f"the {rival} config (ConfigId {domain.configs[rival].config_id})"
                                 if rival in domain.configs else f"{rival} in the same request")
                        raise ServiceError(
                            400, "InvalidFunctions",
                            f"Specified parameter Functions is not valid. {function_name} conflicts with {where} "
                            f"on {domain.name}; delete it with DeleteSpecificConfig before adding {function_name}.")

    def set_config(self, account_id: str, names: list[str], function_name: str, args: dict[str, str],
                   parent_id: str = "", *, immediate: bool = False) -> list[tuple[str, DomainConfig]]:
        """Create or update ``function_name`` on each domain; returns (domain, config) pairs.

        Callers validate first (:func:`validate_function`, :meth:`check_batch`) so a batch is all-or-nothing.
        """
        validate_function(function_name, args)
        with self._lock:
            self.check_batch(account_id, names, [function_name])
            domains = [self.domain(account_id, n) for n in names]
            now = self.cloud.clock.time()
            results: list[tuple[str, DomainConfig]] = []
            for domain in domains:
                existing = domain.configs.get(function_name)
                config_id = existing.config_id if existing else next(self._config_ids)
                config = DomainConfig(config_id, function_name, dict(args), parent_id, now)
                domain.configs[function_name] = config
                domain.modified_at = now
                self._publish(domain, immediate)
                results.append((domain.name, config))
            return results

    def delete_configs(self, account_id: str, name: str, config_ids: list[str], function_name: str = "") -> None:
        """DeleteSpecificConfig: remove configs by id (all must exist on the domain)."""
        with self._lock:
            domain = self.domain(account_id, name)
            by_id = {str(c.config_id): fn for fn, c in domain.configs.items()}
            for config_id in config_ids:
                fn = by_id.get(config_id)
                if fn is None or (function_name and fn != function_name):
                    raise ServiceError(400, "InvalidConfigId",
                                       f"Specified parameter ConfigId is not valid: no config {config_id} on "
                                       f"{domain.name}.")
            for config_id in config_ids:
                domain.configs.pop(by_id[config_id], None)
            domain.modified_at = self.cloud.clock.time()
            self._publish(domain, immediate=False)

    # -- TLS registry (contract 4) -------------------------------------------------------------------------
    def tls_config(self, domain: CdnDomain) -> EndpointTlsConfig | None:
        """What the domain's edge negotiates, or None when it serves no HTTPS."""
        if domain.ssl_protocol != "on" or domain.certificate is None or domain.status not in ("online",
                                                                                              "configuring"):
            return None
        tls_args = dict(DEFAULT_TLS_ARGS)
        if "https_tls_version" in domain.configs:
            tls_args.update(domain.configs["https_tls_version"].args)
        versions = tuple(version for arg, version in TLS_VERSION_ARGS if tls_args.get(arg, "on") == "on")
        mode = CIPHER_MODES[tls_args.get("ciphersuitegroup", "all")]
        custom12: tuple[str, ...] = ()
        custom13: tuple[str, ...] = ()
        if mode == "custom":
            custom12, custom13 = split_suites(tls_args.get("ciphersuite", ""))
        force = domain.configs.get("https_force")
        hsts = domain.configs.get("HSTS")
        return EndpointTlsConfig(
            host=domain.name, kind="cdn", versions=versions, cipher_mode=mode, custom_tls12=custom12,
            custom_tls13=custom13, chain_pem=domain.certificate.chain_pem, key_pem=domain.certificate.key_pem,
            https_force=bool(force and force.args.get("enable") == "on"),
            hsts=dict(hsts.args) if hsts else {},
        )

    def _publish(self, domain: CdnDomain, immediate: bool) -> None:
        config = self.tls_config(domain)
        now = self.cloud.clock.time()
        if config is None:
            self.cloud.tls.remove(domain.name, now, immediate=immediate)
        else:
            self.cloud.tls.publish(config, now, immediate=immediate)

    # -- seeds and state -----------------------------------------------------------------------------------
    def seed(self, items: list[dict[str, Any]]) -> None:
        """The seed's ``cdn_domains:`` section (format in localcloud/seeds/README.md and docs/emulated/cdn.md)."""
        from localcloud.seed import SeedError

        allowed = {"name", "account", "cdn_type", "status", "sources", "certificate", "ssl_protocol", "configs",
                   "description", "certificate_status"}
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
                raise SeedError(f"cdn_domains[{index}]: each domain is a mapping with a name, got {item!r}")
            name = item["name"].lower()
            where = f"cdn_domains[{name}]"
            unknown = set(item) - allowed
            if unknown:
                raise SeedError(f"{where}: unknown keys {', '.join(sorted(unknown))}; expected "
                                f"{', '.join(sorted(allowed))}")
            account = str(item.get("account") or self.cloud.default_account_id)
            if account not in self.cloud.iam.accounts():
                raise SeedError(f"{where}: unknown account {account!r}")
            if self.get(name) is not None:
                raise SeedError(f"{where}: the domain already exists")
            cdn_type = str(item.get("cdn_type", "web"))
            status = str(item.get("status", "online"))
            if cdn_type not in CDN_TYPES:
                raise SeedError(f"{where}: cdn_type must be one of {', '.join(CDN_TYPES)}")
            if status not in DOMAIN_STATUSES:
                raise SeedError(f"{where}: status must be one of {', '.join(DOMAIN_STATUSES)}")
            sources = item.get("sources") or [{"content": f"origin.{name}", "type": "domain"}]
            if not isinstance(sources, list) or not all(isinstance(s, dict) and s.get("content") for s in sources):
                raise SeedError(f"{where}: sources is a list of {{content, type?, port?, priority?, weight?}}")
            now = self.cloud.clock.time()
            domain = CdnDomain(name=name, account_id=account, cdn_type=cdn_type, status=status,
                               sources=[_source(s) for s in sources], created_at=now, modified_at=now,
                               description=str(item.get("description", "")), domain_id=next(self._domain_ids))
            cert_name = item.get("certificate")
            ssl_protocol = _on_off(item.get("ssl_protocol", "on" if cert_name else "off"))
            if ssl_protocol not in ("on", "off"):
                raise SeedError(f"{where}: ssl_protocol must be on or off")
            if cert_name:
                cert = self.cloud.cas.find_by_name(account, str(cert_name))
                if cert is None:
                    raise SeedError(f"{where}: no CAS certificate named {cert_name!r} in account {account} "
                                    "(declare it under certificates:)")
                domain.certificate = BoundCertificate(cert.id, cert.name, "upload" if cert.upload else "cas",
                                                      cert.region, cert.chain_pem, cert.key_pem, cert.info, now)
            elif ssl_protocol == "on":
                raise SeedError(f"{where}: ssl_protocol on needs a certificate")
            domain.ssl_protocol = ssl_protocol
            certificate_status = str(item.get("certificate_status", "success"))
            if certificate_status not in CERTIFICATE_STATUSES:
                raise SeedError(f"{where}: certificate_status must be one of {', '.join(CERTIFICATE_STATUSES)}")
            domain.certificate_status = certificate_status
            configs = item.get("configs") or {}
            if not isinstance(configs, dict):
                raise SeedError(f"{where}: configs is a mapping of function name to its arguments")
            for function_name, args in configs.items():
                if not isinstance(args, dict):
                    raise SeedError(f"{where}: configs.{function_name} is a mapping of argument to value")
                str_args = {str(k): _on_off(v) for k, v in args.items()}
                try:
                    validate_function(str(function_name), str_args)
                except ServiceError as exc:
                    raise SeedError(f"{where}: configs.{function_name}: {exc.message}") from None
                rival = CONFLICTS.get(str(function_name))
                if rival and rival in configs:
                    raise SeedError(f"{where}: {function_name} and {rival} cannot both be configured")
                domain.configs[str(function_name)] = DomainConfig(next(self._config_ids), str(function_name),
                                                                  str_args, "", now - 3600)
            with self._lock:
                self._domains[name] = domain
                self._publish(domain, immediate=True)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            domains = sorted(self._domains.values(), key=lambda d: d.name)
            return {"domains": [
                {"name": d.name, "account_id": d.account_id, "status": d.status, "cdn_type": d.cdn_type,
                 "ssl_protocol": d.ssl_protocol,
                 "certificate": None if d.certificate is None else {
                     "cert_id": d.certificate.cert_id, "cert_name": d.certificate.cert_name,
                     "cert_type": d.certificate.cert_type,
                     "not_after": d.certificate.info.not_after.isoformat()},
                 "configs": {fn: {"config_id": c.config_id, "args": dict(c.args)} for fn, c in d.configs.items()}}
                for d in domains],
                "enforce_qps": self.enforce_qps}


def _on_off(value: object) -> str:
    """A seed value as the API string; YAML 1.1 reads unquoted ``on``/``off`` as booleans, so map them back."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _source(spec: dict[str, Any]) -> dict[str, Any]:
    """One ``Sources.Source`` entry: exactly the fields of alibabacloud-cdn20180510's
    ``DescribeUserDomainsResponseBodyDomainsPageDataSourcesSource`` (no ``Enabled``)."""
    return {"Content": str(spec["content"]), "Type": str(spec.get("type", "domain")),
            "Port": int(spec.get("port", 80)), "Priority": str(spec.get("priority", "20")),
            "Weight": str(spec.get("weight", "10"))}


__all__ = ["BoundCertificate", "CdnBackend", "CdnDomain", "DomainConfig"]
