"""The policy file's ``certificates:`` section → :class:`CertPolicy` (validated; ConfigError names the field).

Example::

    certificates:
      renew_before_days: 30        # renewal due at notAfter - min(this, lifetime * renew_fraction)
      renew_fraction: 0.3333
      alert_steps: [30, 14, 7, 1]  # days; each step alerted once per certificate
      propagation_grace_minutes: 30
      min_rsa_bits: 2048
      min_ec_bits: 256
      https_required: true         # CDN domains must serve HTTPS
      include: ["*.example.com"]   # scope (exact names or *.suffix)
      exclude: ["legacy.example.com"]
      backup_certificates: {"www.example.com": 12345}   # CAS certificate id per domain
      discovery_hours: 24          # how often the sweep lists every bucket's custom domains
      cdn_https:                   # CDN HTTPS posture (tlsguard.policy.model.CdnHttpsPolicy)
        https_force: true
        hsts: {max_age: 31536000, include_subdomains: true}
        tls_versions: [TLSv1.2, TLSv1.3]
        cipher_suite_group: strict
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from tlsguard.certs.model import DEFAULT_ALERT_STEPS, CertPolicy
from tlsguard.errors import ConfigError
from tlsguard.policy.model import CdnHttpsPolicy

_KEYS = {"renew_before_days", "renew_fraction", "alert_steps", "propagation_grace_minutes", "min_rsa_bits",
         "min_ec_bits", "https_required", "include", "exclude", "backup_certificates", "cdn_https", "discovery_hours"}
_VERSIONS = ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
#: An include/exclude entry: an exact domain name or ``*.suffix`` (CertPolicy.in_scope), nothing fnmatch-like.
_SCOPE_ENTRY = re.compile(r"^(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$")


def cert_policy_from_mapping(data: dict[str, Any] | None, *, source: str = "policy") -> CertPolicy:
    """Build a :class:`CertPolicy` from the ``certificates:`` mapping (absent keys keep their defaults)."""
    if not data:
        return CertPolicy()
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping", file=source, field="certificates")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"unknown keys {', '.join(unknown)}; expected {', '.join(sorted(_KEYS))}", file=source,
                          field="certificates")

    def number(key: str, default: float, minimum: float = 0) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            raise ConfigError(f"must be a number >= {minimum}", file=source, field=f"certificates.{key}")
        return float(value)

    def names(key: str) -> tuple[str, ...]:
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError("must be a list of domain names", file=source, field=f"certificates.{key}")
        for index, name in enumerate(value):
            if not _SCOPE_ENTRY.match(name):  # any other wildcard would be compared literally and match nothing
                raise ConfigError(f"entry {index + 1}, {name[:80]!r}, is neither a domain name nor *.suffix",
                                  file=source, field=f"certificates.{key}")
        return tuple(v.lower() for v in value)

    steps = data.get("alert_steps", list(DEFAULT_ALERT_STEPS))
    if not isinstance(steps, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                              for s in steps):
        raise ConfigError("must be a list of whole days", file=source, field="certificates.alert_steps")
    backups = data.get("backup_certificates") or {}
    if not isinstance(backups, dict) or not all(isinstance(k, str) and str(v).isdigit() for k, v in backups.items()):
        raise ConfigError("must map domain names to CAS certificate ids", file=source,
                          field="certificates.backup_certificates")
    fraction = number("renew_fraction", 1 / 3)
    if fraction > 1:
        raise ConfigError("must be between 0 and 1", file=source, field="certificates.renew_fraction")
    https_required = data.get("https_required", True)
    if not isinstance(https_required, bool):
        raise ConfigError("must be true or false", file=source, field="certificates.https_required")
    return CertPolicy(
        renew_before=dt.timedelta(days=number("renew_before_days", 30)),
        renew_fraction=fraction,
        alert_steps=tuple(sorted(set(steps), reverse=True)),
        propagation_grace=dt.timedelta(minutes=number("propagation_grace_minutes", 30)),
        min_rsa_bits=int(number("min_rsa_bits", 2048, 512)),
        min_ec_bits=int(number("min_ec_bits", 256, 160)),
        backup_cert_ids={k.lower(): int(v) for k, v in backups.items()},
        include_domains=names("include"),
        exclude_domains=names("exclude"),
        https_required=https_required,
        discovery_interval=dt.timedelta(hours=number("discovery_hours", 24, 0)),
    )


def cdn_policy_from_mapping(data: Any, *, source: str = "policy") -> CdnHttpsPolicy:
    """The ``certificates.cdn_https`` mapping → :class:`CdnHttpsPolicy` (absent keys are not managed)."""
    field = "certificates.cdn_https"
    if not data:
        return CdnHttpsPolicy()
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping", file=source, field=field)
    unknown = sorted(set(data) - {"https_force", "https_rewrite", "hsts", "tls_versions", "cipher_suite_group",
                                  "cipher_suites"})
    if unknown:
        raise ConfigError(f"unknown keys {', '.join(unknown)}", file=source, field=field)
    force = data.get("https_force")
    if force is not None and not isinstance(force, bool):
        raise ConfigError("must be true or false", file=source, field=f"{field}.https_force")
    rewrite = str(data.get("https_rewrite", "301"))
    if rewrite not in ("301", "308"):
        raise ConfigError("must be 301 or 308", file=source, field=f"{field}.https_rewrite")
    hsts = data.get("hsts")
    hsts_map = hsts if isinstance(hsts, dict) else {}
    if hsts is not None and not isinstance(hsts, (bool, dict)):
        raise ConfigError("must be true, false or a mapping", file=source, field=f"{field}.hsts")
    max_age = hsts_map.get("max_age", 5184000)
    if isinstance(max_age, bool) or not isinstance(max_age, int) or not 0 <= max_age <= 63072000:
        raise ConfigError("must be whole seconds between 0 and 63072000", file=source, field=f"{field}.hsts.max_age")
    versions = data.get("tls_versions")
    if versions is not None and (not isinstance(versions, list) or not set(versions) <= set(_VERSIONS)):
        raise ConfigError(f"must be a list of {', '.join(_VERSIONS)}", file=source, field=f"{field}.tls_versions")
    group = data.get("cipher_suite_group")
    if group is not None and group not in ("all", "strict", "custom"):
        raise ConfigError("must be all, strict or custom", file=source, field=f"{field}.cipher_suite_group")
    suites = data.get("cipher_suites") or []
    if not isinstance(suites, list) or not all(isinstance(x, str) and x for x in suites):
        raise ConfigError("must be a list of suite names", file=source, field=f"{field}.cipher_suites")
    if group == "custom" and not suites:
        raise ConfigError("cipher_suite_group custom needs cipher_suites", file=source, field=f"{field}.cipher_suites")
    return CdnHttpsPolicy(https_force=force, https_rewrite=rewrite,
                          hsts=(bool(hsts_map.get("enabled", True)) if isinstance(hsts, dict) else hsts),
                          hsts_max_age=int(max_age),
                          hsts_include_subdomains=bool(hsts_map.get("include_subdomains", False)),
                          tls_versions=tuple(versions) if versions is not None else None, cipher_suite_group=group,
                          cipher_suites=tuple(suites))
