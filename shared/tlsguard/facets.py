"""Facets: the parts of a target that checks read and fixes write, each with its reader, writer and JSON form.

A facet is the unit of I/O: a bucket's https config, its policy, its default encryption; a domain's bound
certificate and the chain it really serves; a CDN domain's HTTPS function configs. Checks judge facets (several
checks may judge one facet: TLS versions and cipher suites share the https config) and fixes write whole facets
(OSS replaces the whole https document on PUT, so the two checks' edits become one write).

Each facet declares the cloud operations it reads and writes with, and from those the RAM policy is generated.
Values are typed for the checks; ``to_json`` / ``from_json`` give the form the journal stores, and ``same``
compares two JSON forms the way the service does (a re-read equals what was written).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tlsguard.errors import CloudError, RemediationRefused
from tlsguard.model import TargetKind, TargetRef
from tlsguard.policy.bucket_policy import parse_policy
from tlsguard.policy.model import EncryptionAlgorithm, EncryptionPolicy, RawHttpsConfig
from tlsguard.ports import BucketRef

if TYPE_CHECKING:
    from collections.abc import Callable

    from tlsguard.certs.chain import TrustStore
    from tlsguard.certs.model import ApiView, CasCandidate, LiveView
    from tlsguard.ports import Ports

#: The CDN functions that make up a domain's HTTPS posture (DescribeCdnDomainConfigs FunctionNames).
CDN_POSTURE_FUNCTIONS = ("https_force", "http_force", "HSTS", "https_tls_version")

BUCKETS = frozenset({TargetKind.OSS_BUCKET})
CNAMES = frozenset({TargetKind.OSS_CNAME})
CDN_DOMAINS = frozenset({TargetKind.CDN_DOMAIN})
DOMAINS = CNAMES | CDN_DOMAINS


class TargetGone(CloudError):
    """The target no longer exists (a bucket deleted, a custom domain unbound, a CDN domain removed)."""


def bucket_ref(target: TargetRef) -> BucketRef:
    return BucketRef(target.bucket or target.name if target.kind is TargetKind.OSS_CNAME else target.name,
                     target.region)


@dataclass(frozen=True)
class Facet:
    """One readable (and maybe writable) part of a target."""

    name: str
    kinds: frozenset[TargetKind]
    description: str
    reads: tuple[tuple[str, str], ...]  # (service, operation)
    writes: tuple[tuple[str, str], ...] = ()
    live: bool = False  # read from the endpoint itself (a handshake), not from an API

    def read(self, ports: Ports, target: TargetRef) -> Any:
        raise NotImplementedError

    def to_json(self, value: Any) -> Any:
        return value

    def from_json(self, data: Any) -> Any:
        return data

    def same(self, a: Any, b: Any) -> bool:
        """Whether two JSON forms describe the same state (as the service would judge them)."""
        return bool(a == b)

    def write(self, ports: Ports, target: TargetRef, after: Any, before: Any) -> None:
        """Write the JSON form ``after`` (the whole facet); ``before`` is what it replaces."""
        raise RemediationRefused(f"{self.name} is read-only")

    def call_for(self, after: Any) -> str:
        """The API call a write of ``after`` makes (shown in plans and journaled)."""
        return self.writes[0][1] if self.writes else ""


# -- OSS bucket facets --------------------------------------------------------------------------------------------
class _Tags(Facet):
    def read(self, ports: Ports, target: TargetRef) -> Any:
        return ports.oss.get_bucket_tags(bucket_ref(target))


class _HttpsConfig(Facet):
    def read(self, ports: Ports, target: TargetRef) -> Any:
        return ports.oss.get_https_config(bucket_ref(target))

    def to_json(self, value: Any) -> Any:
        return value.to_dict() if isinstance(value, RawHttpsConfig) else value

    def from_json(self, data: Any) -> Any:
        return RawHttpsConfig.from_dict(data) if isinstance(data, dict) else RawHttpsConfig()

    def same(self, a: Any, b: Any) -> bool:
        from tlsguard.checks.oss import normalise_https

        return normalise_https(self.from_json(a)) == normalise_https(self.from_json(b))

    def write(self, ports: Ports, target: TargetRef, after: Any, before: Any) -> None:
        ports.oss.put_https_config(bucket_ref(target), self.from_json(after))


class _BucketPolicy(Facet):
    def read(self, ports: Ports, target: TargetRef) -> Any:
        return ports.oss.get_policy(bucket_ref(target))

    def same(self, a: Any, b: Any) -> bool:
        return bool(parse_policy(a if isinstance(a, str) else None) == parse_policy(b if isinstance(b, str) else None))

    def write(self, ports: Ports, target: TargetRef, after: Any, before: Any) -> None:
        if after is None:
            ports.oss.delete_policy(bucket_ref(target))
        else:
            ports.oss.put_policy(bucket_ref(target), str(after))

    def call_for(self, after: Any) -> str:
        return "DeleteBucketPolicy" if after is None else "PutBucketPolicy"


def encryption_json(rule: EncryptionPolicy | None) -> dict[str, str] | None:
    if rule is None:
        return None
    return {"algorithm": rule.algorithm.value, "kms_key_id": rule.kms_key_id,
            "kms_data_encryption": rule.kms_data_encryption}


def encryption_from_json(data: Any) -> EncryptionPolicy | None:
    if not isinstance(data, dict):
        return None
    return EncryptionPolicy(EncryptionAlgorithm(data["algorithm"]), str(data.get("kms_key_id") or ""),
                            str(data.get("kms_data_encryption") or ""))


def encryption_matches(desired: EncryptionPolicy, actual: EncryptionPolicy | None) -> bool:
    """A desired KMS rule without a key id accepts any key (the service fills in its default key)."""
    if actual is None or actual.algorithm is not desired.algorithm:
        return False
    if desired.kms_key_id and desired.kms_key_id != actual.kms_key_id:
        return False
    return not (desired.kms_data_encryption and desired.kms_data_encryption != actual.kms_data_encryption)


class _Encryption(Facet):
    def read(self, ports: Ports, target: TargetRef) -> Any:
        return ports.oss.get_encryption(bucket_ref(target))

    def to_json(self, value: Any) -> Any:
        return encryption_json(value)

    def from_json(self, data: Any) -> Any:
        return encryption_from_json(data)

    def same(self, a: Any, b: Any) -> bool:
        want, have = encryption_from_json(a), encryption_from_json(b)
        if want is None or have is None:
            return want is None and have is None
        return encryption_matches(want, have) or encryption_matches(have, want)

    def write(self, ports: Ports, target: TargetRef, after: Any, before: Any) -> None:
        rule = encryption_from_json(after)
        if rule is None:
            raise RemediationRefused("tlsguard never deletes default encryption")
        ports.oss.put_encryption(bucket_ref(target), rule)


# -- certificate facets (custom domains and CDN domains) -------------------------------------------------------
def api_view_json(api: ApiView) -> dict[str, Any]:
    return {"cert_id": api.cert_id, "cert_name": api.cert_name, "cert_type": api.cert_type,
            "cert_region": api.region, "fingerprint": api.fingerprint_sha1, "https_enabled": api.https_enabled,
            "status": api.status,
            "not_after": api.not_after.isoformat() if api.not_after else None}


class _BoundCertificate(Facet):
    """What the API says is bound: OSS ListCname's Certificate, or CDN DescribeDomainCertificateInfo."""

    def read(self, ports: Ports, target: TargetRef) -> Any:
        if target.kind is TargetKind.OSS_CNAME:
            if ports.cname is None:
                raise CloudError("no OSS custom-domain adapter configured", service="oss", operation="ListCname")
            for binding in ports.cname.list_cnames(bucket_ref(target)):
                if binding.domain == target.name.lower():
                    return binding.api
            raise TargetGone(f"{target.name} is no longer bound to bucket {target.bucket}", service="oss",
                             operation="ListCname", code="NoSuchCname", resource=target.name)
        if ports.cdn is None:
            raise CloudError("no CDN adapter configured", service="cdn", operation="DescribeDomainCertificateInfo")
        return ports.cdn.certificate_view(target.name)

    def to_json(self, value: Any) -> Any:
        return api_view_json(value)

    def same(self, a: Any, b: Any) -> bool:
        a, b = a or {}, b or {}
        return bool(_cert_number(a.get("cert_id")) == _cert_number(b.get("cert_id"))
                    and bool(a.get("https_enabled", True)) == bool(b.get("https_enabled", True)))

    def write(self, ports: Ports, target: TargetRef, after: Any, before: Any) -> None:
        after, before = after or {}, before or {}
        cas_id = _cert_number(after.get("cert_id"))
        region = str(after.get("cert_region") or target.region or "cn-hangzhou")
        if not cas_id:
            raise RemediationRefused("no certificate to bind")
        if target.kind is TargetKind.OSS_CNAME:
            if ports.cname is None:
                raise CloudError("no OSS custom-domain adapter configured", service="oss", operation="PutCname")
            previous = before.get("cert_id") or None
            ports.cname.bind_cas_certificate(bucket_ref(target), target.name, f"{cas_id}-{region}",
                                             str(previous) if previous else None)
        else:
            if ports.cdn is None:
                raise CloudError("no CDN adapter configured", service="cdn", operation="SetCdnDomainSSLCertificate")
            ports.cdn.set_cas_certificate(target.name, int(cas_id), region)



def _cert_number(value: Any) -> str:
    """A CAS certificate id from OSS's ``<id>-<region>`` form or CDN's plain id ('' when none)."""
    text = str(value or "").strip()
    return text.split("-", 1)[0] if text else ""


class _ServedChain(Facet):
    """The chain a handshake (with SNI) really gets; an unreachable endpoint is data, never an error."""

    def read(self, ports: Ports, target: TargetRef) -> Any:
        from tlsguard.certs.model import LiveView

        if ports.live is None:
            return LiveView(error="no live prober configured")
        return ports.live.served_chain(target.name)

    def to_json(self, value: LiveView) -> Any:
        return {"endpoint": value.endpoint, "error": value.error, "chain": len(value.chain_pem)}


class _CasCandidates(Facet):
    """CAS certificates that cover the domain and are valid, each with its public chain for vetting."""

    def read(self, ports: Ports, target: TargetRef) -> Any:
        from tlsguard.certs.checks import hostname_covered

        if ports.cas is None:
            raise CloudError("no CAS adapter configured", service="cas", operation="ListUserCertificateOrder")
        candidates: list[CasCandidate] = []
        for candidate in ports.cas.candidates():
            if hostname_covered(target.name, candidate.sans, candidate.common_name):
                candidates.append(candidate)
        return candidates

    def to_json(self, value: Any) -> Any:
        return [{"cert_id": c.cert_id, "name": c.name, "not_after": c.not_after.isoformat()} for c in value]


# -- CDN facets ----------------------------------------------------------------------------------------------
class _CdnConfigs(Facet):
    """The HTTPS functions of a CDN domain: ``{function: {"config_id": .., "args": {..}}}``."""

    def read(self, ports: Ports, target: TargetRef) -> Any:
        if ports.cdn is None:
            raise CloudError("no CDN adapter configured", service="cdn", operation="DescribeCdnDomainConfigs")
        return {c.function_name: {"config_id": c.config_id, "args": dict(c.args)}
                for c in ports.cdn.domain_configs(target.name, CDN_POSTURE_FUNCTIONS)}

    def same(self, a: Any, b: Any) -> bool:
        return _cdn_args(a) == _cdn_args(b)

    def write(self, ports: Ports, target: TargetRef, after: Any, before: Any) -> None:
        """Delete the functions ``after`` drops (the https_force/http_force rival first), then set the others."""
        if ports.cdn is None:
            raise CloudError("no CDN adapter configured", service="cdn", operation="BatchSetCdnDomainConfig")
        wanted, have = _cdn_args(after), (before or {})
        for function, config in sorted(have.items()):
            if function not in wanted and config.get("config_id"):
                ports.cdn.delete_config(target.name, str(config["config_id"]), function)
        changed = {name: args for name, args in sorted(wanted.items()) if _cdn_args(have).get(name) != args}
        if changed:
            ports.cdn.batch_set_config(target.name, changed)

    def call_for(self, after: Any) -> str:
        return "BatchSetCdnDomainConfig"


def _cdn_args(value: Any) -> dict[str, dict[str, str]]:
    if not isinstance(value, dict):
        return {}
    return {str(name): {str(k): str(v) for k, v in (config.get("args") or {}).items()}
            for name, config in value.items() if isinstance(config, dict)}


FACETS: dict[str, Facet] = {facet.name: facet for facet in (
    _Tags("tags", BUCKETS, "bucket tags (rule selection)", (("oss", "GetBucketTags"),)),
    _HttpsConfig("https_config", BUCKETS, "TLS versions and cipher suites (GetBucketHttpsConfig)",
                 (("oss", "GetBucketHttpsConfig"),), (("oss", "PutBucketHttpsConfig"),)),
    _BucketPolicy("bucket_policy", BUCKETS, "the bucket policy (its HTTPS-only Deny)",
                  (("oss", "GetBucketPolicy"),), (("oss", "PutBucketPolicy"), ("oss", "DeleteBucketPolicy"))),
    _Encryption("encryption", BUCKETS, "default server-side encryption",
                (("oss", "GetBucketEncryption"),), (("oss", "PutBucketEncryption"),)),
    _BoundCertificate("cname_certificate", CNAMES, "the certificate bound to a custom domain (ListCname)",
                      (("oss", "ListCname"),), (("oss", "PutCname"),)),
    _BoundCertificate("cdn_certificate", CDN_DOMAINS, "the certificate bound to a CDN domain",
                      (("cdn", "DescribeDomainCertificateInfo"),), (("cdn", "SetCdnDomainSSLCertificate"),)),
    _ServedChain("served_chain", DOMAINS, "the chain a handshake with SNI is served", (), live=True),
    _CasCandidates("cas_candidates", DOMAINS, "CAS certificates covering the domain (renewal candidates)",
                   (("cas", "ListUserCertificateOrder"), ("cas", "GetUserCertificateDetail"))),
    _CdnConfigs("cdn_configs", CDN_DOMAINS, "https_force, http_force, HSTS and https_tls_version",
                (("cdn", "DescribeCdnDomainConfigs"),),
                (("cdn", "BatchSetCdnDomainConfig"), ("cdn", "DeleteSpecificConfig"))),
)}

#: The facet holding a domain's bound certificate, per kind.
CERTIFICATE_FACET = {TargetKind.OSS_CNAME: "cname_certificate", TargetKind.CDN_DOMAIN: "cdn_certificate"}


class Actual:
    """What one target has now: the facets read for this run (a facet whose read failed holds its error)."""

    def __init__(self, target: TargetRef, values: dict[str, Any] | None = None,
                 errors: dict[str, CloudError] | None = None,
                 trust: TrustStore | Callable[[], TrustStore] | None = None) -> None:
        self.target = target
        self._trust = trust  # the anchors certificate chains are judged against (or how to load them)
        self.values: dict[str, Any] = dict(values or {})
        self.errors: dict[str, CloudError] = dict(errors or {})
        self._memo: dict[str, Any] = {}

    @property
    def trust(self) -> TrustStore | None:
        if callable(self._trust):
            self._trust = self._trust()
        return self._trust

    def __contains__(self, facet: str) -> bool:
        return facet in self.values

    def __getitem__(self, facet: str) -> Any:
        if facet in self.errors:
            raise self.errors[facet]
        return self.values[facet]

    def get(self, facet: str, default: Any = None) -> Any:
        return self.values.get(facet, default)

    def memo(self, name: str, compute: Callable[[], Any]) -> Any:
        """A value derived from the facets, computed once per target (e.g. the certificate's health)."""
        if name not in self._memo:
            self._memo[name] = compute()
        return self._memo[name]


def read_facets(ports: Ports, target: TargetRef, names: list[str], *, parallel: bool,
                prefetched: dict[str, Any] | None = None) -> Actual:
    """Read ``names`` (skipping prefetched ones), in parallel threads when asked; errors are kept per facet.

    A :class:`TargetGone` is raised at once: there is nothing left to judge.
    """
    values = {name: value for name, value in (prefetched or {}).items() if name in names}
    todo = [name for name in names if name not in values]
    errors: dict[str, CloudError] = {}

    def one(name: str) -> tuple[str, Any, CloudError | None]:
        try:
            return name, FACETS[name].read(ports, target), None
        except TargetGone:
            raise
        except CloudError as exc:
            return name, None, exc

    if parallel and len(todo) > 1:
        from tlsguard.parallel import io_pool

        results = list(io_pool().map(one, todo))
    else:
        results = [one(name) for name in todo]
    for name, value, error in results:
        if error is not None:
            errors[name] = error
        else:
            values[name] = value
    return Actual(target, values, errors, lambda: ports.trust)


def describe_json(value: Any) -> str:
    """A short one-line rendering of a facet's JSON form (reports and undo messages)."""
    return json.dumps(value, sort_keys=True, default=str)[:400]


