"""Lark / Feishu custom bot (自定义机器人): an interactive card per part of the digest, signed in the body.

Wire format (../shared/reference/alibaba-api-facts.md §11; the official guide
https://open.larkoffice.com/document/ukTMukTMukTM/ucTM5YjL3ETO24yNxkjN.md, in English
https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot.md):

* POST ``https://open.feishu.cn/open-apis/bot/v2/hook/<token>`` (Lark: ``open.larksuite.com``).
* With a signing secret: ``"timestamp": "<seconds>"`` and ``"sign": base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}",
  msg=b""))`` in the body (the string is the key, the message is empty; no URL encoding), within an hour.
* ``{"msg_type": "interactive", "card": {"header": {"title", "template": <colour>}, "elements": [markdown]}}``: the
  header carries the title and a colour by the worst severity among what needs a person (red CRITICAL, orange HIGH,
  yellow MEDIUM, blue LOW, grey INFO, green when nothing needs a person). Card Markdown (JSON 1.0) has no headings or
  inline code (https://open.larkoffice.com/document/uAjLw4CM/ukzMukzMukzM/feishu-cards/card-components/content-components/rich-text.md),
  which ``markdown.j2``'s ``lark`` flavour leaves out.
* Answer ``{"code": 0, "msg": "success"}``; the older ``{"StatusCode": 0, "StatusMessage": "success"}`` form is
  accepted too (UNCONFIRMED: not in the pages read, but seen from the service).

Limits used:

* 100 messages per minute and 5 per second per bot; avoid the :00 and :30 peaks, when the service may answer 11232
  (the guide above, and https://open.larkoffice.com/document/ukTMukTMukTM/uUzN04SN3QjL1cDN.md).
* A request body of at most 20 KB (the guide above), measured here as 20,000 bytes of the UTF-8 JSON body sent.
* Throttling answers, retried: code 11232 (documented above), 99991400 and HTTP 429 with ``x-ogw-ratelimit-reset``
  (https://open.feishu.cn/document/server-docs/api-call-guide/frequency-control.md), and 9499 when its message
  speaks of frequency ("too many request": UNCONFIRMED; a plain 9499 "Bad Request" is a malformed or oversized
  body, a refusal). Code 19021 (signature or timestamp refused), 19024 (keyword missing, UNCONFIRMED) and
  everything else: refusals, never retried.
* A digest takes at most 10 messages unless what needs a person needs more.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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

BODY_MAX_BYTES = 20_000
RATE = ((5, 1.0), (100, 60.0))
THROTTLED_CODES = frozenset({"11232", "99991400"})
#: 9499 is both "Bad Request" and (reportedly) "too many request": only the latter is retried
_FREQUENCY_WORDS = ("too many", "frequen", "limit")
COLOURS = {"CRITICAL": "red", "HIGH": "orange", "MEDIUM": "yellow", "LOW": "blue", "INFO": "grey", "": "green"}
#: what a signature adds to a body (``"timestamp":"1700000000","sign":"<44 base64 characters>"``), for measuring
_SIGNATURE_ROOM = len(',"timestamp":"1700000000","sign":""') + 44


def sign(secret: str, timestamp_s: int | str) -> str:
    """base64(HMAC-SHA256(key=timestamp + "\\n" + secret, msg=b""))."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


class LarkChannel(ChatChannel):
    type = "lark"
    windows = RATE
    budget = 10

    def card(self, part: DigestView, detail: str) -> dict[str, Any]:
        title = part.title + (f" ({part.part})" if part.part else "")
        return {"msg_type": "interactive", "card": {
            "config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": title}, "template": COLOURS[part.worst()]},
            "elements": [{"tag": "markdown", "content": self.markdown(part, detail, show_title=False)}],
        }}

    def fits(self, part: DigestView, detail: str) -> bool:
        return len(encode(self.card(part, detail))) + _SIGNATURE_ROOM <= BODY_MAX_BYTES

    def messages(self, plan_: Plan) -> list[Message]:
        total = len(plan_.parts)
        return [Message(self.card(part, plan_.detail), part, label(index, total))
                for index, part in enumerate(plan_.parts, start=1)]

    def prepare(self, message: Message) -> tuple[str, bytes]:
        payload = dict(message.payload)
        if self.secret:
            timestamp = int(self.clock())
            payload = {"timestamp": str(timestamp), "sign": sign(self.secret, timestamp), **payload}
        return self.url, encode(payload)

    def check(self, answer: Answer) -> None:
        if answer.status == 429 or answer.status >= 500:
            raise Throttled(f"HTTP {answer.status}", service="lark", status=answer.status,
                            retry_after=answer.header_seconds("Retry-After", "x-ogw-ratelimit-reset"))
        data = answer.json()
        raw = data.get("code", data.get("StatusCode"))
        if raw is None:
            raise Refused(f"HTTP {answer.status} without a code", status=answer.status)
        code = str(raw)
        if code == "0" and answer.status == 200:
            return
        message = f"code {code}: {str(data.get('msg') or data.get('StatusMessage') or '')[:300]}"
        text = message.lower()
        if code in THROTTLED_CODES or (code == "9499" and any(word in text for word in _FREQUENCY_WORDS)):
            raise Throttled(message, service="lark", code=code, status=answer.status,
                            retry_after=answer.header_seconds("Retry-After", "x-ogw-ratelimit-reset"))
        raise Refused(message, code=code, status=answer.status)


def build(spec: ChannelSpec, language: str) -> LarkChannel:
    url = check_url(spec, env_value(spec, spec.url_env, "the bot's webhook URL"))
    secret = env_value(spec, spec.secret_env, "the bot's signing secret") if spec.secret_env else ""
    return LarkChannel(spec.name, url, language=language, secret=secret, **common_options(spec))
