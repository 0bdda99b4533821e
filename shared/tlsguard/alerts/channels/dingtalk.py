"""DingTalk custom robot (自定义机器人): a signed Markdown message per part of the digest.

Wire format (../shared/reference/alibaba-api-facts.md §11):

* POST ``https://oapi.dingtalk.com/robot/send?access_token=<T>&timestamp=<ms>&sign=<S>``; with a signing secret
  (``SEC...``), ``S = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")))``, the timestamp in
  milliseconds and within an hour of DingTalk's clock. Without ``secret_env`` the robot is assumed to be protected by
  a keyword or an IP allow-list and the URL is used as it is.
* Body ``{"msgtype": "markdown", "markdown": {"title", "text"}, "at": {"atMobiles": [...], "isAtAll": false}}``;
  a person is @-mentioned only when the text also holds ``@<mobile>``, so the mention line is appended to the text.
  tlsguard mentions ``mention_mobiles`` once per digest, in the first part with a CRITICAL item that needs a person.
* Answer ``{"errcode": 0, "errmsg": "ok"}``; any other errcode is a failed delivery.

Limits used (and where they come from):

* 20 messages per minute per robot; a robot that sends more is throttled for 10 minutes. The official page
  (https://open.dingtalk.com/document/robots/custom-robot-access) is not in the searchable corpus; its text is
  reproduced verbatim at https://blog.csdn.net/lxw1844912514/article/details/125780346 and
  https://cnblogs.com/Fogram-c/p/16992729.html ("每个机器人每分钟最多发送20条消息到群里，如果超过20条，会限流10分钟").
* errcode 130101 "send too fast, exceed 20 times per minute" is the throttling answer
  (https://blog.csdn.net/jialiuyang/article/details/118615052; official error table not read: UNCONFIRMED);
  errcode -1 "system busy" is retried as well (UNCONFIRMED). errcode 310000 (signature, keyword or IP refused,
  https://developer.aliyun.com/ask/318187) and everything else is never retried.
* A message of at most 20,000 bytes: UNCONFIRMED (no documented figure was found); tlsguard measures the whole
  UTF-8 JSON body it sends against it (the text alone is a little smaller), which also holds if the figure is the
  text's.
* A digest takes at most 5 messages (a quarter of the minute's budget) unless what needs a person needs more.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from typing import TYPE_CHECKING, Any

from tlsguard.alerts.channels import env_value
from tlsguard.alerts.channels._http import (
    Answer,
    ChatChannel,
    Message,
    Plan,
    Refused,
    Throttled,
    check_url,
    common_options,
    encode,
    label,
)

if TYPE_CHECKING:
    from tlsguard.alerts.render import DigestView
    from tlsguard.policy.model import ChannelSpec

BODY_MAX_BYTES = 20_000  # UNCONFIRMED
TITLE_MAX_CHARS = 100  # the title is only the notification's preview line
RATE = ((20, 60.0),)
THROTTLED_CODES = frozenset({"130101", "-1"})


def sign(secret: str, timestamp_ms: int | str) -> str:
    """The ``sign`` parameter before URL encoding: base64(HMAC-SHA256(key=secret, msg=timestamp + "\\n" + secret))."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """``url`` with ``timestamp`` and the URL-encoded ``sign`` appended."""
    separator = "&" if urllib.parse.urlsplit(url).query else ("" if url.endswith("?") else "?")
    return f"{url}{separator}timestamp={timestamp_ms}&sign={urllib.parse.quote_plus(sign(secret, timestamp_ms))}"


class DingTalkChannel(ChatChannel):
    type = "dingtalk"
    windows = RATE
    budget = 5

    def _text(self, part: DigestView, detail: str, *, mention: bool) -> str:
        body = self.markdown(part, detail)
        if mention:
            body += "\n\n" + " ".join(f"@{mobile}" for mobile in self.mention_mobiles)
        return body

    def payload(self, part: DigestView, detail: str, *, mention: bool) -> dict[str, Any]:
        title = part.title + (f" ({part.part})" if part.part else "")
        return {"msgtype": "markdown",
                "markdown": {"title": title[:TITLE_MAX_CHARS], "text": self._text(part, detail, mention=mention)},
                "at": {"atMobiles": list(self.mention_mobiles) if mention else [], "isAtAll": False}}

    def fits(self, part: DigestView, detail: str) -> bool:
        # measured with a mention, which any part may carry; the URL carries the signature
        return len(encode(self.payload(part, detail, mention=bool(self.mention_mobiles)))) <= BODY_MAX_BYTES

    def messages(self, plan_: Plan) -> list[Message]:
        out: list[Message] = []
        mentioned = False
        for index, part in enumerate(plan_.parts, start=1):
            mention = self.wants_mention(part) and not mentioned
            mentioned = mentioned or mention
            out.append(Message(self.payload(part, plan_.detail, mention=mention), part,
                               label(index, len(plan_.parts))))
        return out

    def prepare(self, message: Message) -> tuple[str, bytes]:
        url, body = super().prepare(message)
        if self.secret:
            url = signed_url(url, self.secret, int(self.clock() * 1000))
        return url, body

    def check(self, answer: Answer) -> None:
        check_errcode(answer, "dingtalk", THROTTLED_CODES)


def check_errcode(answer: Answer, service: str, throttled: frozenset[str]) -> None:
    """DingTalk's and WeCom's answer: ``{"errcode": 0, "errmsg": "ok"}`` (HTTP 200 even for a refusal)."""
    if answer.status == 429 or answer.status >= 500:
        raise Throttled(f"HTTP {answer.status}", service=service, status=answer.status,
                        retry_after=answer.header_seconds("Retry-After"))
    data = answer.json()
    if "errcode" not in data:
        raise Refused(f"HTTP {answer.status} without an errcode", status=answer.status)
    code = str(data.get("errcode"))
    if code == "0" and answer.status == 200:
        return
    message = f"errcode {code}: {str(data.get('errmsg') or '')[:300]}"
    if code in throttled:
        raise Throttled(message, service=service, code=code, status=answer.status,
                        retry_after=answer.header_seconds("Retry-After"))
    raise Refused(message, code=code, status=answer.status)


def build(spec: ChannelSpec, language: str) -> DingTalkChannel:
    url = check_url(spec, env_value(spec, spec.url_env, "the robot's webhook URL"))
    secret = env_value(spec, spec.secret_env, "the robot's signing secret") if spec.secret_env else ""
    return DingTalkChannel(spec.name, url, language=language, secret=secret, **common_options(spec))
