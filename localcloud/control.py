"""The control API: reset, seed, read state, read events and deliveries, inject faults, move time.

Documented in EMULATED_APIS.md ("Control API"). It is unauthenticated and, like every localcloud port,
bound to loopback only. Bodies are JSON (``/seed`` also takes YAML).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import yaml

from localcloud.errors import ServiceError
from localcloud.http import Request, Response, Route

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud

Handler = Callable[[Request], Any]


def _json(payload: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(payload, indent=1, sort_keys=True, default=str).encode(),
                    {"Content-Type": "application/json"})


def _body(request: Request) -> dict[str, Any]:
    if not request.body:
        return {}
    try:
        value = json.loads(request.body)
    except json.JSONDecodeError as exc:
        raise ServiceError(400, "InvalidJSON", f"request body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ServiceError(400, "InvalidJSON", "request body must be a JSON object")
    return value


def _seconds(value: Any) -> float:
    """A finite number of seconds from a JSON body, or 400 InvalidArgument."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ServiceError(400, "InvalidArgument", f"seconds must be a number, got {value!r}") from None
    if not math.isfinite(seconds):
        raise ServiceError(400, "InvalidArgument", f"seconds must be finite, got {value!r}")
    return seconds


class ControlService:
    """Routes ``/<verb>`` paths to operations on the :class:`LocalCloud`."""

    name = "control"

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self._routes: dict[tuple[str, str], tuple[str, Handler]] = {
            ("POST", "/reset"): ("Reset", self._reset),
            ("POST", "/seed"): ("Seed", self._seed),
            ("GET", "/state"): ("GetState", lambda r: self.cloud.snapshot()),
            ("GET", "/endpoints"): ("GetEndpoints", lambda r: self.cloud.endpoints),
            ("GET", "/events"): ("ListEvents", self._events),
            ("GET", "/deliveries"): ("ListDeliveries", lambda r: self.cloud.events.deliveries()),
            ("GET", "/invocations"): ("ListInvocations", lambda r: self.cloud.fc.invocations()),
            ("GET", "/faults"): ("ListFaults", lambda r: [f.as_dict() for f in self.cloud.faults.rules()]),
            ("POST", "/faults"): ("AddFault", self._add_fault),
            ("DELETE", "/faults"): ("ClearFaults", self._clear_faults),
            ("GET", "/stats"): ("GetStats", lambda r: self.cloud.stats.snapshot()),
            ("POST", "/stats/reset"): ("ResetStats", self._reset_stats),
            ("POST", "/clock/advance"): ("AdvanceClock", self._advance_clock),
            ("GET", "/propagation"): ("GetPropagation", self._get_propagation),
            ("PUT", "/propagation"): ("SetPropagation", self._set_propagation),
            ("GET", "/qps"): ("GetQpsEnforcement", self._get_qps),
            ("PUT", "/qps"): ("SetQpsEnforcement", self._set_qps),
            ("POST", "/sts/assume-role"): ("AssumeRole", self._assume_role),
            ("POST", "/sts/expire"): ("ExpireCredential", self._expire),
            ("POST", "/timers/fire"): ("FireTimer", self._fire_timer),
            ("GET", "/dns/txt"): ("GetDnsTxt", self._get_dns_txt),
            ("PUT", "/dns/txt"): ("SetDnsTxt", self._set_dns_txt),
            ("GET", "/chat/messages"): ("ListChatMessages", self._chat_messages),
            ("DELETE", "/chat/messages"): ("ClearChatMessages", self._clear_chat_messages),
            ("GET", "/chat/robots"): ("ListChatRobots", lambda r: self.cloud.chat.robots(r.query.get("service"))),
            ("POST", "/chat/robots"): ("CreateChatRobot", self._create_chat_robot),
            ("GET", "/smtp/messages"): ("ListSmtpMessages", lambda r: self.cloud.smtp.messages()),
            ("DELETE", "/smtp/messages"): ("ClearSmtpMessages", self._clear_smtp_messages),
            ("GET", "/smtp/users"): ("ListSmtpUsers", lambda r: self.cloud.smtp.users()),
            ("POST", "/smtp/users"): ("CreateSmtpUser", self._create_smtp_user),
            ("GET", "/smtp/limits"): ("GetSmtpLimits", self._smtp_limits),
            ("PUT", "/smtp/limits"): ("SetSmtpLimits", self._set_smtp_limits),
        }

    # -- Service protocol ----------------------------------------------------------------------------------
    def route(self, request: Request) -> Route:
        path = request.path.rstrip("/") or "/"
        if request.method == "DELETE" and path.startswith("/faults/"):
            return Route("RemoveFault", path, self._remove_fault)
        entry = self._routes.get((request.method, path))
        if entry is None:
            raise ServiceError(404, "NotFound", f"no control operation {request.method} {path}")
        operation, handler = entry

        def serve(req: Request) -> Response:
            result = handler(req)
            return result if isinstance(result, Response) else _json(result)

        return Route(operation, None, serve)

    def render_error(self, request: Request, error: ServiceError) -> Response:
        return _json({"Code": error.code, "Message": error.message, "RequestId": request.request_id}, error.status)

    def throttle_error(self) -> ServiceError:
        return ServiceError(429, "Throttling", "control API throttled")

    def decorate(self, request: Request, response: Response) -> None:
        response.headers.setdefault("x-localcloud-request-id", request.request_id)

    # -- operations ----------------------------------------------------------------------------------------
    def _reset(self, request: Request) -> dict[str, Any]:
        self.cloud.reset()
        return {"reset": True}

    def _seed(self, request: Request) -> dict[str, Any]:
        from localcloud.seed import SeedError

        try:
            document = yaml.safe_load(request.body or b"{}")
        except yaml.YAMLError as exc:
            raise ServiceError(400, "InvalidSeed", f"seed is not YAML/JSON: {exc}") from None
        if not isinstance(document, dict):
            raise ServiceError(400, "InvalidSeed", "a seed is a mapping of sections")
        try:
            self.cloud.seed(document)
        except SeedError as exc:
            raise ServiceError(400, "InvalidSeed", str(exc)) from None
        return {"seeded": True, "account_id": self.cloud.default_account_id}

    def _events(self, request: Request) -> list[dict[str, Any]]:
        since = int(request.query.get("since", "0") or 0)
        return self.cloud.trail.events(since)

    def _add_fault(self, request: Request) -> dict[str, Any]:
        try:
            rule = self.cloud.faults.add_dict(_body(request))
        except (TypeError, ValueError) as exc:
            raise ServiceError(400, "InvalidFault", str(exc)) from None
        return rule.as_dict()

    def _clear_faults(self, request: Request) -> dict[str, Any]:
        self.cloud.faults.clear()
        return {"cleared": True}

    def _remove_fault(self, request: Request) -> Response:
        try:
            rule_id = int(request.path.rstrip("/").rsplit("/", 1)[1])
        except ValueError:
            raise ServiceError(400, "InvalidFault", "fault ids are integers") from None
        if not self.cloud.faults.remove(rule_id):
            raise ServiceError(404, "NoSuchFault", f"no fault {rule_id}")
        return _json({"removed": rule_id})

    def _reset_stats(self, request: Request) -> dict[str, Any]:
        self.cloud.stats.reset()
        return {"reset": True}

    def _advance_clock(self, request: Request) -> dict[str, Any]:
        seconds = _seconds(_body(request).get("seconds", 0))
        self.cloud.clock.advance(seconds)
        return {"offset": self.cloud.clock.offset}

    def _get_propagation(self, request: Request) -> dict[str, Any]:
        return {"seconds": self.cloud.tls.propagation_seconds}

    def _set_propagation(self, request: Request) -> dict[str, Any]:
        seconds = _seconds(_body(request).get("seconds"))
        if seconds < 0:
            raise ServiceError(400, "InvalidArgument", "propagation seconds cannot be negative")
        self.cloud.tls.propagation_seconds = seconds
        return {"seconds": seconds}

    def _get_qps(self, request: Request) -> dict[str, Any]:
        """Whether the RPC products (CDN, CAS) enforce their documented QPS limits (``Throttling.User``)."""
        return {"cdn": self.cloud.cdn.enforce_qps, "cas": self.cloud.cas.enforce_qps}

    def _set_qps(self, request: Request) -> dict[str, Any]:
        body = _body(request)
        unknown = set(body) - {"cdn", "cas"}
        if unknown or not all(isinstance(v, bool) for v in body.values()):
            raise ServiceError(400, "InvalidArgument", 'body is {"cdn": true|false, "cas": true|false}')
        if "cdn" in body:
            self.cloud.cdn.enforce_qps = body["cdn"]
        if "cas" in body:
            self.cloud.cas.enforce_qps = body["cas"]
        return self._get_qps(request)

    def _assume_role(self, request: Request) -> dict[str, Any]:
        body = _body(request)
        account = str(body.get("account_id") or self.cloud.default_account_id)
        principal = self.cloud.iam.assume_role(account, str(body.get("role", "tlsguard-fc-role")),
                                               str(body.get("session", "localcloud")), self.cloud.clock.time(),
                                               float(body.get("duration_seconds", 3600)))
        return {"AccessKeyId": principal.access_key_id, "AccessKeySecret": principal.access_key_secret,
                "SecurityToken": principal.security_token, "Expiration": principal.expires_at}

    def _expire(self, request: Request) -> dict[str, Any]:
        body = _body(request)
        key = str(body.get("access_key_id", ""))
        if self.cloud.iam.lookup(key) is None:
            raise ServiceError(404, "NoSuchKey", f"unknown access key {key!r}")
        self.cloud.iam.expire(key, self.cloud.clock.time() - 1)
        return {"expired": key}

    def _get_dns_txt(self, request: Request) -> dict[str, Any]:
        name = request.query.get("name", "")
        return {"name": name, "values": list(self.cloud.oss.dns_txt(name))}

    def _set_dns_txt(self, request: Request) -> dict[str, Any]:
        """Publish the TXT record ``name`` (``_dnsauth.<domain>`` proves domain ownership to OSS PutCname)."""
        body = _body(request)
        values = body.get("values", [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ServiceError(400, "InvalidArgument", "values must be a list of strings")
        try:
            self.cloud.oss.set_dns_txt(str(body.get("name", "")), values)
        except ValueError as exc:
            raise ServiceError(400, "InvalidArgument", str(exc)) from None
        return {"name": str(body.get("name", "")), "values": values}

    def _fire_timer(self, request: Request) -> dict[str, Any]:
        body = _body(request)
        result: dict[str, Any] = self.cloud.fc.fire_timer(str(body.get("function", "")),
                                                          str(body.get("trigger", "")))
        return result

    # -- alert sinks (chat robots, SMTP) -------------------------------------------------------------------
    def _chat_messages(self, request: Request) -> list[dict[str, Any]]:
        query = request.query
        return self.cloud.chat.messages(query.get("service") or None, query.get("robot") or None)

    def _clear_chat_messages(self, request: Request) -> dict[str, Any]:
        self.cloud.chat.clear_messages()
        return {"cleared": True}

    def _create_chat_robot(self, request: Request) -> dict[str, Any]:
        try:
            robot = self.cloud.chat.add_robot(_body(request))
        except ValueError as exc:
            raise ServiceError(400, "InvalidRobot", str(exc)) from None
        return robot.as_dict(self.cloud.chat.base_url(robot.service))

    def _clear_smtp_messages(self, request: Request) -> dict[str, Any]:
        self.cloud.smtp.clear_messages()
        return {"cleared": True}

    def _create_smtp_user(self, request: Request) -> dict[str, Any]:
        try:
            username = self.cloud.smtp.add_user(_body(request))
        except ValueError as exc:
            raise ServiceError(400, "InvalidMailbox", str(exc)) from None
        return {"username": username}

    def _smtp_limits(self, request: Request) -> dict[str, Any]:
        return {"max_message_size": self.cloud.smtp.max_message_size}

    def _set_smtp_limits(self, request: Request) -> dict[str, Any]:
        size = _body(request).get("max_message_size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ServiceError(400, "InvalidArgument", 'body is {"max_message_size": <positive integer bytes>}')
        self.cloud.smtp.max_message_size = size
        return self._smtp_limits(request)
