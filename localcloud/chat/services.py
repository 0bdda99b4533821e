"""The four chat webhooks on one loopback port, each a :class:`~localcloud.http.Service` in its own wire format.

:class:`ChatFrame` routes a request by path to the product's own :class:`~localcloud.http.Frame`, so fault rules
and call statistics name the product (``service`` ``dingtalk`` | ``wecom`` | ``lark`` | ``slack``, operation
``Send``, resource the robot's name). Every check, its order and its answer are in ``docs/emulated/chat.md``.
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from localcloud.chat.backend import (
    BASE_PATHS,
    DINGTALK_MAX_BODY_BYTES,
    DINGTALK_TIMESTAMP_WINDOW_MS,
    LARK_MAX_BODY_BYTES,
    LARK_TIMESTAMP_WINDOW_SECONDS,
    SLACK_MAX_BLOCKS,
    SLACK_MAX_SECTION_TEXT,
    SLACK_TEXT_TRUNCATE,
    WECOM_MARKDOWN_MAX_BYTES,
    WECOM_TEXT_MAX_BYTES,
    ChatSinks,
    Robot,
    ceil_seconds,
    dingtalk_sign,
    lark_sign,
)
from localcloud.errors import ServiceError
from localcloud.http import Frame, Outcome, Request, Response, Route

if TYPE_CHECKING:
    from collections.abc import Callable

    from localcloud.faults import FaultRegistry
    from localcloud.http import CallStats, Service

JSON_UTF8 = "application/json;charset=utf-8"


class Malformed(ValueError):
    """A body that does not have the shape its message type documents; ``field`` names what is wrong."""

    def __init__(self, field: str, problem: str = "is missing or invalid") -> None:
        super().__init__(f"{field} {problem}")
        self.field = field


def _json(body: Any, status: int = 200, content_type: str = JSON_UTF8) -> Response:
    return Response(status, json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
                    {"Content-Type": content_type})


def _parse_json(body: bytes) -> Any:
    """The body as JSON, or ``ValueError`` (not UTF-8, not JSON)."""
    return json.loads(body.decode("utf-8"))


def _obj(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(field)
    return value


def _text(parent: dict[str, Any], key: str, field: str, required: bool = True) -> str:
    value = parent.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise Malformed(field)
    return value


def _str_list(parent: dict[str, Any], key: str, field: str) -> list[str]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Malformed(field, "must be a list of strings")
    return value


def _nonempty_list(parent: dict[str, Any], key: str, field: str) -> list[Any]:
    value = parent.get(key)
    if not isinstance(value, list) or not value:
        raise Malformed(field, "must be a non-empty list")
    return value


def _numeric_code(error: ServiceError) -> tuple[int, str]:
    """(code, message) for a JSON errcode: an injected non-numeric code becomes -1 ("system busy")."""
    code = error.code
    if code.lstrip("-").isdigit():
        return int(code), error.message
    return -1, f"{code}: {error.message}"


def _post_only(request: Request) -> None:
    if request.method != "POST":
        raise ServiceError(405, "43002", f"{request.method} is not supported; the webhook takes POST "
                                         "(localcloud's answer, see EMULATED_APIS.md)")


class _ChatService:
    """What the four products share: the sinks, one operation (``Send``), the refusal count."""

    name = "chat"

    def __init__(self, sinks: ChatSinks) -> None:
        self.sinks = sinks

    def _route(self, robot: Robot | None, fallback: str, handler: Callable[[Request, Robot | None], Response]) \
            -> Route:
        def serve(request: Request) -> Response:
            try:
                return handler(request, robot)
            except ServiceError:
                if robot is not None:
                    self.sinks.refused(robot)
                raise

        return Route("Send", robot.name if robot is not None else fallback, serve)

    def _admit(self, robot: Robot, throttled: Callable[[float], ServiceError]) -> None:
        wait = self.sinks.admit(robot)
        if wait > 0:
            raise throttled(wait)

    def decorate(self, request: Request, response: Response) -> None:
        response.headers.setdefault("x-localcloud-request-id", request.request_id)


# -- DingTalk custom robot ------------------------------------------------------------------------------------
DINGTALK_TYPES = ("text", "markdown", "actionCard", "link", "feedCard")


def validate_dingtalk(body: Any) -> str:
    """The msgtype of a valid DingTalk robot message, else :class:`Malformed` (or ``LookupError`` for the type)."""
    message = _obj(body, "json")
    msgtype = message.get("msgtype")
    if not isinstance(msgtype, str) or not msgtype:
        raise Malformed("msgtype")
    if msgtype not in DINGTALK_TYPES:
        raise LookupError(msgtype)
    payload = _obj(message.get(msgtype), msgtype)
    if msgtype == "text":
        _text(payload, "content", "text.content")
    elif msgtype == "markdown":
        _text(payload, "title", "markdown.title")
        _text(payload, "text", "markdown.text")
    elif msgtype == "actionCard":
        _text(payload, "title", "actionCard.title")
        _text(payload, "text", "actionCard.text")
        if "btns" in payload:
            for index, button in enumerate(_nonempty_list(payload, "btns", "actionCard.btns")):
                item = _obj(button, f"actionCard.btns[{index}]")
                _text(item, "title", f"actionCard.btns[{index}].title")
                _text(item, "actionURL", f"actionCard.btns[{index}].actionURL")
        else:
            _text(payload, "singleTitle", "actionCard.singleTitle")
            _text(payload, "singleURL", "actionCard.singleURL")
        if payload.get("btnOrientation") not in (None, "0", "1"):
            raise Malformed("actionCard.btnOrientation", "must be \"0\" or \"1\"")
    elif msgtype == "link":
        for key in ("title", "text", "messageUrl"):
            _text(payload, key, f"link.{key}")
        _text(payload, "picUrl", "link.picUrl", required=False)
    else:
        for index, link in enumerate(_nonempty_list(payload, "links", "feedCard.links")):
            item = _obj(link, f"feedCard.links[{index}]")
            for key in ("title", "messageURL", "picURL"):
                _text(item, key, f"feedCard.links[{index}].{key}")
    if message.get("at") is not None:
        at = _obj(message["at"], "at")
        _str_list(at, "atMobiles", "at.atMobiles")
        _str_list(at, "atUserIds", "at.atUserIds")
        if not isinstance(at.get("isAtAll", False), bool):
            raise Malformed("at.isAtAll", "must be a boolean")
    return msgtype


class DingTalkService(_ChatService):
    """``POST /robot/send?access_token=T[&timestamp=ms&sign=S]``: errors are HTTP 200 with ``errcode``."""

    name = "dingtalk"

    def route(self, request: Request) -> Route:
        token = request.query.get("access_token", "")
        robot = self.sinks.robot("dingtalk", token) if token else None
        return self._route(robot, token, self._send)

    def _send(self, request: Request, robot: Robot | None) -> Response:
        _post_only(request)
        if robot is None:
            raise ServiceError(200, "300005", "token is not exist")
        if robot.secret:
            self._verify(request, robot)
        if len(request.body) > DINGTALK_MAX_BODY_BYTES:
            raise ServiceError(200, "460101", f"message too long, exceed {DINGTALK_MAX_BODY_BYTES} bytes")
        try:
            body = _parse_json(request.body)
        except ValueError:
            raise ServiceError(200, "40035", "缺少参数 json") from None
        try:
            msgtype = validate_dingtalk(body)
        except LookupError as exc:
            raise ServiceError(200, "40008", f"不合法的msgtype类型: {exc.args[0]}") from None
        except Malformed as exc:
            raise ServiceError(200, "40035", f"缺少参数 {exc.field}") from None
        self._admit(robot, lambda wait: self.throttle_error())
        self.sinks.record(robot, msgtype, body, request.request_id)
        return _json({"errcode": 0, "errmsg": "ok"})

    def _verify(self, request: Request, robot: Robot) -> None:
        timestamp = request.query.get("timestamp", "")
        sign = request.query.get("sign", "")
        if not timestamp.isdigit() or not sign:
            raise ServiceError(200, "310000", "sign not match, timestamp and sign are required")
        now_ms = int(self.sinks.clock() * 1000)
        if abs(now_ms - int(timestamp)) > DINGTALK_TIMESTAMP_WINDOW_MS:
            raise ServiceError(200, "310000", "invalid timestamp")
        if not hmac.compare_digest(dingtalk_sign(timestamp, robot.secret), sign):
            raise ServiceError(200, "310000", "sign not match")

    def render_error(self, request: Request, error: ServiceError) -> Response:
        code, message = _numeric_code(error)
        return _json({"errcode": code, "errmsg": message}, error.status)

    def throttle_error(self) -> ServiceError:
        return ServiceError(200, "130101", "send too fast, exceed 20 times per minute")


# -- WeCom group robot ----------------------------------------------------------------------------------------
WECOM_TYPES = ("text", "markdown")


class WeComService(_ChatService):
    """``POST /cgi-bin/webhook/send?key=K``: no signature (the key is the secret); errors are HTTP 200."""

    name = "wecom"

    def route(self, request: Request) -> Route:
        key = request.query.get("key", "")
        robot = self.sinks.robot("wecom", key) if key else None
        return self._route(robot, key, self._send)

    def _send(self, request: Request, robot: Robot | None) -> Response:
        _post_only(request)
        if robot is None:
            raise ServiceError(200, "93000", "invalid webhook url")
        try:
            body = _obj(_parse_json(request.body), "json")
        except (ValueError, Malformed):
            raise ServiceError(200, "40035", "invalid Request Parameter: the body is not a JSON object") from None
        msgtype = body.get("msgtype")
        if msgtype not in WECOM_TYPES:
            raise ServiceError(200, "40008", f"invalid message type {msgtype!r} "
                                             "(localcloud emulates text and markdown)")
        payload = body.get(msgtype)
        if not isinstance(payload, dict) or not isinstance(payload.get("content"), str) or not payload["content"]:
            raise ServiceError(200, "44004", "empty content")
        content: str = payload["content"]
        limit = WECOM_TEXT_MAX_BYTES if msgtype == "text" else WECOM_MARKDOWN_MAX_BYTES
        if len(content.encode("utf-8")) > limit:
            raise ServiceError(200, "40058", f"{msgtype}.content exceed max length {limit}. "
                                             "invalid Request Parameter")
        try:
            mentions = {key: _str_list(payload, key, f"{msgtype}.{key}")
                        for key in ("mentioned_list", "mentioned_mobile_list")}
        except Malformed as exc:
            raise ServiceError(200, "40035", f"invalid Request Parameter: {exc}") from None
        if msgtype == "markdown":
            mentions = {}  # markdown messages cannot @-mention: the lists are ignored
        self._admit(robot, lambda wait: self.throttle_error())
        self.sinks.record(robot, msgtype, body, request.request_id, mentions=mentions)
        return _json({"errcode": 0, "errmsg": "ok"})

    def render_error(self, request: Request, error: ServiceError) -> Response:
        code, message = _numeric_code(error)
        if code != 0:
            message = (f"{message}, hint: [{request.request_id}], from ip: {request.client_ip}, more info at "
                       f"https://open.work.weixin.qq.com/devtool/query?e={code}")
        return _json({"errcode": code, "errmsg": message}, error.status)

    def throttle_error(self) -> ServiceError:
        return ServiceError(200, "45009", "api freq out of limit")


# -- Lark / Feishu custom bot ---------------------------------------------------------------------------------
LARK_TYPES = ("text", "post", "interactive", "image", "share_chat")


def validate_lark(message: dict[str, Any], msg_type: str) -> None:
    """Raise :class:`Malformed` unless the message has the shape its ``msg_type`` documents."""
    if msg_type == "interactive":
        card = message.get("card")
        if not isinstance(card, dict) or not card:
            raise Malformed("card")
        return
    content = _obj(message.get("content"), "content")
    if msg_type == "text":
        _text(content, "text", "content.text")
    elif msg_type == "post":
        post = _obj(content.get("post"), "content.post")
        if not post:
            raise Malformed("content.post", "needs at least one locale (zh_cn, en_us, ...)")
        for locale, body in post.items():
            item = _obj(body, f"content.post.{locale}")
            _text(item, "title", f"content.post.{locale}.title", required=False)
            for row, line in enumerate(_nonempty_list(item, "content", f"content.post.{locale}.content")):
                if not isinstance(line, list):
                    raise Malformed(f"content.post.{locale}.content[{row}]", "must be a list of elements")
                for col, element in enumerate(line):
                    _text(_obj(element, f"content.post.{locale}.content[{row}][{col}]"), "tag",
                          f"content.post.{locale}.content[{row}][{col}].tag")
    elif msg_type == "image":
        _text(content, "image_key", "content.image_key")
    else:
        _text(content, "share_chat_id", "content.share_chat_id")


class LarkService(_ChatService):
    """``POST /open-apis/bot/v2/hook/<token>``: ``timestamp``/``sign`` in the body when the bot signs."""

    name = "lark"

    def route(self, request: Request) -> Route:
        token = request.path[len(BASE_PATHS["lark"]) + 1:]
        robot = self.sinks.robot("lark", token) if token and "/" not in token else None
        return self._route(robot, token, self._send)

    def _send(self, request: Request, robot: Robot | None) -> Response:
        _post_only(request)
        if robot is None:
            raise ServiceError(200, "19001", "param invalid: incoming webhook access token invalid")
        if len(request.body) > LARK_MAX_BODY_BYTES:
            raise ServiceError(400, "9499", "Bad Request")
        try:
            message = _obj(_parse_json(request.body), "json")
        except (ValueError, Malformed):
            raise ServiceError(400, "9499", "Bad Request") from None
        if robot.secret:
            self._verify(message, robot)
        msg_type = message.get("msg_type")
        if not isinstance(msg_type, str) or not msg_type:
            raise ServiceError(200, "19002", "params error, msg_type need")
        if msg_type not in LARK_TYPES:
            raise ServiceError(200, "19002", f"params error, msg_type {msg_type} not support")
        try:
            validate_lark(message, msg_type)
        except Malformed:
            raise ServiceError(400, "9499", "Bad Request") from None
        self._admit(robot, lambda wait: self.throttle_error())
        self.sinks.record(robot, msg_type, message, request.request_id)
        return _json({"code": 0, "msg": "success", "data": {}, "Extra": None, "StatusCode": 0,
                      "StatusMessage": "success"})

    def _verify(self, message: dict[str, Any], robot: Robot) -> None:
        timestamp = str(message.get("timestamp", ""))
        sign = message.get("sign")
        failure = ServiceError(200, "19021", "sign match fail or timestamp is not within one hour from current time")
        if not timestamp.isdigit() or not isinstance(sign, str):
            raise failure
        if abs(int(self.sinks.clock()) - int(timestamp)) > LARK_TIMESTAMP_WINDOW_SECONDS:
            raise failure
        if not hmac.compare_digest(lark_sign(timestamp, robot.secret), sign):
            raise failure

    def render_error(self, request: Request, error: ServiceError) -> Response:
        code, message = _numeric_code(error)
        return _json({"code": code, "data": {}, "msg": message}, error.status)

    def throttle_error(self) -> ServiceError:
        return ServiceError(200, "11232", "frequency limited")


# -- Slack incoming webhook -----------------------------------------------------------------------------------
def validate_slack(message: dict[str, Any]) -> tuple[str, bool]:
    """("blocks"|"text", truncated) for a valid payload; ``Malformed`` with Slack's error string as ``field``."""
    text = message.get("text")
    if text is not None and not isinstance(text, str):
        raise Malformed("invalid_payload")
    blocks = message.get("blocks")
    if blocks is not None:
        if not isinstance(blocks, list) or len(blocks) > SLACK_MAX_BLOCKS:
            raise Malformed("invalid_blocks")
        for block in blocks:
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise Malformed("invalid_blocks")
            section = block.get("text")
            if block["type"] == "section" and isinstance(section, dict) \
                    and len(str(section.get("text", ""))) > SLACK_MAX_SECTION_TEXT:
                raise Malformed("invalid_blocks")
    attachments = message.get("attachments")
    if attachments is not None and not isinstance(attachments, list):
        raise Malformed("invalid_attachments")
    if not text and not blocks and not attachments:
        raise Malformed("no_text")
    return ("blocks" if blocks else "text"), bool(text and len(text) > SLACK_TEXT_TRUNCATE)


class SlackService(_ChatService):
    """``POST /services/T../B../<secret>``: plain-text answers, 4xx on errors, 429 + ``Retry-After`` when fast."""

    name = "slack"

    def route(self, request: Request) -> Route:
        parts = request.path[len(BASE_PATHS["slack"]) + 1:].split("/")
        robot: Robot | None = None
        problem = "no_service"
        if len(parts) == 3 and all(parts):
            robot, problem = self.sinks.slack_lookup(*parts)
        return self._route(robot, "/".join(parts[:2]), lambda req, bot: self._send(req, bot, problem))

    def _send(self, request: Request, robot: Robot | None, problem: str) -> Response:
        _post_only(request)
        if robot is None:
            raise ServiceError(403 if problem == "invalid_token" else 404, problem, problem)
        try:
            message = _obj(self._payload(request), "payload")
        except (ValueError, Malformed):
            raise ServiceError(400, "invalid_payload", "invalid_payload") from None
        try:
            kind, truncated = validate_slack(message)
        except Malformed as exc:
            raise ServiceError(400, exc.field, exc.field) from None
        self._admit(robot, self._rate_limited)
        if truncated:
            message = {**message, "text": message["text"][:SLACK_TEXT_TRUNCATE]}
        self.sinks.record(robot, kind, message, request.request_id, truncated=truncated)
        return Response(200, b"ok", {"Content-Type": "text/html"})

    @staticmethod
    def _payload(request: Request) -> Any:
        content_type = (request.headers.get("content-type") or "").lower()
        if "x-www-form-urlencoded" in content_type:
            form = dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
            if "payload" not in form:
                raise ValueError("no payload")
            return json.loads(form["payload"])
        return _parse_json(request.body)

    @staticmethod
    def _rate_limited(wait: float) -> ServiceError:
        return ServiceError(429, "rate_limited", "rate_limited", extra={"Retry-After": str(ceil_seconds(wait))})

    def render_error(self, request: Request, error: ServiceError) -> Response:
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if "Retry-After" in error.extra:
            headers["Retry-After"] = error.extra["Retry-After"]
        return Response(error.status, error.code.encode(), headers)

    def throttle_error(self) -> ServiceError:
        return self._rate_limited(1.0)


# -- the shared port ------------------------------------------------------------------------------------------
class _Unknown(_ChatService):
    """Any other path on the chat port: 404, with the paths that exist."""

    name = "chat"

    def route(self, request: Request) -> Route:
        raise ServiceError(404, "NotFound", f"no chat webhook at {request.path}; the chat port serves "
                                            + ", ".join(BASE_PATHS.values()))

    def render_error(self, request: Request, error: ServiceError) -> Response:
        return _json({"Code": error.code, "Message": error.message}, error.status)

    def throttle_error(self) -> ServiceError:
        return ServiceError(429, "Throttling", "throttled")


class ChatFrame(Frame):
    """One port, four products: each request goes to the :class:`Frame` of the product its path names."""

    def __init__(self, services: list[Service], faults: FaultRegistry, stats: CallStats, fallback: Service) -> None:
        super().__init__(fallback, faults, stats)
        self.frames = [(BASE_PATHS[service.name], Frame(service, faults, stats)) for service in services]

    def serve(self, request: Request) -> Outcome:
        for prefix, frame in self.frames:
            if request.path == prefix or request.path.startswith(prefix + "/"):
                return frame.serve(request)
        return super().serve(request)


def build_chat_frame(sinks: ChatSinks, faults: FaultRegistry, stats: CallStats) -> ChatFrame:
    services: list[Service] = [DingTalkService(sinks), WeComService(sinks), LarkService(sinks), SlackService(sinks)]
    return ChatFrame(services, faults, stats, _Unknown(sinks))
