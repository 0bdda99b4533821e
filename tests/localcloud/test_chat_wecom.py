"""WeCom group robot sink (``POST /cgi-bin/webhook/send?key=``): each test states the documented behaviour it checks.

Sources are cited in docs/emulated/chat.md; figures marked UNCONFIRMED there are localcloud's choices.
"""

from __future__ import annotations

import socket
import urllib.error
from typing import Any

import pytest

from tests.localcloud._chat_http import control, messages, post

KEY = "693a91f6-7aaa-4bc4-97a0-0ec2sifa5aaa"


@pytest.fixture
def robot(cloud: Any) -> Any:
    cloud.seed({"chat_robots": [{"service": "wecom", "name": "ops-wecom", "token": KEY}]})
    return cloud


def _url(cloud: Any, key: str = KEY) -> str:
    return f"{cloud.endpoints['chat']['wecom']}?key={key}"


TEXT = {"msgtype": "text", "text": {"content": "tlsguard: 2 drifted", "mentioned_list": ["@all"],
                                    "mentioned_mobile_list": ["13800001111"]}}
MARKDOWN = {"msgtype": "markdown", "markdown": {"content": "**tlsguard**\n> <font color=\"warning\">2</font>"}}


def test_valid_key_is_accepted_and_recorded_with_mentions(robot: Any) -> None:
    # No signing: the key in the URL is the secret. Success: {"errcode":0,"errmsg":"ok"}
    answer = post(_url(robot), TEXT)
    assert answer.status == 200 and answer.json() == {"errcode": 0, "errmsg": "ok"}
    [entry] = messages(robot, service="wecom")
    assert entry["body"] == TEXT and entry["msgtype"] == "text"
    assert entry["mentions"] == {"mentioned_list": ["@all"], "mentioned_mobile_list": ["13800001111"]}


def test_markdown_is_accepted_and_its_mentions_are_ignored(robot: Any) -> None:
    # "Markdown does not support @-mentions": the lists are not an error, they just mention no one
    body = {"msgtype": "markdown", "markdown": {"content": "**x**", "mentioned_mobile_list": ["13800001111"]}}
    assert post(_url(robot), body).json()["errcode"] == 0
    assert post(_url(robot), MARKDOWN).json()["errcode"] == 0
    assert [m["mentions"] for m in messages(robot)] == [{}, {}]


def test_unknown_or_missing_key_is_refused_with_93000(robot: Any) -> None:
    for url in (_url(robot, "0000"), robot.endpoints["chat"]["wecom"]):
        answer = post(url, TEXT)
        assert answer.status == 200  # WeCom answers errors with HTTP 200 and a non-zero errcode
        body = answer.json()
        assert body["errcode"] == 93000 and body["errmsg"].startswith("invalid webhook url, hint: [")
        assert "more info at https://open.work.weixin.qq.com/devtool/query?e=93000" in body["errmsg"]
    assert messages(robot) == []


@pytest.mark.parametrize(("body", "errcode"), [
    (b"{not json", 40035),
    ({"msgtype": "news", "news": {"articles": []}}, 40008),  # not emulated: invalid msgtype
    ({"text": {"content": "no msgtype"}}, 40008),
    ({"msgtype": "text", "text": {"content": ""}}, 44004),
    ({"msgtype": "markdown", "markdown": {}}, 44004),
    ({"msgtype": "text", "text": {"content": "x", "mentioned_mobile_list": "13800001111"}}, 40035),
])
def test_malformed_body_is_refused(robot: Any, body: Any, errcode: int) -> None:
    assert post(_url(robot), body).json()["errcode"] == errcode
    assert messages(robot) == []


def test_over_size_content_is_refused_with_40058(robot: Any) -> None:
    # text.content at most 2048 bytes, markdown.content at most 4096 bytes (UTF-8)
    assert post(_url(robot), {"msgtype": "text", "text": {"content": "x" * 2048}}).json()["errcode"] == 0
    answer = post(_url(robot), {"msgtype": "text", "text": {"content": "x" * 2049}}).json()
    assert answer["errcode"] == 40058 and answer["errmsg"].startswith("text.content exceed max length 2048.")
    assert post(_url(robot), {"msgtype": "markdown", "markdown": {"content": "告" * 1365}}).json()["errcode"] == 0
    answer = post(_url(robot), {"msgtype": "markdown", "markdown": {"content": "告" * 1366}}).json()  # 4098 bytes
    assert answer["errcode"] == 40058 and answer["errmsg"].startswith("markdown.content exceed max length 4096.")
    assert len(messages(robot)) == 2


def test_over_rate_is_refused_with_45009_and_accepted_after_the_minute(robot: Any) -> None:
    # "每个机器人发送的消息不能超过20条/分钟"
    for _ in range(20):
        assert post(_url(robot), MARKDOWN).json()["errcode"] == 0
    answer = post(_url(robot), MARKDOWN).json()
    assert answer["errcode"] == 45009 and answer["errmsg"].startswith("api freq out of limit")
    control(robot, "POST", "/clock/advance", {"seconds": 61})  # move localcloud's clock instead of sleeping
    assert post(_url(robot), MARKDOWN).json()["errcode"] == 0
    assert len(messages(robot)) == 21
    assert [r["refused"] for r in control(robot, "GET", "/chat/robots?service=wecom")] == [1]


def test_lost_response_delivers_the_message_but_drops_the_answer(robot: Any) -> None:
    control(robot, "POST", "/faults", {"kind": "lost_response", "service": "wecom", "remaining": 1})
    with pytest.raises((urllib.error.URLError, ConnectionError, socket.timeout, OSError)):
        post(_url(robot), MARKDOWN)
    assert len(messages(robot, service="wecom")) == 1  # it landed; the client cannot tell


def test_injected_throttle_answers_45009(robot: Any) -> None:
    control(robot, "POST", "/faults", {"kind": "throttle", "service": "wecom", "resource": "ops-wecom"})
    assert post(_url(robot), MARKDOWN).json()["errcode"] == 45009
    assert messages(robot) == []


def test_wecom_robots_take_no_secret(cloud: Any) -> None:
    from localcloud.seed import SeedError

    with pytest.raises(SeedError, match="not signed"):
        cloud.seed({"chat_robots": [{"service": "wecom", "name": "x", "secret": "s"}]})
