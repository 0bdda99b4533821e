"""FC 3.0's HTTP API (2023-03-30) as alibabacloud-fc20230330 calls it: InvokeFunction, GetFunction, ListFunctions,
ListTriggers (https://www.alibabacloud.com/help/en/functioncompute/fc/developer-reference/api-fc-2023-03-30-listtriggers).

Every request is authenticated with the ACS3-HMAC-SHA256 signature (:mod:`localcloud.fc.signing`). Errors are
FC 3.0's JSON ``{"Code", "Message", "RequestId"}``
(https://help.aliyun.com/zh/functioncompute/fc/developer-reference/api-fc-2023-03-30-struct-error) with the
codes and statuses of https://www.alibabacloud.com/help/en/functioncompute/error-codes and
https://help.aliyun.com/zh/functioncompute/api-fc-2023-03-30-errorcodes. Every response carries
``x-fc-request-id``. Any other operation answers 501 NotImplemented.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from localcloud.errors import NotImplementedOperation, ServiceError
from localcloud.fc import signing
from localcloud.fc.backend import new_fc_request_id
from localcloud.http import Request, Response, Route
from localcloud.iam import TOKEN_EXPIRED, TOKEN_MISSING, TOKEN_OK

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud
    from localcloud.fc.runtime import FunctionSpec
    from localcloud.iam import Principal

API_PREFIX = "/2023-03-30"
#: Requests signed more than 15 minutes away from localcloud's clock are refused.
MAX_SKEW_SECONDS = 15 * 60
_INVOKE = re.compile(r"^/2023-03-30/functions/([^/]+)/invocations/?$")
_FUNCTION = re.compile(r"^/2023-03-30/functions/([^/]+)/?$")
_TRIGGERS = re.compile(r"^/2023-03-30/functions/([^/]+)/triggers/?$")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")



def _page_limit(request: Request) -> int:
    """The ``limit`` query parameter of the FC 3.0 list operations: 1 to 100, default 20."""
    try:
        limit = int(request.query.get("limit") or 20)
    except ValueError:
        raise ServiceError(400, "InvalidArgument", "limit must be an integer") from None
    if not 1 <= limit <= 100:
        raise ServiceError(400, "InvalidArgument", "limit must be between 1 and 100")
    return limit


def _json(payload: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


class FcService:
    """Routes FC 3.0 requests, authenticates them and renders results and errors as FC does."""

    name = "fc"

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud

    # -- Service protocol ----------------------------------------------------------------------------------
    def route(self, request: Request) -> Route:
        request.request_id = new_fc_request_id()
        path = request.path
        match = _INVOKE.match(path)
        if match and request.method == "POST":
            return Route("InvokeFunction", match.group(1), self._invoke)
        match = _FUNCTION.match(path)
        if match and request.method == "GET":
            return Route("GetFunction", match.group(1), self._get_function)
        match = _TRIGGERS.match(path)
        if match and request.method == "GET":
            return Route("ListTriggers", match.group(1), self._list_triggers)
        if path.rstrip("/") == f"{API_PREFIX}/functions" and request.method == "GET":
            return Route("ListFunctions", None, self._list_functions)
        raise NotImplementedOperation("fc", f"{request.method} {path}")

    def render_error(self, request: Request, error: ServiceError) -> Response:
        return _json({"Code": error.code, "Message": error.message, "RequestId": request.request_id}, error.status)

    def throttle_error(self) -> ServiceError:
        # FC answers 429 ResourceExhausted when a caller exceeds its limits.
        return ServiceError(429, "ResourceExhausted", "Rate exceeded: too many requests, please retry later")

    def decorate(self, request: Request, response: Response) -> None:
        response.headers.setdefault("x-fc-request-id", request.request_id)

    # -- authentication ------------------------------------------------------------------------------------
    def authenticate(self, request: Request) -> Principal:
        """Verify the ACS3-HMAC-SHA256 signature, the security token and the request time."""
        header = request.headers.get("authorization")
        if not header:
            raise ServiceError(400, "MissingRequiredHeader", "required HTTP header Authorization was not specified")
        try:
            authorization = signing.parse_authorization(header)
        except signing.AuthorizationFormatError as exc:
            raise ServiceError(400, "InvalidArgument", f"invalid Authorization header: {exc}") from None
        principal = self.cloud.iam.lookup(authorization.access_key_id)
        if principal is None:
            raise ServiceError(403, "InvalidAccessKeyID", f"invalid access key ID '{authorization.access_key_id}'")
        content_hash = request.headers.get("x-acs-content-sha256")
        if not content_hash:
            raise ServiceError(400, "MissingRequiredHeader",
                               "required HTTP header x-acs-content-sha256 was not specified")
        signed = set(authorization.signed_headers)
        unsigned = sorted(name for name, _ in request.headers.items()
                          if (name.startswith("x-acs-") or name == "host") and name not in signed)
        if unsigned:
            raise ServiceError(403, "SignatureNotMatch",
                               f"header(s) {', '.join(unsigned)} must be signed. The request signature we "
                               "calculated does not match the signature you provided. Check your access key "
                               "and signing method")
        if content_hash.lower() != signing.payload_hash(request.body):
            raise ServiceError(403, "SignatureNotMatch",
                               "x-acs-content-sha256 does not match the request body. The request signature we "
                               "calculated does not match the signature you provided. Check your access key and "
                               "signing method")
        headers = dict(request.headers.items())
        canonical = signing.canonical_request(request.method, request.raw_path.split("?", 1)[0],
                                              request.query_pairs, headers, authorization.signed_headers,
                                              content_hash.lower())
        if not signing.signature_matches(principal.access_key_secret, authorization.signature, canonical):
            raise ServiceError(403, "SignatureNotMatch",
                               "The request signature we calculated does not match the signature you provided. "
                               "Check your access key and signing method")
        now = self.cloud.clock.time()
        token_state = principal.check_token(request.headers.get("x-acs-security-token"), now)
        if token_state == TOKEN_MISSING:
            raise ServiceError(403, "InvalidSecurityToken.MissingToken",
                               "the security token is missing: STS credentials need x-acs-security-token")
        if token_state == TOKEN_EXPIRED:
            raise ServiceError(403, "InvalidSecurityToken.Expired", "the security token you provided has expired")
        if token_state != TOKEN_OK:
            raise ServiceError(403, "InvalidSecurityToken.MismatchWithAccessKey",
                               "the security token does not belong to the access key")
        self._check_time(request, now)
        request.principal = principal
        return principal

    def _authorize(self, principal: Principal, action: str) -> None:
        """A RAM identity no policy allows ``action`` gets 403 AccessDenied
        (https://www.alibabacloud.com/help/en/functioncompute/error-codes)."""
        if not self.cloud.iam.allows(principal, action):
            raise ServiceError(403, "AccessDenied", f"the caller is not authorized to perform {action}")

    @staticmethod
    def _check_time(request: Request, now: float) -> None:
        stamp = request.headers.get("x-acs-date")
        if not stamp:
            raise ServiceError(400, "MissingRequiredHeader", "required HTTP header x-acs-date was not specified")
        try:
            signed_at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            raise ServiceError(400, "InvalidArgument",
                               f"x-acs-date '{stamp}' is not an ISO 8601 UTC time (yyyy-MM-ddTHH:mm:ssZ)") from None
        if abs(now - signed_at) > MAX_SKEW_SECONDS:
            raise ServiceError(403, "RequestTimeTooSkewed",
                               f"the difference between the request time {stamp} and the server time "
                               f"{_iso(now)} is larger than 15 minutes")

    # -- operations ----------------------------------------------------------------------------------------
    def _invoke(self, request: Request) -> Response:
        principal = self.authenticate(request)
        self._authorize(principal, "fc:InvokeFunction")
        name = _INVOKE.match(request.path).group(1)  # type: ignore[union-attr]
        invocation_type = request.headers.get("x-fc-invocation-type") or "Sync"
        log_type = request.headers.get("x-fc-log-type") or "None"
        if log_type not in ("None", "Tail"):
            raise ServiceError(400, "InvalidArgument", f"invalid log type '{log_type}', expected None or Tail")
        invocation = self.cloud.fc.start_invocation(
            name, request.body, invocation_type=invocation_type, source="api",
            qualifier=request.query.get("qualifier") or "LATEST",
            async_task_id=request.headers.get("x-fc-async-task-id"),
            account_id=principal.account_id, request_id=request.request_id)
        headers = {"Content-Type": "application/octet-stream"}
        if invocation_type == "Async":
            if invocation.async_task_id:
                headers["x-fc-async-task-id"] = invocation.async_task_id
            return Response(202, b"", headers)
        if log_type == "Tail":
            headers["x-fc-log-result"] = base64.b64encode(self._log_text(invocation.id, invocation.log_tail)).decode()
        if invocation.status != "succeeded":
            headers["x-fc-error-type"] = "UnhandledInvocationError"
            headers["Content-Type"] = "application/json"
            return Response(200, json.dumps(invocation.error).encode(), headers)
        return Response(200, invocation.result or b"", headers)

    @staticmethod
    def _log_text(request_id: str, tail: bytes) -> bytes:
        text = f"FC Invoke Start RequestId: {request_id}\n".encode() + tail
        return (text + f"FC Invoke End RequestId: {request_id}\n".encode())[-4096:]

    def _get_function(self, request: Request) -> Response:
        principal = self.authenticate(request)
        self._authorize(principal, "fc:GetFunction")
        name = _FUNCTION.match(request.path).group(1)  # type: ignore[union-attr]
        return _json(self._function_json(self.cloud.fc.function(name, principal.account_id)))

    def _list_triggers(self, request: Request) -> Response:
        """The ``ListTriggersOutput`` of a function: ``{"triggers": [Trigger...], "nextToken"?}``; each trigger's
        ``triggerConfig`` is a JSON string, as FC returns it."""
        principal = self.authenticate(request)
        self._authorize(principal, "fc:ListTriggers")
        name = _TRIGGERS.match(request.path).group(1)  # type: ignore[union-attr]
        spec = self.cloud.fc.function(name, principal.account_id)
        prefix = request.query.get("prefix") or ""
        token = request.query.get("nextToken") or ""
        limit = _page_limit(request)
        found = sorted((t for t in self.cloud.fc.triggers(spec.name)
                        if t["triggerName"].startswith(prefix) and t["triggerName"] > token),
                       key=lambda t: str(t["triggerName"]))
        page = found[:limit]
        body: dict[str, Any] = {"triggers": [self._trigger_json(spec, t) for t in page]}
        if len(found) > limit:
            body["nextToken"] = page[-1]["triggerName"]
        return _json(body)

    @staticmethod
    def _trigger_json(spec: FunctionSpec, trigger: dict[str, Any]) -> dict[str, Any]:
        created = _iso(float(trigger.get("createdTime") or spec.created_at))
        name = str(trigger["triggerName"])
        return {
            "triggerName": name, "triggerType": trigger["triggerType"],
            "triggerId": hashlib.sha256(f"{spec.arn}/{name}".encode()).hexdigest()[:32],
            "triggerConfig": json.dumps(trigger.get("config") or {}), "description": trigger.get("description", ""),
            "qualifier": "LATEST", "status": "Success", "targetArn": spec.arn, "sourceArn": "",
            "invocationRole": "", "createdTime": created, "lastModifiedTime": created,
        }

    def _list_functions(self, request: Request) -> Response:
        principal = self.authenticate(request)
        self._authorize(principal, "fc:ListFunctions")
        prefix = request.query.get("prefix") or ""
        token = request.query.get("nextToken") or ""
        limit = _page_limit(request)
        names = [s for s in self.cloud.fc.functions(principal.account_id)
                 if s.name.startswith(prefix) and s.name > token]
        page = names[:limit]
        body: dict[str, Any] = {"functions": [self._function_json(s) for s in page]}
        if len(names) > limit:
            body["nextToken"] = page[-1].name
        return _json(body)

    @staticmethod
    def _function_json(spec: FunctionSpec) -> dict[str, Any]:
        """The FC 3.0 ``Function`` structure for what localcloud knows about a function."""
        return {
            "functionName": spec.name,
            "functionArn": spec.arn,
            "functionId": hashlib.sha256(spec.arn.encode()).hexdigest()[:32],
            "handler": spec.handler,
            "runtime": spec.runtime,
            "memorySize": spec.memory,
            "timeout": int(spec.timeout),
            "role": f"acs:ram::{spec.account_id}:role/{spec.role}" if spec.role else "",
            "environmentVariables": dict(spec.environment),
            "description": spec.description,
            "createdTime": _iso(spec.created_at),
            "lastModifiedTime": _iso(spec.created_at),
            "state": "Active",
            "internetAccess": True,
        }
