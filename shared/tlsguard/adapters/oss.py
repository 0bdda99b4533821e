"""OssPort over alibabacloud-oss-v2: SDK imported lazily, one client per region, SDK errors mapped to CloudError.

Every call goes through :meth:`AliyunOss._call`: the per-API token bucket, then the call, then tenacity retries
on transient errors. The SDK's own retryer is disabled (``retry_max_attempts = 1``) so only one layer retries.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tlsguard import settings
from tlsguard.errors import CloudError, ConfigError, InvalidRequest, NotFound, PermissionDenied, Transient
from tlsguard.log import register_secret
from tlsguard.policy.model import EncryptionAlgorithm, EncryptionPolicy, RawHttpsConfig
from tlsguard.ports import BucketRef
from tlsguard.ratelimit import RateLimiter
from tlsguard.retry import RetryPolicy, call_with_retries

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

T = TypeVar("T")
#: 404 codes that mean "this configuration is not set", not "the bucket is gone".
_ABSENT_CODES = {"NoSuchBucketPolicy", "NoSuchServerSideEncryptionRule", "NoSuchKey", "NoSuchHttpsConfig",
                 "NoSuchTagSet"}
_THROTTLE_CODES = {"Throttling", "SlowDown", "TooManyRequests", "RequestTimeout", "ServiceUnavailable",
                   "InternalError", "QpsLimitExceeded"}
_DENIED_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "SecurityTokenExpired",
                 "InvalidSecurityToken"}


@dataclass(frozen=True)
class OssConnection:
    """How to reach OSS: endpoint (None: the region's public endpoint), credentials, TLS trust."""

    region: str
    access_key_id: str = ""
    access_key_secret: str = field(default="", repr=False)
    security_token: str = field(default="", repr=False)
    endpoint: str | None = None
    ca_bundle: str | None = None
    account_id: str = ""
    use_default_chain: bool = False
    #: A renewing alibabacloud-credentials provider (a role, a profile): used for every call instead of the keys
    #: above, which are then its first snapshot (see :mod:`tlsguard.credentials`).
    credentials_provider: Any = field(default=None, repr=False, compare=False)
    #: localcloud only: bucket requests use ``https://<bucket>.oss-<region>.aliyuncs.com`` (as in production) but
    #: connect to this loopback address (the TLS plane); ``endpoint`` then serves only ListBuckets.
    tls_address: tuple[str, int] | None = None


def connection_from_endpoints(path: str | Path) -> OssConnection:
    """Read localcloud's endpoints JSON (keys: oss, region, access_key_id, access_key_secret, ca_bundle, tls_port)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read localcloud endpoints file: {exc}", file=str(path)) from exc
    return connection_from_endpoint_data(data, str(path))


def connection_from_endpoint_data(data: dict[str, Any], source: str = "endpoints") -> OssConnection:
    """An OssConnection for localcloud from its endpoints document."""
    missing = [k for k in ("oss", "region", "access_key_id", "access_key_secret") if not data.get(k)]
    if missing:
        raise ConfigError(f"endpoints file lacks {', '.join(missing)}", file=source)
    tls_port = data.get("tls_port")
    return OssConnection(region=data["region"], access_key_id=data["access_key_id"],
                         access_key_secret=data["access_key_secret"], endpoint=data["oss"],
                         ca_bundle=data.get("ca_bundle"), account_id=str(data.get("account_id", "")),
                         tls_address=(str(data.get("host") or "127.0.0.1"), int(tls_port)) if tls_port else None)


def connection_from_environment(region: str | None = None) -> OssConnection:
    """Real endpoints with credentials resolved now (:func:`tlsguard.credentials.resolve`: the
    ``ALIBABA_CLOUD_*`` keys, else the first configured source of the standard chain). No source: ConfigError, one
    line naming what was tried, before any call is made."""
    from tlsguard.credentials import resolve

    region = region or settings.env(settings.REGION, settings.DEFAULT_REGION) or settings.DEFAULT_REGION
    found = resolve()
    return OssConnection(region=region, access_key_id=found.access_key_id, access_key_secret=found.access_key_secret,
                         security_token=found.security_token, use_default_chain=found.provider is not None,
                         credentials_provider=found.provider)


def map_sdk_error(exc: BaseException, service: str, operation: str, resource: str) -> CloudError:
    """Translate an alibabacloud-oss-v2 exception into tlsguard's taxonomy.

    What the SDK refuses before sending anything (an invalid bucket name, a region that makes no host name, a
    missing parameter, an IDNA or NUL character) is :class:`InvalidRequest`: permanent, never retried.
    """
    from alibabacloud_oss_v2 import exceptions as oss_exceptions

    from tlsguard.adapters._transport import client_side_error

    inner: BaseException = exc
    if isinstance(exc, oss_exceptions.OperationError):
        inner = exc.unwrap() or exc
    refused = (oss_exceptions.BucketNameInvalidError, oss_exceptions.ObjectNameInvalidError,
               oss_exceptions.ParamInvalidError, oss_exceptions.ParamNullError, oss_exceptions.ParamNullOrEmptyError,
               oss_exceptions.ParamRequiredError, oss_exceptions.SerializationError,
               oss_exceptions.CredentialsEmptyError)
    cause = inner.unwrap() if isinstance(inner, oss_exceptions.RequestError) else inner
    if isinstance(inner, refused) or client_side_error(cause):
        return InvalidRequest(f"{type(inner).__name__}: {inner}", service=service, operation=operation,
                              code=type(inner).__name__, resource=resource)
    if isinstance(inner, oss_exceptions.ServiceError):
        status = int(inner.status_code or 0)
        code = str(inner.code or "")
        message = str(inner.message or code or "service error")
        kwargs: dict[str, Any] = {"service": service, "operation": operation, "code": code,
                                  "request_id": str(inner.request_id or ""), "status": status, "resource": resource}
        if status == 429 or status >= 500 or code in _THROTTLE_CODES:
            return Transient(message, **kwargs)
        if status == 403 or code in _DENIED_CODES:
            return PermissionDenied(message, **kwargs)
        if status == 404:
            return NotFound(message, **kwargs)
        return CloudError(message, **kwargs)
    # No parseable service answer: connection reset, timeout, truncated or malformed body. Retry-worthy.
    return Transient(f"{type(inner).__name__}: {inner}", service=service, operation=operation,
                     code=type(inner).__name__, resource=resource)


class AliyunOss:
    """The OSS adapter (implements :class:`tlsguard.ports.OssPort`)."""

    def __init__(self, connection: OssConnection, *, limiter: RateLimiter | None = None,
                 retry: RetryPolicy | None = None, max_connections: int = 32, list_page_size: int = 1000,
                 resume_tls_sessions: bool = False) -> None:
        self.connection = connection
        self.limiter = limiter or RateLimiter()
        self.retry = retry or RetryPolicy()
        self.max_connections = max_connections
        self.list_page_size = list_page_size
        self.resume_tls_sessions = resume_tls_sessions  # an evaluated variant, off by default (see _transport)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._http_client: Any = None
        register_secret(connection.access_key_secret)
        register_secret(connection.security_token)

    # -- wiring ------------------------------------------------------------------------------------------
    def _credentials_provider(self) -> Any:
        import alibabacloud_oss_v2 as oss

        conn = self.connection
        if not conn.use_default_chain:
            return oss.credentials.StaticCredentialsProvider(conn.access_key_id, conn.access_key_secret,
                                                             conn.security_token or None)
        source = conn.credentials_provider
        if source is None:  # a connection built by hand: resolved now, from the same configured sources
            from tlsguard.credentials import resolve

            found = resolve()
            if found.provider is None:
                return oss.credentials.StaticCredentialsProvider(found.access_key_id, found.access_key_secret,
                                                                 found.security_token or None)
            source = found.provider

        class RenewingProvider(oss.credentials.CredentialsProvider):  # type: ignore[misc]
            """A role's or profile's credentials, renewed by alibabacloud-credentials when they near expiry."""

            def get_credentials(self) -> Any:
                cred = source.get_credentials()
                secret, token = cred.get_access_key_secret(), cred.get_security_token()
                register_secret(secret)
                register_secret(token)
                return oss.credentials.Credentials(cred.get_access_key_id(), secret, token)

        return RenewingProvider()

    def _new_client(self, region: str, endpoint: str | None, path_style: bool, http_client: Any) -> Any:
        import alibabacloud_oss_v2 as oss

        cfg = oss.config.load_default()
        cfg.credentials_provider = self._credentials_provider()
        cfg.region = region
        if endpoint:
            cfg.endpoint = endpoint
            cfg.use_path_style = path_style
        cfg.retry_max_attempts = 1  # tenacity owns retrying
        cfg.http_client = http_client
        return oss.Client(cfg)

    def _shared_http_client(self) -> Any:
        """One urllib3-based transport for every bucket client (see ``_transport``: requests' per-call overhead
        was a third of the sweep's client CPU); localcloud's TLS plane is reached through pinned connections."""
        if self._http_client is None:
            from tlsguard.adapters._transport import urllib3_http_client

            conn = self.connection
            self._http_client = urllib3_http_client(max_connections=self.max_connections, ca_bundle=conn.ca_bundle,
                                                    pinned_address=conn.tls_address,
                                                    resume_tls_sessions=self.resume_tls_sessions)
        return self._http_client

    def client(self, region: str) -> Any:
        """The SDK client for bucket-scoped calls in ``region`` (built once, shared by every thread)."""
        region = region or self.connection.region
        existing = self._clients.get(region)  # lock-free once built: 32 threads take this path on every call
        if existing is not None:
            return existing
        with self._lock:
            existing = self._clients.get(region)
            if existing is None:
                conn = self.connection
                try:
                    if conn.tls_address is not None:
                        existing = self._new_client(region, f"https://oss-{region}.aliyuncs.com", False,
                                                    self._shared_http_client())
                    else:
                        existing = self._new_client(region, conn.endpoint, True, self._shared_http_client())
                except Exception as exc:  # a region no client can be built for (NUL, IDNA): the target's failure
                    raise map_sdk_error(exc, "oss", "NewClient", region) from exc
                self._clients[region] = existing
            return existing

    def service_client(self) -> Any:
        """The client for service-level calls (ListBuckets): localcloud's plain endpoint, or the regional one."""
        if self.connection.tls_address is None:
            return self.client(self.connection.region)
        with self._lock:
            existing = self._clients.get("")
            if existing is None:
                from alibabacloud_oss_v2 import transport

                existing = self._new_client(self.connection.region, self.connection.endpoint, True,
                                            transport.RequestsHttpClient(max_connections=4))
                self._clients[""] = existing
            return existing

    def _call(self, operation: str, resource: str, fn: Callable[[], T], *, retry: bool = True) -> T:
        """One API call through the rate limiter; ``retry=False`` for writes to the buckets tlsguard guards.

        A write whose response was lost must not be blindly repeated: the lifecycle re-reads the target first and
        writes again only if it still holds the before-state (see :mod:`tlsguard.lifecycle`).
        """
        def attempt() -> T:
            self.limiter.acquire(operation)
            try:
                return fn()
            except CloudError:
                raise
            except Exception as exc:
                raise map_sdk_error(exc, "oss", operation, resource) from exc

        return call_with_retries(self.retry, attempt) if retry else attempt()

    # -- OssPort -----------------------------------------------------------------------------------------
    def list_buckets(self, prefix: str = "") -> Iterator[BucketRef]:
        import alibabacloud_oss_v2 as oss

        client = self.service_client()
        marker = ""
        while True:
            request = oss.ListBucketsRequest(marker=marker or None, max_keys=self.list_page_size, prefix=prefix or None)
            page = self._call("ListBuckets", "", partial(client.list_buckets, request))
            for bucket in page.buckets or []:
                region = bucket.region or (bucket.location or "").removeprefix("oss-") or self.connection.region
                yield BucketRef(bucket.name, region)
            if not page.is_truncated or not page.next_marker:
                return
            marker = page.next_marker

    def get_bucket_tags(self, bucket: BucketRef) -> dict[str, str]:
        import alibabacloud_oss_v2 as oss

        client = self.client(bucket.region)
        try:
            result = self._call("GetBucketTags", bucket.name,
                                lambda: client.get_bucket_tags(oss.GetBucketTagsRequest(bucket=bucket.name)))
        except NotFound as exc:
            if exc.code in _ABSENT_CODES:
                return {}
            raise
        tag_set = result.tagging.tag_set if result.tagging else None
        return {t.key: t.value or "" for t in (tag_set.tags or [])} if tag_set else {}

    def get_https_config(self, bucket: BucketRef) -> RawHttpsConfig:
        import alibabacloud_oss_v2 as oss

        client = self.client(bucket.region)
        try:
            result = self._call("GetBucketHttpsConfig", bucket.name, lambda: client.get_bucket_https_config(
                oss.GetBucketHttpsConfigRequest(bucket=bucket.name)))
        except NotFound as exc:
            if exc.code in _ABSENT_CODES:
                return RawHttpsConfig()
            raise
        config = result.https_configuration
        tls = config.tls if config else None
        cipher = config.cipher_suite if config else None
        raw = RawHttpsConfig(tls_enabled=bool(tls and tls.enable), tls_versions=tuple(tls.tls_versions or ()) if tls
                             else ())
        if cipher is None:
            return raw
        return RawHttpsConfig(raw.tls_enabled, raw.tls_versions, True, bool(cipher.enable),
                              bool(cipher.strong_cipher_suite), tuple(cipher.custom_cipher_suites or ()),
                              tuple(cipher.tls13_custom_cipher_suites or ()))

    def put_https_config(self, bucket: BucketRef, config: RawHttpsConfig) -> None:
        import alibabacloud_oss_v2 as oss

        cipher = None
        if config.cipher_present:
            cipher = oss.CipherSuite(enable=config.cipher_enabled, strong_cipher_suite=config.strong,
                                     custom_cipher_suites=list(config.custom_tls12) or None,
                                     tls13_custom_cipher_suites=list(config.custom_tls13) or None)
        document = oss.HttpsConfiguration(
            tls=oss.TLS(enable=config.tls_enabled, tls_versions=list(config.tls_versions) or None),
            cipher_suite=cipher,
        )
        client = self.client(bucket.region)
        self._call("PutBucketHttpsConfig", bucket.name, lambda: client.put_bucket_https_config(
            oss.PutBucketHttpsConfigRequest(bucket=bucket.name, https_configuration=document)), retry=False)

    def get_policy(self, bucket: BucketRef) -> str | None:
        import alibabacloud_oss_v2 as oss

        client = self.client(bucket.region)

        def fetch() -> str | None:
            body = client.get_bucket_policy(oss.GetBucketPolicyRequest(bucket=bucket.name)).body
            if not body:
                return None
            try:
                json.loads(body)
            except ValueError as exc:
                # OSS validates policies on PUT, so a body that is not JSON is a damaged response: retry it.
                raise Transient(f"GetBucketPolicy returned a body that is not JSON: {exc}", service="oss",
                                operation="GetBucketPolicy", code="MalformedResponse", resource=bucket.name) from exc
            return str(body)

        try:
            return self._call("GetBucketPolicy", bucket.name, fetch)
        except NotFound as exc:
            if exc.code in _ABSENT_CODES:
                return None
            raise

    def put_policy(self, bucket: BucketRef, text: str) -> None:
        import alibabacloud_oss_v2 as oss

        client = self.client(bucket.region)
        self._call("PutBucketPolicy", bucket.name,
                   lambda: client.put_bucket_policy(oss.PutBucketPolicyRequest(bucket=bucket.name, body=text)),
                   retry=False)

    def delete_policy(self, bucket: BucketRef) -> None:
        import alibabacloud_oss_v2 as oss

        client = self.client(bucket.region)
        self._call("DeleteBucketPolicy", bucket.name,
                   lambda: client.delete_bucket_policy(oss.DeleteBucketPolicyRequest(bucket=bucket.name)),
                   retry=False)

    def get_encryption(self, bucket: BucketRef) -> EncryptionPolicy | None:
        import alibabacloud_oss_v2 as oss

        client = self.client(bucket.region)
        try:
            result = self._call("GetBucketEncryption", bucket.name, lambda: client.get_bucket_encryption(
                oss.GetBucketEncryptionRequest(bucket=bucket.name)))
        except NotFound as exc:
            if exc.code in _ABSENT_CODES:
                return None
            raise
        rule = result.server_side_encryption_rule
        default = rule.apply_server_side_encryption_by_default if rule else None
        if default is None or not default.sse_algorithm:
            return None
        try:
            algorithm = EncryptionAlgorithm(default.sse_algorithm)
        except ValueError:
            raise CloudError(f"unknown SSEAlgorithm {default.sse_algorithm!r}", service="oss",
                             operation="GetBucketEncryption", resource=bucket.name) from None
        return EncryptionPolicy(algorithm, default.kms_master_key_id or "", default.kms_data_encryption or "")

    def put_encryption(self, bucket: BucketRef, rule: EncryptionPolicy) -> None:
        import alibabacloud_oss_v2 as oss

        default = oss.ApplyServerSideEncryptionByDefault(
            sse_algorithm=rule.algorithm.value, kms_master_key_id=rule.kms_key_id or None,
            kms_data_encryption=rule.kms_data_encryption or None)
        client = self.client(bucket.region)
        self._call("PutBucketEncryption", bucket.name, lambda: client.put_bucket_encryption(
            oss.PutBucketEncryptionRequest(bucket=bucket.name, server_side_encryption_rule=oss.ServerSideEncryptionRule(
                apply_server_side_encryption_by_default=default))), retry=False)

    def put_object_if_absent(self, bucket: str, key: str, body: bytes) -> bool:
        import alibabacloud_oss_v2 as oss

        client = self.client(self.connection.region)
        try:
            self._call("PutObject", f"{bucket}/{key}", lambda: client.put_object(
                oss.PutObjectRequest(bucket=bucket, key=key, body=body, forbid_overwrite=True)))
        except CloudError as exc:
            if exc.status == 409 or exc.code == "FileAlreadyExists":
                return False
            raise
        return True

    def get_object(self, bucket: str, key: str, max_bytes: int | None = None) -> bytes | None:
        """GetObject; with ``max_bytes`` at most ``max_bytes + 1`` bytes are read, so an oversized object is
        recognisable by its length without being held in memory."""
        import alibabacloud_oss_v2 as oss

        client = self.client(self.connection.region)

        def fetch() -> bytes:
            result = client.get_object(oss.GetObjectRequest(bucket=bucket, key=key))
            with result.body as body:
                if max_bytes is None:
                    return bytes(body.read())
                chunks: list[bytes] = []
                size = 0
                for chunk in body.iter_bytes(block_size=64 * 1024):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > max_bytes:
                        break
                return b"".join(chunks)[: max_bytes + 1]

        try:
            return self._call("GetObject", f"{bucket}/{key}", fetch)
        except NotFound as exc:
            if exc.code in _ABSENT_CODES:
                return None
            raise

    def delete_object(self, bucket: str, key: str) -> None:
        """DeleteObject (state bucket markers only); deleting an absent object succeeds, as in OSS."""
        import alibabacloud_oss_v2 as oss

        client = self.client(self.connection.region)
        self._call("DeleteObject", f"{bucket}/{key}",
                   lambda: client.delete_object(oss.DeleteObjectRequest(bucket=bucket, key=key)))

    def list_objects(self, bucket: str, prefix: str, start_after: str = "") -> Iterator[str]:
        import alibabacloud_oss_v2 as oss

        client = self.client(self.connection.region)
        token: str | None = None
        while True:
            request = oss.ListObjectsV2Request(bucket=bucket, prefix=prefix, continuation_token=token, max_keys=1000,
                                               start_after=(start_after or None) if token is None else None)
            page = self._call("ListObjectsV2", bucket, partial(client.list_objects_v2, request))
            for item in page.contents or []:
                yield item.key
            if not page.is_truncated or not page.next_continuation_token:
                return
            token = page.next_continuation_token
