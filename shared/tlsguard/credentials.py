"""Where the CLI's Alibaba Cloud credentials come from: resolved once, before any call, or one clear line.

The sources are those of the standard chain (alibabacloud-credentials 1.0.12 ``provider/default.py``;
https://alibabacloud.com/help/en/sdk/developer-reference/v2-manage-python-access-credentials), in its order, but
only the ones that are configured are used, so nothing is guessed at:

1. ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` (and ``ALIBABA_CLOUD_SECURITY_TOKEN``);
2. an STS role through OIDC: ``ALIBABA_CLOUD_ROLE_ARN``, ``ALIBABA_CLOUD_OIDC_PROVIDER_ARN`` and
   ``ALIBABA_CLOUD_OIDC_TOKEN_FILE`` all set;
3. the aliyun CLI's profile ``~/.aliyun/config.json`` (``aliyun configure``; ``ALIBABA_CLOUD_PROFILE`` picks one);
4. the credentials file, ``ALIBABA_CLOUD_CREDENTIALS_FILE`` or ``~/.alibabacloud/credentials.ini``;
5. the ECS instance's RAM role, only when ``ALIBABA_CLOUD_ECS_METADATA`` names it. The SDK's chain would ask the
   metadata service (100.100.100.200) for the role name on any machine; outside ECS that is only a wait, so
   tlsguard never asks unless told it runs on ECS;
6. ``ALIBABA_CLOUD_CREDENTIALS_URI``.

On Function Compute the credentials come from the invocation context (:mod:`tlsguard.functions.runtime`), never
from here; against localcloud, from its endpoints file. Every secret found is registered for redaction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlsguard import settings
from tlsguard.errors import ConfigError
from tlsguard.log import get_logger, register_secret, route_sdk_loggers

#: The sources, as the error names them (keep it one line: it is what a person reads first).
TRIED = ("TLSGUARD_LOCALCLOUD/--localcloud, the environment (ALIBABA_CLOUD_ACCESS_KEY_ID and "
         "ALIBABA_CLOUD_ACCESS_KEY_SECRET, optionally ALIBABA_CLOUD_SECURITY_TOKEN), an STS role "
         "(ALIBABA_CLOUD_ROLE_ARN with ALIBABA_CLOUD_OIDC_PROVIDER_ARN and ALIBABA_CLOUD_OIDC_TOKEN_FILE; "
         "ALIBABA_CLOUD_ECS_METADATA naming the instance role on ECS), the aliyun CLI profile (~/.aliyun/config.json), "
         "the credentials file (ALIBABA_CLOUD_CREDENTIALS_FILE or ~/.alibabacloud/credentials.ini), "
         "ALIBABA_CLOUD_CREDENTIALS_URI, the Function Compute context (inside a function only)")
HOW = ("export ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, run `aliyun configure`, "
       "or pass --localcloud ENDPOINTS_FILE")

ROLE_ARN = "ALIBABA_CLOUD_ROLE_ARN"
OIDC_PROVIDER_ARN = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"
OIDC_TOKEN_FILE = "ALIBABA_CLOUD_OIDC_TOKEN_FILE"
CREDENTIALS_FILE = "ALIBABA_CLOUD_CREDENTIALS_FILE"
CLI_PROFILE_DISABLED = "ALIBABA_CLOUD_CLI_PROFILE_DISABLED"
ECS_METADATA = "ALIBABA_CLOUD_ECS_METADATA"
ECS_METADATA_DISABLED = "ALIBABA_CLOUD_ECS_METADATA_DISABLED"
CREDENTIALS_URI = "ALIBABA_CLOUD_CREDENTIALS_URI"

log = get_logger("tlsguard.credentials")


class NoCredentials(ConfigError):
    """No credential source is configured (or the one configured gives nothing): one line, what was tried, how."""


@dataclass(frozen=True)
class Resolved:
    """Credentials and where they came from. ``provider`` (an alibabacloud-credentials provider) is set for sources
    that renew themselves (roles, profiles); the keys are then the first snapshot."""

    source: str
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(default="", repr=False)
    provider: Any = field(default=None, repr=False, compare=False)


def _home() -> Path:
    return Path(os.environ.get("HOME") or os.path.expanduser("~"))


def _enabled(name: str) -> bool:
    return (settings.env(name) or "false").strip().lower() not in ("true", "1")


def _configured_sources() -> list[tuple[str, Any]]:
    """(name, factory) of each source beyond the environment's keys that is configured, in the chain's order.
    Only configuration is looked at here (variables, whether a file exists): nothing is read or asked yet."""
    sources: list[tuple[str, Any]] = []
    if settings.env(ROLE_ARN) and settings.env(OIDC_PROVIDER_ARN) and settings.env(OIDC_TOKEN_FILE):
        sources.append((f"the OIDC role in {ROLE_ARN}", lambda p: p.OIDCRoleArnCredentialsProvider()))
    cli_profile = _home() / ".aliyun" / "config.json"
    if _enabled(CLI_PROFILE_DISABLED) and cli_profile.is_file():
        sources.append((f"the aliyun CLI profile {cli_profile}",
                        lambda p: p.CLIProfileCredentialsProvider(profile_file=str(cli_profile))))
    credentials_file = Path(settings.env(CREDENTIALS_FILE) or _home() / ".alibabacloud" / "credentials.ini")
    if credentials_file.is_file():
        sources.append((f"the credentials file {credentials_file}",
                        lambda p: p.ProfileCredentialsProvider(profile_file=str(credentials_file))))
    role = settings.env(ECS_METADATA)
    if role and _enabled(ECS_METADATA_DISABLED):
        sources.append((f"the ECS instance role {role}", lambda p: p.EcsRamRoleCredentialsProvider(role_name=role)))
    if settings.env(CREDENTIALS_URI):
        sources.append((CREDENTIALS_URI, lambda p: p.URLCredentialsProvider()))
    return sources


def resolve() -> Resolved:
    """The first configured source's credentials; :class:`NoCredentials` (one line) when there are none, or a
    :class:`ConfigError` naming the source when the configured one fails (its reason redacted, on one line)."""
    key_id = settings.env(settings.ALIBABA_ACCESS_KEY_ID)
    secret = settings.env(settings.ALIBABA_ACCESS_KEY_SECRET)
    if key_id and secret:
        token = settings.env(settings.ALIBABA_SECURITY_TOKEN) or ""
        register_secret(secret)
        register_secret(token)
        return Resolved("the environment", key_id, secret, token)
    if key_id or secret:
        missing = settings.ALIBABA_ACCESS_KEY_SECRET if key_id else settings.ALIBABA_ACCESS_KEY_ID
        raise NoCredentials(f"incomplete Alibaba Cloud credentials in the environment: {missing} is not set")
    sources = _configured_sources()
    if not sources:
        raise NoCredentials(f"no Alibaba Cloud credentials found; tried: {TRIED}. To configure one: {HOW}")
    name, factory = sources[0]
    try:
        from alibabacloud_credentials import provider as providers  # type: ignore[import-untyped]

        route_sdk_loggers()  # its providers attach a stderr handler when imported
        provider = factory(providers)
        found = provider.get_credentials()
        resolved = Resolved(name, str(found.get_access_key_id() or ""), str(found.get_access_key_secret() or ""),
                            str(found.get_security_token() or ""), provider)
    except Exception as exc:  # the SDK's exceptions carry its whole chain of causes: one line of it is enough
        log.debug("credential source failed", exc_info=True, extra={"source": name})
        reason = " ".join(str(exc).split())[:300]
        raise NoCredentials(f"Alibaba Cloud credentials from {name} could not be loaded: {reason}. "
                            f"To configure another source: {HOW}") from None
    register_secret(resolved.access_key_secret)
    register_secret(resolved.security_token)
    if not resolved.access_key_id or not resolved.access_key_secret:
        raise NoCredentials(f"{name} gave no AccessKey pair. To configure another source: {HOW}")
    return resolved
