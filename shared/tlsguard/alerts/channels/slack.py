"""Slack incoming webhook: Block Kit per part of the digest (a header, sections of mrkdwn) with a ``text`` fallback.

Wire format (../shared/reference/alibaba-api-facts.md §11): POST JSON ``{"text": <fallback>, "blocks": [...]}`` to
``https://hooks.slack.com/services/T.../B.../...``; no signing: the URL is the secret. Accepted: HTTP 200 with the
plain-text body ``ok``; anything else is a failed delivery carrying the status and Slack's plain-text error
(``invalid_payload``, ``no_service``, ...: the strings are UNCONFIRMED). mrkdwn escapes ``&``, ``<`` and ``>``
(https://api.slack.com/reference/surfaces/formatting#escaping).

Limits used:

* One message per second ("Posting messages: 1 per second, short bursts >1 allowed",
  https://api.slack.com/docs/rate-limits; that incoming webhooks share it is UNCONFIRMED in the pages read). HTTP 429
  carries Retry-After, which is honoured; 429 and 5xx are retried.
* A header's plain text at most 150 characters (https://docs.slack.dev/reference/block-kit/blocks/header-block);
  a section's text at most 3,000 characters and at most 50 blocks per message (the Block Kit reference as quoted in
  https://docs.rs/slack-blocks/0.6.0/slack_blocks/blocks/section/struct.Contents.html and
  https://docs.rs/crate/slack-messaging/latest/source/src/message.rs; UNCONFIRMED at the source); the ``text`` field
  is truncated beyond 40,000 characters (https://api.slack.com/changelog/2018-04-truncating-really-long-messages).
  Slack also answers ``msg_blocks_too_long`` to messages whose blocks total about 13,200 characters although each
  block is within its limit (https://github.com/slackapi/bolt-js/issues/2509, undocumented), so a message's blocks are
  kept to 12,000 characters. Sizes are counted in characters.
* A digest takes at most 10 messages unless what needs a person needs more.
"""

from __future__ import annotations

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
    label,
)
from tlsguard.alerts.render import chat_escape

if TYPE_CHECKING:
    from tlsguard.alerts.render import DigestView
    from tlsguard.policy.model import ChannelSpec

HEADER_MAX_CHARS = 150
SECTION_MAX_CHARS = 3000
MAX_BLOCKS = 50
MESSAGE_MAX_CHARS = 12_000
RATE = ((1, 1.0),)


def sections(body: str, limit: int = SECTION_MAX_CHARS) -> list[str] | None:
    """``body`` as section texts of at most ``limit`` characters, cut between lines (None: a line is too long)."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in body.strip("\n").split("\n"):
        if len(line) > limit:
            return None
        if current and size + 1 + len(line) > limit:
            chunks.append("\n".join(current).strip("\n"))
            current, size = [], 0
        current.append(line)
        size += len(line) + (1 if size else 0)
    if current:
        chunks.append("\n".join(current).strip("\n"))
    return [c for c in chunks if c.strip()]


def header(title: str) -> str:
    return title if len(title) <= HEADER_MAX_CHARS else title[:HEADER_MAX_CHARS - 1] + "…"


class SlackChannel(ChatChannel):
    type = "slack"
    windows = RATE
    budget = 10

    def blocks(self, part: DigestView, detail: str) -> list[dict[str, Any]] | None:
        texts = sections(self.markdown(part, detail, show_title=False))
        if texts is None:
            return None
        return [{"type": "header", "text": {"type": "plain_text", "text": header(part.title), "emoji": True}},
                *({"type": "section", "text": {"type": "mrkdwn", "text": t}} for t in texts)]

    def fits(self, part: DigestView, detail: str) -> bool:
        blocks = self.blocks(part, detail)
        if blocks is None or len(blocks) > MAX_BLOCKS:
            return False
        return sum(len(b["text"]["text"]) for b in blocks) <= MESSAGE_MAX_CHARS

    def messages(self, plan_: Plan) -> list[Message]:
        out = []
        total = len(plan_.parts)
        for index, part in enumerate(plan_.parts, start=1):
            fallback = chat_escape(part.title + (f" ({part.part})" if part.part else ""), "slack")
            out.append(Message({"text": fallback, "blocks": self.blocks(part, plan_.detail) or []}, part,
                               label(index, total)))
        return out

    def check(self, answer: Answer) -> None:
        body = answer.body.decode("utf-8", "replace").strip()
        if answer.status == 200 and body == "ok":
            return
        if answer.status == 429 or answer.status >= 500:
            raise Throttled(f"HTTP {answer.status}: {body[:200]}", service="slack", status=answer.status,
                            code=body[:100], retry_after=answer.header_seconds("Retry-After"))
        raise Refused(f"HTTP {answer.status}: {body[:300] or 'no body'}", code=body[:100], status=answer.status)


def build(spec: ChannelSpec, language: str) -> SlackChannel:
    url = check_url(spec, env_value(spec, spec.url_env, "the incoming webhook URL"))
    return SlackChannel(spec.name, url, language=language, **common_options(spec))
