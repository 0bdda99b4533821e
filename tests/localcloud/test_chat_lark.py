"""Lark/Feishu custom bot sink (``POST /open-apis/bot/v2/hook/<token>``): each test states the documented behaviour.

Sources are cited in docs/emulated/chat.md; figures marked UNCONFIRMED there are localcloud's choices.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from localcloud.chat import lark_sign
from tests.localcloud._chat_http import FrozenClock, messages, post

TOKEN = "bb2943b9-59f2-4063-8b47-414f158b33c8"
SECRET = "zs0TlarkSecret"


def _sign(timestamp_s: int, secret: str) -> str:
    """The documented scheme, computed here independently: ``timestamp + "\\n" + secret`` is the HMAC-SHA256
    KEY, the message is empty, then base64 (no URL encoding; it travels in the JSON body)."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


@pytest.fixture
def robot(cloud: Any) -> Any:
    cloud.seed({"chat_robots": [{"service": "lark", "name": "ops-lark", "token": TOKEN, "secret": SECRET},
                                {"service": "lark", "name": "open", "token": "unsigned-lark-0001"}]})
    cloud.chat.clock = FrozenClock(cloud.clock.time())  # sub-second windows: move time by hand (reset restores)
    return cloud


def _url(cloud: Any, token: str = TOKEN) -> str:
    return f"{cloud.endpoints['chat']['lark']}/{token}"


def _signed(cloud: Any, body: dict[str, Any], timestamp: int | None = None, secret: str = SECRET) -> dict[str, Any]:
    timestamp = int(cloud.chat.clock()) if timestamp is None else timestamp
    return {"timestamp": str(timestamp), "sign": _sign(timestamp, secret), **body}


TEXT = {"msg_type": "text", "content": {"text": "tlsguard: 2 drifted"}}
POST = {"msg_type": "post", "content": {"post": {"zh_cn": {"title": "tlsguard", "content": [[
    {"tag": "text", "text": "2 drifted "}, {"tag": "a", "text": "report", "href": "https://example.com"},
    {"tag": "at", "user_id": "all"}]]}}}}
CARD = {"msg_type": "interactive", "card": {"header": {"title": {"tag": "plain_text", "content": "tlsguard"},
                                                       "template": "red"},
                                            "elements": [{"tag": "markdown", "content": "**2** drifted"}]}}
SUCCESS = {"code": 0, "msg": "success", "data": {}, "Extra": None, "StatusCode": 0, "StatusMessage": "success"}


@pytest.mark.unit
def test_signature_matches_the_documented_test_vector() -> None:
    # ../shared/reference/alibaba-api-facts.md §11: ts 1700000000, secret exampleSecret
    assert _sign(1700000000, "exampleSecret") == "9BtNtPKYmSijzqNklN4AvEyYAf7DaWBs0LL/QU4TaJo="
    assert lark_sign(1700000000, "exampleSecret") == "9BtNtPKYmSijzqNklN4AvEyYAf7DaWBs0LL/QU4TaJo="


@pytest.mark.parametrize("body", [TEXT, POST, CARD], ids=["text", "post", "interactive"])
def test_valid_signature_is_accepted_and_recorded(robot: Any, body: dict[str, Any]) -> None:
    answer = post(_url(robot), _signed(robot, body))
    assert answer.status == 200 and answer.json() == SUCCESS
    [entry] = messages(robot, service="lark", robot="ops-lark")
    assert entry["msgtype"] == body["msg_type"]
    assert entry["body"]["content" if "content" in body else "card"] == body.get("content", body.get("card"))


def test_a_bot_without_signature_verification_takes_an_unsigned_body(robot: Any) -> None:
    assert post(_url(robot, "unsigned-lark-0001"), TEXT).json()["code"] == 0


def test_unknown_token_is_refused_with_19001(robot: Any) -> None:
    answer = post(_url(robot, "00000000-0000-0000-0000-000000000000"), _signed(robot, TEXT))
    assert answer.json()["code"] == 19001
    assert messages(robot) == []


def test_wrong_or_missing_signature_is_refused_with_19021(robot: Any) -> None:
    expected = {"code": 19021, "data": {},
                "msg": "sign match fail or timestamp is not within one hour from current time"}
    assert post(_url(robot), _signed(robot, TEXT, secret="other")).json() == expected
    assert post(_url(robot), TEXT).json() == expected  # no timestamp/sign on a signing bot
    # DingTalk's scheme (secret as key, string as message) is NOT Lark's
    timestamp = int(robot.chat.clock())
    dingtalk_style = base64.b64encode(hmac.new(SECRET.encode(), f"{timestamp}\n{SECRET}".encode(),
                                               hashlib.sha256).digest()).decode()
    body = {"timestamp": str(timestamp), "sign": dingtalk_style, **TEXT}
    assert post(_url(robot), body).json()["code"] == 19021
    assert messages(robot) == []


def test_a_timestamp_more_than_one_hour_off_is_refused_with_19021(robot: Any) -> None:
    now = int(robot.chat.clock())
    assert post(_url(robot), _signed(robot, TEXT, timestamp=now - 3601)).json()["code"] == 19021
    assert post(_url(robot), _signed(robot, TEXT, timestamp=now + 3601)).json()["code"] == 19021
    assert post(_url(robot), _signed(robot, TEXT, timestamp=now - 3500)).json()["code"] == 0


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"content": {"text": "no msg_type"}}, 200, 19002),  # {"code":19002,"msg":"params error, msg_type need"}
    ({"msg_type": "text", "content": {}}, 400, 9499),
    ({"msg_type": "text"}, 400, 9499),
    ({"msg_type": "post", "content": {"post": {}}}, 400, 9499),
    ({"msg_type": "post", "content": {"post": {"zh_cn": {"title": "t", "content": [{"tag": "text"}]}}}}, 400, 9499),
    ({"msg_type": "interactive", "card": "not a card"}, 400, 9499),
    ({"msg_type": "video", "content": {}}, 200, 19002),
])
def test_malformed_body_is_refused(robot: Any, body: dict[str, Any], status: int, code: int) -> None:
    answer = post(_url(robot), _signed(robot, body))
    assert (answer.status, answer.json()["code"]) == (status, code)
    assert messages(robot) == []


def test_not_json_is_a_bad_request(robot: Any) -> None:
    answer = post(_url(robot), b"msg_type=text")
    assert answer.status == 400 and answer.json() == {"code": 9499, "data": {}, "msg": "Bad Request"}


def test_over_size_body_is_refused_with_9499(robot: Any) -> None:
    # "发送消息时，请求体的数据大小不能超过 20 KB"
    padding = 20 * 1024 - len(str(_signed(robot, {"msg_type": "text", "content": {"text": ""}}))) - 200
    assert post(_url(robot), _signed(robot, {"msg_type": "text", "content": {"text": "x" * padding}})).status == 200
    answer = post(_url(robot), _signed(robot, {"msg_type": "text", "content": {"text": "x" * (20 * 1024)}}))
    assert answer.status == 400 and answer.json()["code"] == 9499
    assert len(messages(robot)) == 1


def test_over_five_per_second_is_refused_with_11232_and_accepted_a_second_later(robot: Any) -> None:
    # "单租户单机器人 100 次/分钟，5 次/秒"
    for _ in range(5):
        assert post(_url(robot), _signed(robot, TEXT)).json()["code"] == 0
    assert post(_url(robot), _signed(robot, TEXT)).json()["code"] == 11232
    robot.chat.clock.advance(1.0)
    assert post(_url(robot), _signed(robot, TEXT)).json()["code"] == 0


def test_over_a_hundred_per_minute_is_refused_with_11232_and_accepted_after_the_minute(robot: Any) -> None:
    for _ in range(100):
        assert post(_url(robot), _signed(robot, TEXT)).json()["code"] == 0
        robot.chat.clock.advance(0.25)  # 4/s: under the per-second limit
    assert post(_url(robot), _signed(robot, TEXT)).json()["code"] == 11232
    robot.chat.clock.advance(36.0)  # 61 s after the first message
    assert post(_url(robot), _signed(robot, TEXT)).json()["code"] == 0
    assert len(messages(robot, robot="ops-lark")) == 101


def test_reset_restores_localcloud_clock(robot: Any) -> None:
    robot.reset()
    assert robot.chat.clock == robot.clock.time
