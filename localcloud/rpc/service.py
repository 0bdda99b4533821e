"""The shared RPC front end of CDN and CAS: parameters, signature, version, QPS, JSON responses and errors.

A product service subclasses :class:`RpcService`, declares its actions in :attr:`RpcService.actions` and
implements each as ``handler(call) -> dict``; errors are :class:`ServiceError` rendered as the gateway renders
them: ``{"RequestId", "HostId", "Code", "Message", "Recommend"}`` with the real HTTP status.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from localcloud.errors import ServiceError
from localcloud.http import Request, Response, Route
from localcloud.rpc.auth import NonceCache, verify

if TYPE_CHECKING:
    from collections.abc import Callable

    from localcloud.cloud import LocalCloud
    from localcloud.iam import Principal
    from localcloud.rpc.qps import QpsLimiter

#: The RAM code of each product's actions (``<code>:<Action>``), as the RAM action tables spell them: CDN
#: ``cdn``, CAS ``yundun-cert`` (shared/reference/alibaba-api-facts.md §10).
RAM_CODES = {"cdn": "cdn", "cas": "yundun-cert"}
#: Parameters every RPC call carries that are not the action's own (left out of ActionTrail's requestParameters).
COMMON_PARAMETERS = frozenset({
    "Signature", "SignatureMethod", "SignatureType", "SignatureVersion", "SignatureNonce", "Timestamp",
    "AccessKeyId", "SecurityToken", "Format", "Action",
})


def new_rpc_request_id() -> str:
    """RPC request ids are upper-case UUIDs (e.g. ``04F0F334-1335-436C-A1D7-6C044FE73368``)."""
    return str(uuid.uuid4()).upper()


@dataclass
class RpcCall:
    """One authenticated call as an action handler sees it."""

    request: Request
    action: str
    params: dict[str, str]
    principal: Principal
    request_id: str

    @property
    def account_id(self) -> str:
        return self.principal.account_id

    def get(self, name: str, default: str = "") -> str:
        return self.params.get(name, default)

    def require(self, name: str) -> str:
        """A mandatory parameter, or the gateway's ``Missing<Name>`` error."""
        value = self.params.get(name, "")
        if value == "":
            raise ServiceError(400, f"Missing{name}", f"{name} is mandatory for this action.")
        return value


@dataclass(frozen=True)
class Action:
    """An emulated action: its handler, whether it writes (ActionTrail), and the resource it names."""

    handler: Callable[[RpcCall], dict[str, Any]]
    write: bool = False
    resource_param: str | None = None


@dataclass
class RpcErrorInfo:
    """What a failed write records in ActionTrail."""

    code: str
    message: str
    extra: dict[str, str] = field(default_factory=dict)


def form_params(request: Request) -> list[tuple[str, str]]:
    """Form-encoded body parameters (the SDK sends POST bodies as application/x-www-form-urlencoded)."""
    if not request.body:
        return []
    content_type = (request.headers.get("content-type") or "").lower()
    if content_type and "x-www-form-urlencoded" not in content_type:
        return []
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise ServiceError(400, "InvalidParameter", "The request body is not UTF-8 form data.") from None
    return parse_qsl(text, keep_blank_values=True)


class RpcService:
    """Base class of an RPC product (CDN, CAS) on the HTTP frame."""

    name = "rpc"
    product = "Rpc"  # as in the Recommend link, e.g. "Cdn"
    host_id = "rpc.aliyuncs.com"
    version = ""
    #: The RAM code actions are authorized under; None for an API that needs no authorization (STS
    #: GetCallerIdentity); "" takes it from :data:`RAM_CODES`.
    ram_code: str | None = ""

    def __init__(self, cloud: LocalCloud, limiter: QpsLimiter, nonces: NonceCache) -> None:
        self.cloud = cloud
        self.limiter = limiter
        self.nonces = nonces
        self.actions: dict[str, Action] = self.build_actions()

    def build_actions(self) -> dict[str, Action]:
        raise NotImplementedError

    def record_write(self, call: RpcCall, action: Action, error: ServiceError | None) -> None:
        """Hook for products whose writes ActionTrail records (CDN)."""

    # -- Service protocol ----------------------------------------------------------------------------------
    def route(self, request: Request) -> Route:
        request.request_id = new_rpc_request_id()
        params = dict(request.query_pairs)
        params.update(form_params(request))
        action_name = params.get("Action", "")
        if not action_name:
            raise ServiceError(400, "MissingAction", "Action is mandatory for this action.")
        action = self.actions.get(action_name)
        if action is None:
            raise ServiceError(404, "InvalidApi.NotFound",
                               "Specified api is not found, please check your url and method. "
                               f"(localcloud does not emulate {self.name} action {action_name!r}; "
                               "see EMULATED_APIS.md)")
        resource = params.get(action.resource_param or "") if action.resource_param else None

        def serve(req: Request) -> Response:
            return self._serve(req, action_name, action, params)

        return Route(action_name, resource, serve)

    def render_error(self, request: Request, error: ServiceError) -> Response:
        body: dict[str, Any] = {
            "RequestId": request.request_id,
            "HostId": self.host_id,
            "Code": error.code,
            "Message": error.message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={error.code}&product={self.product}"
                         f"&requestId={request.request_id}",
        }
        body.update(error.extra)
        return _json_response(body, error.status)

    def throttle_error(self) -> ServiceError:
        return ServiceError(400, "Throttling.User", "Request was denied due to user flow control.")

    def decorate(self, request: Request, response: Response) -> None:
        response.headers.setdefault("x-acs-request-id", request.request_id)

    # -- serving -------------------------------------------------------------------------------------------
    def _serve(self, request: Request, action_name: str, action: Action, params: dict[str, str]) -> Response:
        principal = verify(request.method, params, self.cloud.iam, self.nonces, self.cloud.clock.time())
        request.principal = principal
        version = params.get("Version", "")
        if not version:
            raise ServiceError(400, "MissingVersion", "Version is mandatory for this action.")
        if version != self.version:
            raise ServiceError(400, "InvalidVersion", "Specified parameter Version is not valid.")
        call = RpcCall(request, action_name, params, principal, request.request_id)
        code = self.ram_code if self.ram_code != "" else RAM_CODES.get(self.name)
        if code and not self.cloud.iam.allows(principal, f"{code}:{action_name}"):
            # The gateway's answer to a RAM identity no policy allows the action
            # (https://help.aliyun.com/en/document_detail/434846.html).
            error = ServiceError(403, "Forbidden.RAM", "User not authorized to operate on the specified resource, "
                                 "or this API doesn't support RAM.")
            if action.write:
                self.record_write(call, action, error)
            raise error
        if not self.limiter.allow(principal.account_id, action_name):
            error = self.throttle_error()
            if action.write:
                self.record_write(call, action, error)
            raise error
        try:
            result = action.handler(call)
        except ServiceError as error:
            if action.write:
                self.record_write(call, action, error)
            raise
        if action.write:
            self.record_write(call, action, None)
        body = {"RequestId": request.request_id}
        body.update(result)
        return _json_response(body, 200)


def _json_response(body: dict[str, Any], status: int) -> Response:
    return Response(status, json.dumps(body, separators=(",", ":")).encode(),
                    {"Content-Type": "application/json;charset=utf-8"})
