"""Per-invocation wiring: the role's credentials, the policy, the ports (reused while warm), and FC 3.0 fan-out.

Credentials come from ``context.credentials`` (python3.10) or the ``ALIBABA_CLOUD_*`` variables (python3.12,
which dropped ``context.credentials``; https://www.alibabacloud.com/help/en/functioncompute/fc-3-0/user-guide/context-1)
and are wired explicitly into every SDK client: neither SDK reads those variable names by itself. They are read
on every invocation; the SDK clients are reused on a warm instance only while they are unchanged.

With ``TLSGUARD_LOCALCLOUD`` set (localcloud only), endpoints come from localcloud's endpoints file while the
credentials are still the function role's STS keys, exactly as in the cloud.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlsguard import settings
from tlsguard.errors import ConfigError, Transient

if TYPE_CHECKING:
    from tlsguard.adapters.oss import OssConnection
    from tlsguard.model import Mode
    from tlsguard.policy.model import Policy
    from tlsguard.wiring import Wiring

#: Defaults for the settings the function set adds (names in tlsguard.settings).
DEFAULT_FANOUT_THRESHOLD = 200
DEFAULT_BATCH_SIZE = 50
DEFAULT_CHECK_FUNCTION = "tlsguard-check"
DEFAULT_REPLAY_WINDOW = 300.0
#: How long a policy read from the state bucket is reused on a warm instance.
POLICY_TTL_SECONDS = 60.0


@dataclass(frozen=True)
class RoleCredentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(default="", repr=False)


def credentials_from(context: Any) -> RoleCredentials:
    """The function role's STS keys: ``context.credentials`` first (python3.10), then ``ALIBABA_CLOUD_*``."""
    from tlsguard.log import register_secret

    creds = getattr(context, "credentials", None)
    ak = str(getattr(creds, "access_key_id", "") or "") if creds is not None else ""
    if ak:
        found = RoleCredentials(ak, str(getattr(creds, "access_key_secret", "") or ""),
                                str(getattr(creds, "security_token", "") or ""))
    else:
        found = RoleCredentials(settings.env(settings.ALIBABA_ACCESS_KEY_ID) or "",
                                settings.env(settings.ALIBABA_ACCESS_KEY_SECRET) or "",
                                settings.env(settings.ALIBABA_SECURITY_TOKEN) or "")
    if not found.access_key_id or not found.access_key_secret:
        raise ConfigError("no role credentials: the function needs a role (context.credentials on python3.10, "
                          f"{settings.ALIBABA_ACCESS_KEY_ID}/{settings.ALIBABA_ACCESS_KEY_SECRET} on python3.12)")
    register_secret(found.access_key_secret)
    register_secret(found.security_token)
    return found


_endpoints_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def localcloud_endpoints() -> dict[str, Any] | None:
    """localcloud's endpoints document when ``TLSGUARD_LOCALCLOUD`` names one (cached by modification time)."""
    path = settings.env(settings.LOCALCLOUD)
    if not path:
        return None
    try:
        mtime = Path(path).stat().st_mtime
        cached = _endpoints_cache.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read localcloud endpoints file: {exc}", file=path) from exc
    if not isinstance(data, dict) or not data.get("oss"):
        raise ConfigError("endpoints file lacks oss", file=path)
    _endpoints_cache[path] = (mtime, data)
    return data


def region_of(context: Any) -> str:
    return str(getattr(context, "region", "") or settings.env(settings.REGION) or settings.DEFAULT_REGION)


def account_of(context: Any) -> str:
    return str(getattr(context, "account_id", "") or "")


def oss_connection(context: Any, creds: RoleCredentials) -> OssConnection:
    """OSS reached with the role's keys: localcloud (over HTTPS through its TLS plane, as the CLI does) when
    configured, else the region's public endpoint."""
    import dataclasses

    from tlsguard.adapters.oss import OssConnection, connection_from_endpoint_data

    endpoints = localcloud_endpoints()
    if endpoints is not None:
        base = connection_from_endpoint_data(endpoints, source=settings.env(settings.LOCALCLOUD) or "endpoints")
        return dataclasses.replace(base, access_key_id=creds.access_key_id,
                                   access_key_secret=creds.access_key_secret, security_token=creds.security_token,
                                   account_id=account_of(context) or base.account_id)
    return OssConnection(region=region_of(context), access_key_id=creds.access_key_id,
                         access_key_secret=creds.access_key_secret, security_token=creds.security_token,
                         account_id=account_of(context))


# -- policy ------------------------------------------------------------------------------------------------------
_policy_lock = threading.Lock()
_policy_cache: dict[str, tuple[float, Policy]] = {}


def policy_source() -> str:
    """``TLSGUARD_POLICY``: a path (relative to the function's code directory) or ``oss://<bucket>/<key>``."""
    source = settings.env(settings.POLICY)
    if not source:
        raise ConfigError(f"{settings.POLICY} is not set: name the policy file packaged with the function "
                          "(e.g. tlsguard.yaml) or oss://<state-bucket>/<key>")
    return source


def load_policy_for(connection: OssConnection) -> Policy:
    """The policy, cached on a warm instance: a packaged file by modification time, an OSS object for 60 s."""
    from tlsguard.policy.loader import load_policy, parse_policy_bytes

    source = policy_source()
    now = time.monotonic()
    with _policy_lock:
        if source.startswith("oss://"):
            cached = _policy_cache.get(source)
            if cached is not None and now - cached[0] < POLICY_TTL_SECONDS:
                return cached[1]
            bucket, _, key = source[len("oss://"):].partition("/")
            if not bucket or not key:
                raise ConfigError(f"{settings.POLICY}={source!r}: expected oss://<bucket>/<key>")
            from tlsguard.adapters.oss import AliyunOss
            from tlsguard.policy.loader import MAX_POLICY_BYTES

            body = AliyunOss(connection).get_object(bucket, key, max_bytes=MAX_POLICY_BYTES)
            if body is None:
                raise ConfigError(f"policy object {source} does not exist")
            policy = parse_policy_bytes(body, file=source)  # size and encoding checked, never a traceback
            _policy_cache[source] = (now, policy)
            return policy
        path = Path(source)
        if not path.is_absolute() and not path.exists():
            path = Path.cwd() / source
        try:
            stamp = path.stat().st_mtime
        except OSError as exc:
            raise ConfigError(f"cannot read the policy file: {exc}", file=str(path)) from exc
        cached = _policy_cache.get(str(path))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        policy = load_policy(path)
        _policy_cache[str(path)] = (stamp, policy)
        return policy


# -- wiring ----------------------------------------------------------------------------------------------------
_wiring_lock = threading.Lock()
_wiring_cache: dict[tuple[Any, ...], Wiring] = {}


def wire(context: Any, *, concurrency: int | None = None) -> Wiring:
    """This invocation's wiring, around SDK clients reused on a warm instance while credentials and policy hold.

    One live set of clients per instance: expired credentials are never reused.
    """
    from tlsguard.wiring import build

    creds = credentials_from(context)
    connection = oss_connection(context, creds)
    policy = load_policy_for(connection)
    workers = concurrency or int_setting(settings.CONCURRENCY, settings.DEFAULT_CONCURRENCY)
    key = (connection, id(policy), workers)
    with _wiring_lock:
        wiring = _wiring_cache.get(key)
        if wiring is None:
            wiring = build(policy, localcloud=localcloud_endpoints(), connection=connection, concurrency=workers)
            _wiring_cache.clear()
            _wiring_cache[key] = wiring
    return wiring


def mode_override() -> Mode | None:
    from tlsguard.model import Mode

    text = settings.env(settings.MODE)
    try:
        return Mode(text) if text else None
    except ValueError:
        raise ConfigError(f"{settings.MODE}={text!r} is not one of enforce, alert, dry-run") from None


def int_setting(name: str, default: int) -> int:
    return settings.integer(name, default)


# -- fan-out -----------------------------------------------------------------------------------------------------
class FcInvoker:
    """FC 3.0 InvokeFunction (alibabacloud-fc20230330), Async, with the role's keys; one client per invocation."""

    def __init__(self, context: Any, creds: RoleCredentials) -> None:
        from alibabacloud_fc20230330.client import Client
        from alibabacloud_tea_openapi.models import Config

        from tlsguard.log import route_sdk_loggers

        route_sdk_loggers()  # Tea and alibabacloud-credentials attach stderr handlers when first imported
        endpoints = localcloud_endpoints()
        override = settings.env(settings.FC_ENDPOINT)
        protocol = "https"
        if endpoints is not None and endpoints.get("fc"):
            endpoint = str(endpoints["fc"])
        elif override:
            endpoint = override
        else:
            endpoint = f"{account_of(context)}.{region_of(context)}.fc.aliyuncs.com"
        if endpoint.startswith("http://"):
            protocol, endpoint = "http", endpoint[len("http://"):]
        elif endpoint.startswith("https://"):
            endpoint = endpoint[len("https://"):]
        self.client = Client(Config(access_key_id=creds.access_key_id, access_key_secret=creds.access_key_secret,
                                    security_token=creds.security_token or None, endpoint=endpoint,
                                    protocol=protocol, region_id=region_of(context), read_timeout=10000,
                                    connect_timeout=5000))

    def invoke_async(self, function_name: str, payload: bytes) -> str:
        """Queue one Async invocation; returns FC's request id. Errors map to tlsguard's taxonomy."""
        import io

        from alibabacloud_fc20230330 import models
        from alibabacloud_tea_util.models import RuntimeOptions

        from tlsguard.adapters._transport import client_side_error
        from tlsguard.errors import CloudError, InvalidRequest, PermissionDenied

        try:
            response = self.client.invoke_function_with_options(
                function_name, models.InvokeFunctionRequest(body=io.BytesIO(payload)),
                models.InvokeFunctionHeaders(x_fc_invocation_type="Async"), RuntimeOptions())
        except Exception as exc:
            if client_side_error(exc):  # the SDK refused its own input (an endpoint or name it cannot use)
                raise InvalidRequest(f"{type(exc).__name__}: {exc}", service="fc", operation="InvokeFunction",
                                     code=type(exc).__name__, resource=function_name) from exc
            status = int(getattr(exc, "statusCode", 0) or 0)
            code = str(getattr(exc, "code", "") or type(exc).__name__)
            message = str(getattr(exc, "message", "") or exc)
            kwargs: dict[str, Any] = {"service": "fc", "operation": "InvokeFunction", "code": code,
                                      "status": status, "resource": function_name}
            if status in (401, 403):
                raise PermissionDenied(message, **kwargs) from exc
            if status and status < 500 and status != 429:
                raise CloudError(message, **kwargs) from exc
            raise Transient(message, **kwargs) from exc
        headers = response.headers or {}
        return str(headers.get("x-fc-request-id", ""))
