"""A thin RPC caller over aliyun-python-sdk-core's CommonRequest (CDN 2018-05-10, CAS 2020-04-07).

The SDK is imported lazily. Real calls use HTTPS against the product endpoint; against localcloud the domain is
``endpoints["cdn"]`` / ``endpoints["cas"]`` (``127.0.0.1:<port>``) and the protocol ``http``. SDK errors are
mapped into tlsguard's taxonomy; transient ones are retried with the shared retry policy.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlsguard.errors import CloudError, ConfigError, InvalidRequest, NotFound, PermissionDenied, Transient
from tlsguard.log import register_secret
from tlsguard.retry import RetryPolicy, call_with_retries

_THROTTLE_CODES = {"Throttling", "Throttling.User", "Throttling.Api", "ServiceUnavailable", "InternalError",
                   "QpsLimitExceeded"}
_DENIED_CODES = {"Forbidden.RAM", "Forbidden", "NoPermission", "InvalidAccessKeyId.NotFound",
                 "SignatureDoesNotMatch", "IncompleteSignature", "InvalidSecurityToken.Expired", "AccessDenied"}
#: aliyunsdkcore ClientException codes that mean the SDK refused the request itself (aliyunsdkcore
#: ``acs_exception/error_code.py``): no answer from the service is involved, so a retry fails the same way.
_CLIENT_REFUSALS = {"SDK.InvalidRegionId", "SDK.InvalidRequest", "SDK.InvalidParams", "SDK.InvalidParameter",
                    "SDK.NotSupport", "SDK.EndpointResolvingError", "SDK.InvalidCredential",
                    "SDK.MissingEndpointsFiler", "SDK.InvalidSessionExpiration"}
#: SDK.HttpError wraps any IOError of requests; these texts are the ones raised for a URL that cannot be built
#: (requests' InvalidURL and urllib3's LocationParseError), not for a network failure.
_UNBUILDABLE_URL = ("Invalid URL", "Failed to parse", "label empty or too long", "codec can't encode",
                    "embedded null")


@dataclass(frozen=True)
class RpcConnection:
    """Where an RPC product is reached and with which credentials.

    ``domain`` None means the product's public endpoint (``cdn.aliyuncs.com``, ``cas.aliyuncs.com``) over HTTPS.
    """

    region: str
    access_key_id: str = ""
    access_key_secret: str = field(default="", repr=False)
    security_token: str = field(default="", repr=False)
    domain: str | None = None
    protocol: str = "https"
    ca_bundle: str | None = None


def rpc_connection_from_endpoints(path: str | Path, service: str) -> RpcConnection:
    """localcloud's endpoints file → the connection for ``service`` ("cdn" or "cas"), plain HTTP on loopback."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read localcloud endpoints file: {exc}", file=str(path)) from exc
    missing = [k for k in (service, "region", "access_key_id", "access_key_secret") if not data.get(k)]
    if missing:
        raise ConfigError(f"endpoints file lacks {', '.join(missing)}", file=str(path))
    return RpcConnection(region=data["region"], access_key_id=data["access_key_id"],
                         access_key_secret=data["access_key_secret"], domain=str(data[service]), protocol="http")


def rpc_connection_from_environment(region: str) -> RpcConnection:
    """Real endpoints with the function's STS credentials (``ALIBABA_CLOUD_*`` variables FC injects)."""
    from tlsguard import settings

    ak = settings.env(settings.ALIBABA_ACCESS_KEY_ID) or ""
    sk = settings.env(settings.ALIBABA_ACCESS_KEY_SECRET) or ""
    if not (ak and sk):
        raise ConfigError(f"no credentials: set {settings.ALIBABA_ACCESS_KEY_ID} and "
                          f"{settings.ALIBABA_ACCESS_KEY_SECRET}")
    return RpcConnection(region=region, access_key_id=ak, access_key_secret=sk,
                         security_token=settings.env(settings.ALIBABA_SECURITY_TOKEN) or "")


class RpcCaller:
    """Calls one RPC product (``service``, ``version``) and returns the decoded JSON answer."""

    def __init__(self, connection: RpcConnection, *, service: str, version: str, public_domain: str,
                 retry: RetryPolicy | None = None) -> None:
        self.connection = connection
        self.service = service
        self.version = version
        self.domain = connection.domain or public_domain
        self.retry = retry or RetryPolicy()
        self._client: Any = None
        self._lock = threading.Lock()
        register_secret(connection.access_key_secret)
        register_secret(connection.security_token)

    def _acs_client(self) -> Any:
        with self._lock:
            if self._client is None:
                from aliyunsdkcore.auth.credentials import AccessKeyCredential, StsTokenCredential
                from aliyunsdkcore.client import AcsClient

                conn = self.connection
                credential = (StsTokenCredential(conn.access_key_id, conn.access_key_secret, conn.security_token)
                              if conn.security_token else
                              AccessKeyCredential(conn.access_key_id, conn.access_key_secret))
                self._client = AcsClient(credential=credential, region_id=conn.region, auto_retry=False,
                                         max_retry_time=0, verify=conn.ca_bundle or None)
            return self._client

    def call(self, action: str, params: dict[str, str | int | bool] | None = None, *, resource: str = "",
             method: str = "POST", retry: bool = True) -> dict[str, Any]:
        """One API call; raises :class:`CloudError` (``Transient`` ones are retried first, unless ``retry`` is
        False: a write whose response was lost is settled by the lifecycle, which re-reads before writing again)."""

        def attempt() -> dict[str, Any]:
            from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
            from aliyunsdkcore.request import CommonRequest

            request = CommonRequest()
            request.set_domain(self.domain)
            request.set_version(self.version)
            request.set_action_name(action)
            request.set_method(method)
            request.set_protocol_type(self.connection.protocol)
            request.set_accept_format("json")
            for key, value in (params or {}).items():
                request.add_query_param(key, _text(value))
            try:
                body = self._acs_client().do_action_with_exception(request)
            except ServerException as exc:
                raise _server_error(exc, self.service, action, resource) from exc
            except ClientException as exc:
                raise _client_error(exc, self.service, action, resource) from exc
            except (ValueError, TypeError) as exc:  # IDNA, NUL: the request could not even be built
                raise InvalidRequest(f"{type(exc).__name__}: {exc}", service=self.service, operation=action,
                                     code=type(exc).__name__, resource=resource) from exc
            try:
                decoded = json.loads(body)
            except ValueError as exc:
                raise Transient(f"undecodable answer: {body[:200]!r}", service=self.service, operation=action,
                                code="MalformedResponse", resource=resource) from exc
            if not isinstance(decoded, dict):
                raise CloudError("answer is not a JSON object", service=self.service, operation=action,
                                 resource=resource)
            return decoded

        return call_with_retries(self.retry, attempt) if retry else attempt()


def _text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _client_error(exc: Any, service: str, operation: str, resource: str) -> CloudError:
    """An aliyunsdkcore ClientException: the SDK's refusal of its own input is permanent, a network failure is not."""
    code = str(exc.get_error_code() or "")
    message = f"{code}: {exc.get_error_msg()}"
    kwargs: dict[str, Any] = {"service": service, "operation": operation, "code": code, "resource": resource}
    if code in _CLIENT_REFUSALS or (code == "SDK.HttpError" and any(text in message for text in _UNBUILDABLE_URL)):
        return InvalidRequest(message, **kwargs)
    return Transient(message, **kwargs)


def _server_error(exc: Any, service: str, operation: str, resource: str) -> CloudError:
    code = str(exc.get_error_code() or "")
    status = int(exc.get_http_status() or 0)
    kwargs: dict[str, Any] = {"service": service, "operation": operation, "code": code,
                              "request_id": str(exc.get_request_id() or ""), "status": status,
                              "resource": resource}
    message = str(exc.get_error_msg() or code)
    if status == 429 or status >= 500 or code in _THROTTLE_CODES or code.startswith("Throttling"):
        return Transient(message, **kwargs)
    if status == 403 or code in _DENIED_CODES:
        return PermissionDenied(message, **kwargs)
    if status == 404 or code.endswith("NotFound") or code.startswith("InvalidDomain.NotFound"):
        return NotFound(message, **kwargs)
    return CloudError(message, **kwargs)
