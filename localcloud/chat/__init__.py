"""Chat sinks: DingTalk custom robots, WeCom group robots, Lark/Feishu custom bots and Slack incoming webhooks.

:class:`ChatSinks` (``cloud.chat``) holds the robots, what they accepted and their rate windows; the four services
in :mod:`localcloud.chat.services` translate each product's wire format and share one loopback port through
:class:`~localcloud.chat.services.ChatFrame`. Documented in EMULATED_APIS.md ("Chat robots").
"""

from __future__ import annotations

from localcloud.chat.backend import (
    CHAT_SERVICES,
    ChatSinks,
    Robot,
    dingtalk_sign,
    lark_sign,
)
from localcloud.chat.services import ChatFrame, build_chat_frame

__all__ = ["CHAT_SERVICES", "ChatFrame", "ChatSinks", "Robot", "build_chat_frame", "dingtalk_sign", "lark_sign"]
