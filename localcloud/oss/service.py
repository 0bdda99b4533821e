"""OssService: the OSS REST wire format (routing, XML, errors) in front of :class:`OssBackend`.

Addressing: virtual-host (``Host: <bucket>.oss-<region>.aliyuncs.com``), path-style on an IP/localhost endpoint or
``oss-<region>.aliyuncs.com`` (``/<bucket>/<key>``), and bound CNAME domains. Every response carries
``x-oss-request-id``; errors are ``<Error><Code/><Message/><RequestId/><HostId/><EC/></Error>`` with ``x-oss-ec``.
A request whose ``scheme`` is ``https`` (the TLS plane feeds those in) counts as ``acs:SecureTransport`` true.
Operations and their doc URLs are listed in docs/emulated/oss.md.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import itertools
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from localcloud.errors import NotImplementedOperation, ServiceError
from localcloud.http import Request, Response, Route
from localcloud.oss.auth import OssAuthenticator
from localcloud.oss.backend import CertificateRequest, build_encryption, build_https_config
from localcloud.oss.errors import (
    bucket_not_yours,
    denied_by_policy,
    invalid_argument,
    malformed_xml,
    no_such_bucket,
    oss_error,
)
from localcloud.oss.model import Bucket, CnameToken, StoredObject
from localcloud.oss.policy import RequestContext, denies
from localcloud.trail import TrailCall

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud
    from localcloud.iam import Principal

_VHOST_RE = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9-]{1,61}[a-z0-9])\.oss-(?P<region>[a-z0-9-]+?)(?:-internal)?"
                       r"\.aliyuncs\.com$")
_ENDPOINT_RE = re.compile(r"^oss-(?P<region>[a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com$")
#: Query keys that do not select an operation (listing parameters, response overrides).
_ORDINARY_PARAMS = frozenset(["prefix", "marker", "max-keys", "delimiter", "encoding-type", "list-type",
                              "continuation-token", "start-after", "fetch-owner", "tag-key", "tag-value",
                              "resourceGroupId"])
#: Management writes ActionTrail records (object writes are data events and are not recorded).
TRAILED = frozenset(["PutBucketHttpsConfig", "PutBucketPolicy", "DeleteBucketPolicy", "PutBucketEncryption",
                     "DeleteBucketEncryption", "PutCname", "DeleteCname", "PutBucketTags", "DeleteBucketTags"])
#: RAM/policy action per operation.
ACTIONS = {
    "GetBucketInfo": "oss:GetBucketInfo", "GetBucketHttpsConfig": "oss:GetBucketHttpsConfig",
    "PutBucketHttpsConfig": "oss:PutBucketHttpsConfig", "ListCname": "oss:ListCname", "PutCname": "oss:PutCname",
    "DeleteCname": "oss:DeleteCname", "CreateCnameToken": "oss:CreateCnameToken",
    "GetCnameToken": "oss:GetCnameToken", "GetBucketPolicy": "oss:GetBucketPolicy",
    "PutBucketPolicy": "oss:PutBucketPolicy", "DeleteBucketPolicy": "oss:DeleteBucketPolicy",
    "GetBucketEncryption": "oss:GetBucketEncryption", "PutBucketEncryption": "oss:PutBucketEncryption",
    "DeleteBucketEncryption": "oss:DeleteBucketEncryption", "GetBucketTags": "oss:GetBucketTagging",
    "PutBucketTags": "oss:PutBucketTagging", "DeleteBucketTags": "oss:DeleteBucketTagging",
    "ListObjects": "oss:ListObjects", "ListObjectsV2": "oss:ListObjects", "PutObject": "oss:PutObject",
    "GetObject": "oss:GetObject", "HeadObject": "oss:GetObject", "DeleteObject": "oss:DeleteObject",
}
#: The bucket owner's own account may always manage the policy (so an HTTPS-only policy cannot lock it out).
_POLICY_OPS = frozenset(["GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"])
_XML_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'

BucketHandler = Callable[[Request, Bucket, "str | None", dict[str, Any]], Response]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _gmt(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, tz=timezone.utc), usegmt=True)


def _dt_gmt(value: datetime) -> str:
    return format_datetime(value.astimezone(timezone.utc), usegmt=True)


def _e(value: object) -> str:
    return escape(str(value))


def _xml(body: str, status: int = 200) -> Response:
    return Response(status, (_XML_HEADER + body).encode("utf-8"), {"Content-Type": "application/xml"})


def _no_content() -> Response:
    return Response(204, b"", {})


def _parse_xml(body: bytes, root_name: str) -> ET.Element:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise malformed_xml() from None
    if root.tag != root_name:
        raise malformed_xml()
    return root


def _text(element: ET.Element | None, name: str) -> str | None:
    if element is None:
        return None
    child = element.find(name)
    if child is None:
        return None
    return (child.text or "").strip()


def _bool(element: ET.Element | None, name: str, *, required: bool = False, default: bool = False) -> bool:
    value = _text(element, name)
    if value is None:
        if required:
            raise malformed_xml()
        return default
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise malformed_xml()
    return lowered == "true"


def _texts(element: ET.Element | None, name: str) -> list[str]:
    if element is None:
        return []
    return [(child.text or "").strip() for child in element.findall(name) if (child.text or "").strip()]


class OssService:
    """The OSS REST API on one loopback port."""

    name = "oss"

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self.backend = cloud.oss
        self.auth = OssAuthenticator(cloud.iam, cloud.clock.time)
        self._bucket_ops: dict[tuple[str, str], tuple[str, BucketHandler]] = {
            ("GET", "bucketInfo"): ("GetBucketInfo", self._get_bucket_info),
            ("GET", "httpsConfig"): ("GetBucketHttpsConfig", self._get_https),
            ("PUT", "httpsConfig"): ("PutBucketHttpsConfig", self._put_https),
            ("GET", "cname"): ("ListCname", self._list_cname),
            ("POST", "cname:add"): ("PutCname", self._put_cname),
            ("POST", "cname:delete"): ("DeleteCname", self._delete_cname),
            ("POST", "cname:token"): ("CreateCnameToken", self._create_cname_token),
            ("GET", "cname:token"): ("GetCnameToken", self._get_cname_token),
            ("GET", "policy"): ("GetBucketPolicy", self._get_policy),
            ("PUT", "policy"): ("PutBucketPolicy", self._put_policy),
            ("DELETE", "policy"): ("DeleteBucketPolicy", self._delete_policy),
            ("GET", "encryption"): ("GetBucketEncryption", self._get_encryption),
            ("PUT", "encryption"): ("PutBucketEncryption", self._put_encryption),
            ("DELETE", "encryption"): ("DeleteBucketEncryption", self._delete_encryption),
            ("GET", "tagging"): ("GetBucketTags", self._get_tags),
            ("PUT", "tagging"): ("PutBucketTags", self._put_tags),
            ("DELETE", "tagging"): ("DeleteBucketTags", self._delete_tags),
            ("GET", ""): ("ListObjects", self._list_objects),
        }
        self._object_ops: dict[str, tuple[str, BucketHandler]] = {
            "PUT": ("PutObject", self._put_object),
            "GET": ("GetObject", self._get_object),
            "HEAD": ("HeadObject", self._head_object),
            "DELETE": ("DeleteObject", self._delete_object),
        }

    # -- Service protocol --------------------------------------------------------------------------------------
    def route(self, request: Request) -> Route:
        bucket, key, host_region = self._address(request)
        if bucket is None:
            if request.method == "GET":
                return Route("ListBuckets", None, lambda r: self._serve_service(r, host_region))
            return self._unsupported(request, None, None, host_region, f"{request.method} /")
        subresources = [k for k, _ in request.query_pairs if k not in _ORDINARY_PARAMS
                        and not k.startswith("response-")]
        if key:
            if request.method == "PUT" and "x-oss-copy-source" in request.headers:
                return self._unsupported(request, bucket, key, host_region, "CopyObject")
            if subresources or request.method not in self._object_ops:
                name = f"{request.method} object ?{'&'.join(subresources)}"
                return self._unsupported(request, bucket, key, host_region, name)
            operation, handler = self._object_ops[request.method]
        else:
            sub = subresources[0] if subresources else ""
            if request.method == "POST" and (sub == "cname" or (sub == "comp" and "cname" in subresources)):
                sub = "cname:" + request.query.get("comp", "")
            elif (request.method == "GET" and request.query.get("comp") == "token"
                  and set(subresources) == {"comp", "cname"}):
                sub = "cname:token"  # GetCnameToken: GET /?comp=token&cname=<domain>
            entry = self._bucket_ops.get((request.method, sub))
            if entry is None or (sub in ("cname",) and "comp" in request.query):
                return self._unsupported(request, bucket, key, host_region,
                                         f"{request.method} bucket ?{'&'.join(subresources)}")
            operation, handler = entry
            if operation == "ListObjects" and request.query.get("list-type") == "2":
                operation = "ListObjectsV2"
        return Route(operation, bucket,
                     lambda r: self._serve_bucket(r, operation, handler, bucket, key, host_region))

    def render_error(self, request: Request, error: ServiceError) -> Response:
        extras = "".join(f"<{k}>{_e(v)}</{k}>" for k, v in error.extra.items())
        host = request.host.split(":")[0] or "localhost"
        ec = error.ec
        body = (f"<Error><Code>{_e(error.code)}</Code><Message>{_e(error.message)}</Message>"
                f"<RequestId>{request.request_id}</RequestId><HostId>{_e(host)}</HostId>{extras}"
                f"<EC>{_e(ec)}</EC>"
                + (f"<RecommendDoc>https://api.aliyun.com/troubleshoot?q={_e(ec)}</RecommendDoc>" if ec else "")
                + "</Error>")
        response = _xml(body, error.status)
        if ec:
            response.headers["x-oss-ec"] = ec
        return response

    def throttle_error(self) -> ServiceError:
        return oss_error(503, "SlowDown", "Please reduce your request rate.", "0001-00000503")

    def decorate(self, request: Request, response: Response) -> None:
        response.headers["x-oss-request-id"] = request.request_id
        response.headers.setdefault("Server", "AliyunOSS")
        response.headers.setdefault("Date", _gmt(self.cloud.clock.time()))

    # -- addressing --------------------------------------------------------------------------------------------
    def _address(self, request: Request) -> tuple[str | None, str | None, str | None]:
        """(bucket, object key, region named by the host) for path-style, virtual-host and CNAME requests."""
        hostname = request.host.rsplit(":", 1)[0] if request.host.count(":") == 1 else request.host
        hostname = hostname.strip("[]").rstrip(".")
        match = _VHOST_RE.match(hostname)
        if match:
            return match["bucket"], request.path[1:] or None, match["region"]
        endpoint = _ENDPOINT_RE.match(hostname)
        cname_bucket = None if endpoint else self.backend.bucket_for_cname(hostname)
        if cname_bucket is not None:
            return cname_bucket.name, request.path[1:] or None, cname_bucket.region
        path = request.path[1:]
        if not path:
            return None, None, endpoint["region"] if endpoint else None
        bucket, _, key = path.partition("/")
        return bucket, key or None, endpoint["region"] if endpoint else None

    def _unsupported(self, request: Request, bucket: str | None, key: str | None, host_region: str | None,
                     what: str) -> Route:
        def serve(req: Request) -> Response:
            existing = self.backend.get(bucket) if bucket else None
            req.principal = self.auth.authenticate(req, bucket, key, existing.region if existing else host_region)
            raise NotImplementedOperation("oss", what)

        return Route("NotImplemented", bucket, serve)

    # -- dispatch ----------------------------------------------------------------------------------------------
    def _serve_service(self, request: Request, host_region: str | None) -> Response:
        principal = self.auth.authenticate(request, None, None, host_region)
        request.principal = principal
        if not self.cloud.iam.allows(principal, "oss:ListBuckets"):
            # A RAM identity without the action: https://help.aliyun.com/en/oss/user-guide/0003-00000202
            raise oss_error(403, "AccessDenied", "You are not authorized to do this action.", "0003-00000202")
        return self._list_buckets(request, principal)

    def _serve_bucket(self, request: Request, operation: str, handler: BucketHandler, bucket_name: str,
                      key: str | None, host_region: str | None) -> Response:
        bucket = self.backend.get(bucket_name)
        principal = self.auth.authenticate(request, bucket_name, key,
                                           bucket.region if bucket is not None else host_region)
        request.principal = principal
        params: dict[str, Any] = {"BucketName": bucket_name}
        try:
            if bucket is None:
                raise no_such_bucket(bucket_name)
            if bucket.account_id != principal.account_id:
                raise bucket_not_yours(bucket_name)
            if not self.cloud.iam.allows(principal, ACTIONS.get(operation, f"oss:{operation}")):
                # A RAM identity no policy allows the action (implicit deny) gets 0003-00000202:
                # https://help.aliyun.com/en/oss/user-guide/0003-00000202
                raise bucket_not_yours(bucket_name)
            if host_region and host_region != bucket.region:
                # https://www.alibabacloud.com/help/ja/oss/support/http-status-code-403 (AccessDenied: wrong endpoint)
                raise oss_error(403, "AccessDenied", "The bucket you are attempting to access must be addressed "
                                "using the specified endpoint. Please send all future requests to this endpoint.",
                                Bucket=bucket.name, Endpoint=f"oss-{bucket.region}.aliyuncs.com")
            self._enforce_policy(request, principal, bucket, operation, key)
            response = handler(request, bucket, key, params)
        except ServiceError as error:
            if operation in TRAILED:
                self._trail(request, principal, operation, bucket_name,
                            bucket.region if bucket is not None else (host_region or self.cloud.region), params,
                            error)
            raise
        if operation in TRAILED:
            self._trail(request, principal, operation, bucket_name, bucket.region, params, None)
        return response

    def _enforce_policy(self, request: Request, principal: Principal, bucket: Bucket, operation: str,
                        key: str | None) -> None:
        if bucket.policy is None:
            return
        if operation in _POLICY_OPS and principal.account_id == bucket.account_id:
            return
        document = self.backend.policy_document(bucket)
        if document is None:
            return
        resource = f"acs:oss:*:{bucket.account_id}:{bucket.name}" + (f"/{key}" if key else "")
        context = RequestContext(action=ACTIONS.get(operation, f"oss:{operation}"), resource=resource,
                                 account_id=principal.account_id, owner_account_id=bucket.account_id,
                                 access_key_id=principal.access_key_id,
                                 secure_transport=request.scheme == "https", source_ip=request.client_ip,
                                 user_agent=request.user_agent)
        if denies(document, context):
            raise denied_by_policy()

    def _trail(self, request: Request, principal: Principal, operation: str, bucket: str, region: str,
               params: dict[str, Any], error: ServiceError | None) -> None:
        parameters = {"HostId": f"{bucket}.oss-{region}.aliyuncs.com", **params}
        self.cloud.trail.record(TrailCall(
            service="oss", event_name=operation, principal=principal, region=region,
            request_id=request.request_id, request_parameters=parameters, resource_type="ACS::OSS::Bucket",
            resource_names=(bucket,), source_ip=request.client_ip, user_agent=request.user_agent,
            event_source=f"{bucket}.oss-{region}.aliyuncs.com",
            error_code=error.code if error else None, error_message=error.message if error else None,
        ))

    # -- ListBuckets / GetBucketInfo ---------------------------------------------------------------------------
    def _list_buckets(self, request: Request, principal: Principal) -> Response:
        query = request.query
        prefix = query.get("prefix", "")
        marker = query.get("marker", "")
        max_keys = self._max_keys(query.get("max-keys"), default=100)
        tag_key = query.get("tag-key")
        tag_value = query.get("tag-value")
        selected: list[Bucket] = []
        truncated = False
        names = self.backend.sorted_names()
        # Names are sorted: start at the first one after the marker and inside the prefix, stop past the prefix.
        start = bisect.bisect_right(names, marker) if marker else 0
        if prefix:
            start = max(start, bisect.bisect_left(names, prefix))
        for name in itertools.islice(names, start, None):
            if prefix and not name.startswith(prefix):
                break
            bucket = self.backend.get(name)
            if bucket is None or bucket.account_id != principal.account_id:
                continue
            if tag_key is not None and (tag_key not in bucket.tags
                                        or (tag_value is not None and bucket.tags[tag_key] != tag_value)):
                continue
            if len(selected) == max_keys:
                truncated = True
                break
            selected.append(bucket)
        parts = ["<ListAllMyBucketsResult>"]
        if truncated:
            # Only a truncated listing carries the paging fields (facts §3).
            parts.append(f"<Prefix>{_e(prefix)}</Prefix><Marker>{_e(marker)}</Marker><MaxKeys>{max_keys}</MaxKeys>"
                         f"<IsTruncated>true</IsTruncated><NextMarker>{_e(selected[-1].name)}</NextMarker>")
        parts.append(f"<Owner><ID>{principal.account_id}</ID><DisplayName>{principal.account_id}</DisplayName>"
                     "</Owner><Buckets>")
        for b in selected:
            parts.append(f"<Bucket><CreationDate>{_iso(b.created_at)}</CreationDate>"
                         f"<ExtranetEndpoint>oss-{b.region}.aliyuncs.com</ExtranetEndpoint>"
                         f"<IntranetEndpoint>oss-{b.region}-internal.aliyuncs.com</IntranetEndpoint>"
                         f"<Location>{b.location}</Location><Name>{_e(b.name)}</Name><Region>{b.region}</Region>"
                         f"<StorageClass>{b.storage_class}</StorageClass>"
                         f"<ResourceGroupId>{b.resource_group_id}</ResourceGroupId></Bucket>")
        parts.append("</Buckets></ListAllMyBucketsResult>")
        return _xml("".join(parts))

    @staticmethod
    def _max_keys(value: str | None, default: int) -> int:
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            raise invalid_argument("max-keys must be an integer between 1 and 1000.", "max-keys", value) from None
        if not 1 <= number <= 1000:
            raise invalid_argument("max-keys must be an integer between 1 and 1000.", "max-keys", value)
        return number

    def _get_bucket_info(self, request: Request, bucket: Bucket, key: str | None, params: dict[str, Any]) -> Response:
        sse = bucket.encryption
        sse_xml = "<SSEAlgorithm>None</SSEAlgorithm>"
        if sse is not None:
            sse_xml = f"<SSEAlgorithm>{sse.algorithm}</SSEAlgorithm>"
            if sse.kms_key_id:
                sse_xml += f"<KMSMasterKeyID>{_e(sse.kms_key_id)}</KMSMasterKeyID>"
            if sse.kms_data_encryption:
                sse_xml += f"<KMSDataEncryption>{sse.kms_data_encryption}</KMSDataEncryption>"
        body = (f"<BucketInfo><Bucket><AccessMonitor>Disabled</AccessMonitor>"
                f"<CreationDate>{_iso(bucket.created_at)}</CreationDate>"
                f"<ExtranetEndpoint>oss-{bucket.region}.aliyuncs.com</ExtranetEndpoint>"
                f"<IntranetEndpoint>oss-{bucket.region}-internal.aliyuncs.com</IntranetEndpoint>"
                f"<Location>{bucket.location}</Location><StorageClass>{bucket.storage_class}</StorageClass>"
                f"<TransferAcceleration>Disabled</TransferAcceleration>"
                f"<CrossRegionReplication>Disabled</CrossRegionReplication>"
                f"<DataRedundancyType>LRS</DataRedundancyType><Name>{_e(bucket.name)}</Name>"
                f"<ResourceGroupId>{bucket.resource_group_id}</ResourceGroupId>"
                f"<Owner><DisplayName>{bucket.account_id}</DisplayName><ID>{bucket.account_id}</ID></Owner>"
                f"<AccessControlList><Grant>{bucket.acl}</Grant></AccessControlList>"
                f"<ServerSideEncryptionRule>{sse_xml}</ServerSideEncryptionRule>"
                f"<BucketPolicy><LogBucket></LogBucket><LogPrefix></LogPrefix></BucketPolicy>"
                f"<Comment></Comment><Versioning>Disabled</Versioning><BlockPublicAccess>false</BlockPublicAccess>"
                f"</Bucket></BucketInfo>")
        return _xml(body)

    # -- https config ------------------------------------------------------------------------------------------
    def _get_https(self, request: Request, bucket: Bucket, key: str | None, params: dict[str, Any]) -> Response:
        https = bucket.https
        parts = [f"<HttpsConfiguration><TLS><Enable>{str(https.tls_enabled).lower()}</Enable>"]
        parts.extend(f"<TLSVersion>{v}</TLSVersion>" for v in https.tls_versions)
        parts.append("</TLS>")
        if https.has_cipher_suite:
            parts.append(f"<CipherSuite><Enable>{str(https.cipher_enabled).lower()}</Enable>"
                         f"<StrongCipherSuite>{str(https.strong).lower()}</StrongCipherSuite>")
            parts.extend(f"<CustomCipherSuite>{s}</CustomCipherSuite>" for s in https.custom_tls12)
            parts.extend(f"<TLS13CustomCipherSuite>{s}</TLS13CustomCipherSuite>" for s in https.custom_tls13)
            parts.append("</CipherSuite>")
        parts.append("</HttpsConfiguration>")
        return _xml("".join(parts))

    def _put_https(self, request: Request, bucket: Bucket, key: str | None, params: dict[str, Any]) -> Response:
        root = _parse_xml(request.body, "HttpsConfiguration")
        tls = root.find("TLS")
        if tls is None:
            raise malformed_xml()
        enabled = _bool(tls, "Enable", required=True)
        versions = _texts(tls, "TLSVersion")
        cipher = root.find("CipherSuite")
        doc: dict[str, Any] = {"TLS": {"Enable": enabled, "TLSVersion": versions}}
        params["HttpsConfiguration"] = doc
        custom12 = _texts(cipher, "CustomCipherSuite")
        custom13 = _texts(cipher, "TLS13CustomCipherSuite")
        cipher_enabled = _bool(cipher, "Enable", required=cipher is not None)
        strong = _bool(cipher, "StrongCipherSuite")
        if cipher is not None:
            doc["CipherSuite"] = {"Enable": cipher_enabled, "StrongCipherSuite": strong,
                                  "CustomCipherSuite": custom12, "TLS13CustomCipherSuite": custom13}
        config = build_https_config(enabled, versions, has_cipher_suite=cipher is not None,
                                    cipher_enabled=cipher_enabled, strong=strong, custom_tls12=custom12,
                                    custom_tls13=custom13)
        self.backend.set_https(bucket, config)
        return Response(200, b"", {})

    # -- CNAME -------------------------------------------------------------------------------------------------
    def _list_cname(self, request: Request, bucket: Bucket, key: str | None, params: dict[str, Any]) -> Response:
        parts = [f"<ListCnameResult><Bucket>{_e(bucket.name)}</Bucket><Owner>{bucket.account_id}</Owner>"]
        for binding in sorted(bucket.cnames.values(), key=lambda c: c.domain):
            parts.append(f"<Cname><Domain>{_e(binding.domain)}</Domain>"
                         f"<LastModified>{_iso(binding.last_modified)}</LastModified>"
                         f"<Status>{binding.status}</Status>")
            cert = (self.cloud.cas.get(bucket.account_id, binding.cert_id)
                    if binding.cert_id is not None else None)
            if cert is not None:
                info = cert.info
                parts.append(f"<Certificate><Type>{binding.cert_type}</Type>"
                             f"<CertId>{_e(self.cloud.cas.oss_cert_id(cert))}</CertId>"
                             f"<Status>{binding.cert_status}</Status>"
                             f"<CreationDate>{_gmt(binding.cert_bound_at)}</CreationDate>"
                             f"<Fingerprint>{info.fingerprint_sha1}</Fingerprint>"
                             f"<ValidStartDate>{_dt_gmt(info.not_before)}</ValidStartDate>"
                             f"<ValidEndDate>{_dt_gmt(info.not_after)}</ValidEndDate></Certificate>")
            parts.append("</Cname>")
        parts.append("</ListCnameResult>")
        return _xml("".join(parts))

    def _cname_body(self, request: Request) -> tuple[str, ET.Element | None]:
        root = _parse_xml(request.body, "BucketCnameConfiguration")
        cname = root.find("Cname")
        domain = _text(cname, "Domain")
        if cname is None or not domain:
            raise malformed_xml()
        return domain, cname.find("CertificateConfiguration")

    def _put_cname(self, request: Request, bucket: Bucket, key: str | None, params: dict[str, Any]) -> Response:
        domain, cert_config = self._cname_body(request)
        params["Domain"] = domain
        cert_request = None
        if cert_config is not None:
            cert_request = CertificateRequest(
                cert_id=_text(cert_config, "CertId") or "",
                certificate=_text(cert_config, "Certificate") or "",
                private_key=_text(cert_config, "PrivateKey") or "",
                previous_cert_id=_text(cert_config, "PreviousCertId") or "",
                force=_bool(cert_config, "Force"),
                delete_certificate=_bool(cert_config, "DeleteCertificate"),
            )
            # Never the PEM or the key: ActionTrail would not carry secrets.
            params["CertificateConfiguration"] = {
                "CertId": cert_request.cert_id, "PreviousCertId": cert_request.previous_cert_id,
                "Force": cert_request.force, "DeleteCertificate": cert_request.delete_certificate,
                "Upload": bool(cert_request.certificate),
            }
        binding = self.backend.put_cname(bucket, domain, cert_request)
        if binding.cert_id is not None and cert_request is not None:
            cert = self.cloud.cas.get(bucket.account_id, binding.cert_id)
            if cert is not None:
                params["CertificateConfiguration"]["CertId"] = self.cloud.cas.oss_cert_id(cert)
        return Response(200, b"", {})

    def _delete_cname(self, request: Request, bucket: Bucket, key: str | None, params: dict[str, Any]) -> Response:
        domain, _ = self._cname_body(request)
        params["Domain"] = domain
        self.backend.delete_cname(bucket, domain)  # an unbound domain is a 200 too
        return Response(200, b"", {})

    @staticmethod
    def _cname_token_xml(token: CnameToken) -> Response:
        # https://help.aliyun.com/en/oss/developer-reference/createcnametoken (same body for GetCnameToken)
        return _xml(f"<CnameToken><Bucket>{_e(token.bucket)}</Bucket><Cname>{_e(token.domain)}</Cname>"
                    f"<Token>{token.token}</Token><ExpireTime>{_gmt(token.expires_at)}</ExpireTime></CnameToken>")

    def _create_cname_token(self, request: Request, bucket: Bucket, key: str | None,
                            params: dict[str, Any]) -> Response:
        domain, _ = self._cname_body(request)
        return self._cname_token_xml(self.backend.create_cname_token(bucket, domain))

    def _get_cname_token(self, request: Request, bucket: Bucket, key: str | None,
                         params: dict[str, Any]) -> Response:
        domain = request.query.get("cname", "")
        if not domain:
            raise invalid_argument("The cname parameter is required.", "cname", "")
        return self._cname_token_xml(self.backend.get_cname_token(bucket, domain))

    # -- policy ------------------------------------------------------------------------------------------------
    def _get_policy(self, request: Request, bucket: Bucket, key: str | None, params: dict[str, Any]) -> Response:
        if bucket.policy is None:
            # https://help.aliyun.com/en/oss/user-guide/0030-00000006
            raise oss_error(404, "NoSuchBucketPolicy", "The bucket policy does not exist.", "0030-00000006",
                            BucketName=bucket.name)
        return Response(200, bucket.policy.encode("utf-8"), {"Content-Type": "application/json"})

    def _put_policy(self, request: Request, bucket: Bucket, key: str | None, params: dict[str, Any]) -> Response:
        text = request.body.decode("utf-8", errors="replace")
        params["Policy"] = text
        self.backend.set_policy(bucket, text)
        return Response(200, b"", {})

    def _delete_policy(self, request: Request, bucket: Bucket, key: str | None,
                       params: dict[str, Any]) -> Response:
        self.backend.set_policy(bucket, None)
        return _no_content()

    # -- encryption --------------------------------------------------------------------------------------------
    def _get_encryption(self, request: Request, bucket: Bucket, key: str | None,
                        params: dict[str, Any]) -> Response:
        rule = bucket.encryption
        if rule is None:
            # https://help.aliyun.com/en/oss/user-guide/0005-00000004
            raise oss_error(404, "NoSuchServerSideEncryptionRule",
                            "The server side encryption configuration was not found.", "0005-00000004",
                            BucketName=bucket.name)
        inner = f"<SSEAlgorithm>{rule.algorithm}</SSEAlgorithm>"
        if rule.kms_data_encryption:
            inner += f"<KMSDataEncryption>{rule.kms_data_encryption}</KMSDataEncryption>"
        if rule.algorithm == "KMS":
            inner += f"<KMSMasterKeyID>{_e(rule.kms_key_id)}</KMSMasterKeyID>"
        return _xml(f"<ServerSideEncryptionRule><ApplyServerSideEncryptionByDefault>{inner}"
                    "</ApplyServerSideEncryptionByDefault></ServerSideEncryptionRule>")

    def _put_encryption(self, request: Request, bucket: Bucket, key: str | None,
                        params: dict[str, Any]) -> Response:
        root = _parse_xml(request.body, "ServerSideEncryptionRule")
        apply = root.find("ApplyServerSideEncryptionByDefault")
        algorithm = _text(apply, "SSEAlgorithm")
        if apply is None or not algorithm:
            raise malformed_xml()
        key_id = _text(apply, "KMSMasterKeyID") or ""
        data_encryption = _text(apply, "KMSDataEncryption") or ""
        params["ServerSideEncryptionRule"] = {"SSEAlgorithm": algorithm, "KMSMasterKeyID": key_id,
                                              "KMSDataEncryption": data_encryption}
        self.backend.set_encryption(bucket, build_encryption(algorithm, key_id, data_encryption))
        return Response(200, b"", {})

    def _delete_encryption(self, request: Request, bucket: Bucket, key: str | None,
                           params: dict[str, Any]) -> Response:
        self.backend.set_encryption(bucket, None)
        return _no_content()

    # -- tags --------------------------------------------------------------------------------------------------
    def _get_tags(self, request: Request, bucket: Bucket, key: str | None, params: dict[str, Any]) -> Response:
        tags = "".join(f"<Tag><Key>{_e(k)}</Key><Value>{_e(v)}</Value></Tag>" for k, v in bucket.tags.items())
        return _xml(f"<Tagging><TagSet>{tags}</TagSet></Tagging>")

    def _put_tags(self, request: Request, bucket: Bucket, key: str | None, params: dict[str, Any]) -> Response:
        root = _parse_xml(request.body, "Tagging")
        tag_set = root.find("TagSet")
        if tag_set is None:
            raise malformed_xml()
        tags: dict[str, str] = {}
        for tag in tag_set.findall("Tag"):
            tag_key = _text(tag, "Key")
            if not tag_key:
                raise malformed_xml()
            tags[tag_key] = _text(tag, "Value") or ""
        params["Tagging"] = dict(tags)
        self.backend.set_tags(bucket, tags)
        return Response(200, b"", {})

    def _delete_tags(self, request: Request, bucket: Bucket, key: str | None, params: dict[str, Any]) -> Response:
        only = request.query.get("tagging", "")
        keys = [k for k in only.split(",") if k]
        params["TagKeys"] = keys
        remaining = {k: v for k, v in bucket.tags.items() if keys and k not in keys}
        self.backend.set_tags(bucket, remaining)
        return _no_content()

    # -- objects -----------------------------------------------------------------------------------------------
    def _object_headers(self, stored: StoredObject) -> dict[str, str]:
        return {"Content-Type": stored.content_type, "ETag": stored.etag,
                "Last-Modified": _gmt(stored.last_modified), "x-oss-hash-crc64ecma": stored.crc64,
                "x-oss-object-type": "Normal", "x-oss-storage-class": "Standard",
                "Content-MD5": base64.b64encode(bytes.fromhex(stored.etag.strip('"'))).decode()}

    def _put_object(self, request: Request, bucket: Bucket, key: str | None, params: dict[str, Any]) -> Response:
        assert key is not None
        forbid_value = request.headers.get("x-oss-forbid-overwrite")
        if forbid_value is not None and forbid_value.lower() not in ("true", "false"):
            # https://help.aliyun.com/en/oss/user-guide/0017-00000279
            raise invalid_argument("x-oss-forbid-overwrite must be true or false.", "x-oss-forbid-overwrite",
                                   forbid_value, ec="0017-00000279")
        forbid = (forbid_value or "").lower() == "true"
        md5_header = request.headers.get("content-md5")
        if md5_header and base64.b64encode(hashlib.md5(request.body).digest()).decode() != md5_header:
            raise oss_error(400, "InvalidDigest", "The Content-MD5 you specified is not valid.", "0016-00000401")
        stored = StoredObject(key=key, body=request.body,
                              content_type=request.headers.get("content-type") or "application/octet-stream",
                              last_modified=self.cloud.clock.time())
        with self.backend.lock:
            if forbid and key in bucket.objects:
                # https://help.aliyun.com/en/oss/user-guide/0026-00000201
                raise oss_error(409, "FileAlreadyExists",
                                "The object you specified already exists and can not be overwritten.",
                                "0026-00000201")
            bucket.objects[key] = stored
        return Response(200, b"", {"ETag": stored.etag, "x-oss-hash-crc64ecma": stored.crc64,
                                   "Content-MD5": self._object_headers(stored)["Content-MD5"]})

    def _stored(self, bucket: Bucket, key: str | None) -> StoredObject:
        stored = bucket.objects.get(key or "")
        if stored is None:
            raise oss_error(404, "NoSuchKey", "The specified key does not exist.", "0026-00000001", Key=key or "")
        return stored

    def _get_object(self, request: Request, bucket: Bucket, key: str | None, params: dict[str, Any]) -> Response:
        stored = self._stored(bucket, key)
        return Response(200, stored.body, self._object_headers(stored))

    def _head_object(self, request: Request, bucket: Bucket, key: str | None, params: dict[str, Any]) -> Response:
        stored = self._stored(bucket, key)
        headers = self._object_headers(stored)
        headers["Content-Length"] = str(len(stored.body))
        return Response(200, stored.body, headers)

    def _delete_object(self, request: Request, bucket: Bucket, key: str | None,
                       params: dict[str, Any]) -> Response:
        with self.backend.lock:
            bucket.objects.pop(key or "", None)
        return _no_content()

    def _list_objects(self, request: Request, bucket: Bucket, key: str | None, params: dict[str, Any]) -> Response:
        query = request.query
        v2 = query.get("list-type") == "2"
        prefix = query.get("prefix", "")
        delimiter = query.get("delimiter", "")
        max_keys = self._max_keys(query.get("max-keys"), default=100)
        start = query.get("continuation-token", "") or query.get("start-after", "") if v2 else query.get("marker", "")
        url_encode = query.get("encoding-type") == "url"
        contents: list[StoredObject] = []
        prefixes: list[str] = []
        truncated = False
        last = ""
        for name in sorted(bucket.objects):
            if prefix and not name.startswith(prefix):
                continue
            if start and name <= start:
                continue
            if delimiter:
                rest = name[len(prefix):]
                cut = rest.find(delimiter)
                if cut >= 0:
                    common = prefix + rest[:cut + len(delimiter)]
                    if common in prefixes:
                        continue
                    if len(contents) + len(prefixes) == max_keys:
                        truncated = True
                        break
                    prefixes.append(common)
                    last = name
                    continue
            if len(contents) + len(prefixes) == max_keys:
                truncated = True
                break
            contents.append(bucket.objects[name])
            last = name

        def enc(value: str) -> str:
            if url_encode:
                from urllib.parse import quote

                return quote(value, safe="")
            return _e(value)

        root = "ListBucketResult"
        parts = [f"<{root}><Name>{_e(bucket.name)}</Name><Prefix>{enc(prefix)}</Prefix>"
                 f"<MaxKeys>{max_keys}</MaxKeys><Delimiter>{enc(delimiter)}</Delimiter>"
                 f"<IsTruncated>{str(truncated).lower()}</IsTruncated>"]
        if url_encode:
            parts.append("<EncodingType>url</EncodingType>")
        if v2:
            if query.get("continuation-token"):
                parts.append(f"<ContinuationToken>{_e(query['continuation-token'])}</ContinuationToken>")
            if query.get("start-after"):
                parts.append(f"<StartAfter>{enc(query['start-after'])}</StartAfter>")
            parts.append(f"<KeyCount>{len(contents) + len(prefixes)}</KeyCount>")
            if truncated:
                parts.append(f"<NextContinuationToken>{_e(last)}</NextContinuationToken>")
        else:
            parts.append(f"<Marker>{enc(query.get('marker', ''))}</Marker>")
            if truncated:
                parts.append(f"<NextMarker>{enc(last)}</NextMarker>")
        for stored in contents:
            parts.append(f"<Contents><Key>{enc(stored.key)}</Key>"
                         f"<LastModified>{_iso(stored.last_modified)}</LastModified><ETag>{_e(stored.etag)}</ETag>"
                         f"<Type>Normal</Type><Size>{len(stored.body)}</Size><StorageClass>Standard</StorageClass>"
                         f"<Owner><ID>{bucket.account_id}</ID><DisplayName>{bucket.account_id}</DisplayName>"
                         "</Owner></Contents>")
        for common in prefixes:
            parts.append(f"<CommonPrefixes><Prefix>{enc(common)}</Prefix></CommonPrefixes>")
        parts.append(f"</{root}>")
        return _xml("".join(parts))
