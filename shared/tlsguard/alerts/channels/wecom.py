"""WeCom (企业微信) group robot: a Markdown message per part of the digest, and a text message to @-mention.

Wire format (../shared/reference/alibaba-api-facts.md §11; https://developer.work.weixin.qq.com/document/path/91770,
reproduced at https://cnblogs.com/tiandi/p/17768525.html):

* POST ``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=<KEY>``; no signing: the key is the secret.
* ``{"msgtype": "markdown", "markdown": {"content": ...}}``. Markdown messages cannot @-mention by mobile, so when a
  digest part holds a CRITICAL item that needs a person and ``mention_mobiles`` is set, a
  ``{"msgtype": "text", "text": {"content", "mentioned_mobile_list"}}`` follows that part (once per digest).
* Answer ``{"errcode": 0, "errmsg": "ok"}``.

Limits used:

* 20 messages per minute per robot ("每个机器人发送的消息不能超过20条/分钟", the group robot page as quoted at
  https://hexdocs.pm/wechat_sdk/WeChat.Work.ChatRobot.html and in https://app.unpkg.com/weworkbot@1.4.1/files/README.md).
* Markdown content at most 4,096 bytes of UTF-8 (the page's parameter table, reproduced at
  https://www.cnblogs.com/saplh/p/archive/2021/10/08; the service enforces it as errcode 40058 "markdown.content
  exceed max length 4096", https://www.Github.com/RayWangQvQ/BiliBiliToolPro/issues/702); text content at most
  2,048 bytes.
* errcode 45009 "api freq out of limit" is the throttling answer (https://developer.work.weixin.qq.com/document/path/90454
  describes the frequency limits; that the robot answers 45009 for its 20/minute is UNCONFIRMED); errcode -1
  "system busy" is retried as well (UNCONFIRMED). Any other errcode (93000 invalid key, 40058 too long, ...) is a
  refusal, never retried.
* A digest takes at most 6 messages (the mention included) unless what needs a person needs more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tlsguard.alerts.channels import env_value
from tlsguard.alerts.channels._http import Answer, ChatChannel, Message, Plan, check_url, common_options, label
from tlsguard.alerts.channels.dingtalk import check_errcode
from tlsguard.alerts.render import text

if TYPE_CHECKING:
    from tlsguard.alerts.render import DigestView
    from tlsguard.policy.model import ChannelSpec

MARKDOWN_MAX_BYTES = 4096
TEXT_MAX_BYTES = 2048
RATE = ((20, 60.0),)
THROTTLED_CODES = frozenset({"45009", "-1"})


def truncate_bytes(value: str, limit: int) -> str:
    """``value`` cut to at most ``limit`` UTF-8 bytes (never inside a character)."""
    encoded = value.encode("utf-8")
    if len(encoded) <= limit:
        return value
    return encoded[:max(0, limit - 3)].decode("utf-8", "ignore") + "…"


class WeComChannel(ChatChannel):
    type = "wecom"
    windows = RATE
    budget = 6

    def fits(self, part: DigestView, detail: str) -> bool:
        return len(self.markdown(part, detail).encode("utf-8")) <= MARKDOWN_MAX_BYTES

    def messages(self, plan_: Plan) -> list[Message]:
        out: list[Message] = []
        mentioned = False
        total = len(plan_.parts)
        for index, part in enumerate(plan_.parts, start=1):
            out.append(Message({"msgtype": "markdown", "markdown": {"content": self.markdown(part, plan_.detail)}},
                               part, label(index, total)))
            if self.wants_mention(part) and not mentioned:
                mentioned = True
                critical = sum(1 for p in plan_.parts for i in p.items
                               if i.severity == "CRITICAL" and i.section in ("needs_attention", "reminder"))
                content = f"{part.title}\n{text(part.language, 'mention', n=critical)}"
                out.append(Message({"msgtype": "text", "text": {
                    "content": truncate_bytes(content, TEXT_MAX_BYTES),
                    "mentioned_mobile_list": list(self.mention_mobiles)}}, part, "mention"))
        return out

    def check(self, answer: Answer) -> None:
        check_errcode(answer, "wecom", THROTTLED_CODES)


def build(spec: ChannelSpec, language: str) -> WeComChannel:
    url = check_url(spec, env_value(spec, spec.url_env, "the robot's webhook URL"))
    return WeComChannel(spec.name, url, language=language, **common_options(spec))
