"""DingTalk custom robot sink (``POST /robot/send``): each test states the documented behaviour it checks.

Sources are cited in docs/emulated/chat.md; figures marked UNCONFIRMED there are localcloud's choices.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from typing import Any

import pytest

from localcloud.chat import dingtalk_sign
from tests.localcloud._chat_http import control, messages, post

SECRET = "SEC0123456789abcdef"
TOKEN = "dt0123456789abcdef"


def _sign(timestamp_ms: int, secret: str) -> str:
    """The documented scheme, computed here independently: HMAC-SHA256 keyed by the secret over
    ``timestamp + "\\n" + secret``, base64, then URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def _now_ms(cloud: Any) -> int:
    return int(cloud.clock.time() * 1000)


def _url(cloud: Any, token: str = TOKEN, timestamp: int | None = None, sign: str | None = None) -> str:
    timestamp = _now_ms(cloud) if timestamp is None else timestamp
    sign = _sign(timestamp, SECRET) if sign is None else sign
    return f"{cloud.endpoints['chat']['dingtalk']}?access_token={token}&timestamp={timestamp}&sign={sign}"


@pytest.fixture
def robot(cloud: Any) -> Any:
    cloud.seed({"chat_robots": [{"service": "dingtalk", "name": "ops-dingtalk", "token": TOKEN, "secret": SECRET},
                                {"service": "dingtalk", "name": "open", "token": "unsigned0001"}]})
    return cloud


TEXT = {"msgtype": "text", "text": {"content": "tlsguard: 2 drifted"}, "at": {"atMobiles": ["13800000000"],
                                                                                "isAtAll": False}}


# -- signing: the facts file's test vector ------------------------------------------------------------------
@pytest.mark.unit
def test_signature_matches_the_documented_test_vector() -> None:
    # ../shared/reference/alibaba-api-facts.md §11: ts 1700000000000, secret SECexample
    assert _sign(1700000000000, "SECexample") == "uroalHrWHORz59talE1o26b8HuX2kOp8WlAN91F9Pj0%3D"
    assert dingtalk_sign(1700000000000, "SECexample") == "uroalHrWHORz59talE1o26b8HuX2kOp8WlAN91F9Pj0="


# -- accepted and recorded ----------------------------------------------------------------------------------
def test_valid_signature_is_accepted_and_recorded_with_the_parsed_body(robot: Any) -> None:
    answer = post(_url(robot), TEXT)
    # Documented success: HTTP 200, {"errcode":0,"errmsg":"ok"}
    assert answer.status == 200 and answer.json() == {"errcode": 0, "errmsg": "ok"}
    [entry] = messages(robot, service="dingtalk", robot="ops-dingtalk")
    assert entry["msgtype"] == "text" and entry["body"] == TEXT and entry["robot"] == "ops-dingtalk"


@pytest.mark.parametrize("body", [
    {"msgtype": "markdown", "markdown": {"title": "tlsguard", "text": "#### 2 drifted\n> acme-prod"},
     "at": {"atMobiles": ["13800000000"], "atUserIds": ["user1"], "isAtAll": False}},
    {"msgtype": "actionCard", "actionCard": {"title": "tlsguard", "text": "### 2 drifted", "btnOrientation": "0",
                                             "singleTitle": "Open report", "singleURL": "https://example.com/r"}},
    {"msgtype": "actionCard", "actionCard": {"title": "tlsguard", "text": "### 2 drifted",
                                             "btns": [{"title": "Report", "actionURL": "https://example.com/r"}]}},
    {"msgtype": "link", "link": {"title": "t", "text": "x", "messageUrl": "https://example.com"}},
    {"msgtype": "feedCard", "feedCard": {"links": [{"title": "t", "messageURL": "https://e.com",
                                                    "picURL": "https://e.com/p.png"}]}},
])
def test_every_documented_msgtype_is_accepted(robot: Any, body: dict[str, Any]) -> None:
    assert post(_url(robot), body).json()["errcode"] == 0
    assert messages(robot)[-1]["msgtype"] == body["msgtype"]


def test_a_robot_without_a_secret_needs_no_signature(robot: Any) -> None:
    # Signing is one of three security settings; a robot secured otherwise takes just access_token.
    url = f"{robot.endpoints['chat']['dingtalk']}?access_token=unsigned0001"
    assert post(url, TEXT).json() == {"errcode": 0, "errmsg": "ok"}


# -- refused: token, signature, timestamp -------------------------------------------------------------------
def test_unknown_or_missing_token_is_refused_with_300005(robot: Any) -> None:
    for url in (_url(robot, token="nope"), robot.endpoints["chat"]["dingtalk"]):
        answer = post(url, TEXT)
        assert answer.status == 200  # DingTalk answers errors with HTTP 200 and a non-zero errcode
        assert answer.json() == {"errcode": 300005, "errmsg": "token is not exist"}
    assert messages(robot) == []


def test_wrong_signature_is_refused_with_310000(robot: Any) -> None:
    timestamp = _now_ms(robot)
    wrong = urllib.parse.quote_plus(dingtalk_sign(timestamp, "SECsomethingelse"))
    answer = post(_url(robot, timestamp=timestamp, sign=wrong), TEXT)
    assert answer.json() == {"errcode": 310000, "errmsg": "sign not match"}
    # the sign must be URL-encoded: an unencoded '+' arrives as a space and no longer matches
    raw = dingtalk_sign(timestamp, SECRET)
    if "+" in raw:
        assert post(_url(robot, timestamp=timestamp, sign=raw), TEXT).json()["errcode"] == 310000
    # missing timestamp/sign on a signing robot
    bare = f"{robot.endpoints['chat']['dingtalk']}?access_token={TOKEN}"
    assert post(bare, TEXT).json()["errcode"] == 310000
    assert messages(robot) == []


def test_a_timestamp_more_than_one_hour_off_is_refused_with_310000(robot: Any) -> None:
    stale = _now_ms(robot) - 3_601_000
    answer = post(_url(robot, timestamp=stale), TEXT)  # correctly signed, but stale
    assert answer.json()["errcode"] == 310000
    future = _now_ms(robot) + 3_601_000
    assert post(_url(robot, timestamp=future), TEXT).json()["errcode"] == 310000
    # within the hour is fine
    assert post(_url(robot, timestamp=_now_ms(robot) - 3_000_000), TEXT).json()["errcode"] == 0


# -- refused: body -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "errcode"), [
    (b"{'msgtype': 'text'}", 40035),  # not JSON: {"errcode":40035,"errmsg":"缺少参数 json"}
    ({"text": {"content": "no msgtype"}}, 40035),
    ({"msgtype": "text", "text": {}}, 40035),
    ({"msgtype": "markdown", "markdown": {"text": "no title"}}, 40035),
    ({"msgtype": "actionCard", "actionCard": {"title": "t", "text": "no buttons"}}, 40035),
    ({"msgtype": "text", "text": {"content": "x"}, "at": {"atMobiles": "13800000000"}}, 40035),
    ({"msgtype": "text", "text": {"content": "x"}, "at": {"isAtAll": "yes"}}, 40035),
    ({"msgtype": "image", "image": {"url": "x"}}, 40008),
])
def test_malformed_body_is_refused(robot: Any, body: Any, errcode: int) -> None:
    answer = post(_url(robot), body)
    assert answer.status == 200 and answer.json()["errcode"] == errcode
    assert messages(robot) == []


def test_not_json_names_the_missing_json_parameter(robot: Any) -> None:
    assert post(_url(robot), b"not json").json() == {"errcode": 40035, "errmsg": "缺少参数 json"}


def test_over_size_body_is_refused(robot: Any) -> None:
    # UNCONFIRMED limit (localcloud's choice): 20,000 bytes of request body
    big = {"msgtype": "text", "text": {"content": "x" * 20_000}}
    assert post(_url(robot), big).json()["errcode"] == 460101
    fits = {"msgtype": "text", "text": {"content": "x" * 19_900}}
    assert post(_url(robot), fits).json()["errcode"] == 0


# -- rate limit ----------------------------------------------------------------------------------------------
def test_over_rate_is_refused_with_130101_for_ten_minutes_then_accepted(robot: Any) -> None:
    # "每个机器人每分钟最多发送20条消息到群里，如果超过20条，会限流10分钟"
    for _ in range(20):
        assert post(_url(robot), TEXT).json()["errcode"] == 0
    answer = post(_url(robot), TEXT)
    assert answer.json() == {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
    control(robot, "POST", "/clock/advance", {"seconds": 120})  # the minute is over, the penalty is not
    assert post(_url(robot), TEXT).json()["errcode"] == 130101
    control(robot, "POST", "/clock/advance", {"seconds": 481})  # 601 s after the 21st message
    assert post(_url(robot), TEXT).json()["errcode"] == 0
    assert len(messages(robot, robot="ops-dingtalk")) == 21
    # the other robot was never throttled: the limit is per robot
    assert post(f"{robot.endpoints['chat']['dingtalk']}?access_token=unsigned0001", TEXT).json()["errcode"] == 0


# -- faults, control API, reset -------------------------------------------------------------------------------
def test_faults_are_injected_per_chat_service(robot: Any) -> None:
    control(robot, "POST", "/faults", {"kind": "error", "service": "dingtalk", "resource": "ops-dingtalk",
                                       "status": 500, "code": "-1", "message": "系统繁忙", "remaining": 1})
    answer = post(_url(robot), TEXT)
    assert answer.status == 500 and answer.json() == {"errcode": -1, "errmsg": "系统繁忙"}
    control(robot, "POST", "/faults", {"kind": "throttle", "service": "dingtalk", "remaining": 1})
    assert post(_url(robot), TEXT).json()["errcode"] == 130101
    assert post(_url(robot), TEXT).json()["errcode"] == 0
    assert control(robot, "GET", "/stats").get("dingtalk:Send") == 3


def test_control_api_creates_robots_and_filters_messages(robot: Any) -> None:
    created = control(robot, "POST", "/chat/robots", {"service": "dingtalk", "name": "made", "secret": "SECx"})
    assert created["url"] == f"{robot.endpoints['chat']['dingtalk']}?access_token={created['token']}"
    timestamp = _now_ms(robot)
    signed = f"{created['url']}&timestamp={timestamp}&sign={_sign(timestamp, 'SECx')}"
    assert post(signed, TEXT).json()["errcode"] == 0
    assert post(_url(robot), TEXT).json()["errcode"] == 0
    assert [m["robot"] for m in messages(robot)] == ["made", "ops-dingtalk"]
    assert [m["robot"] for m in messages(robot, robot="made")] == ["made"]
    assert [m["robot"] for m in messages(robot, robot=created["token"])] == ["made"]
    names = {r["name"] for r in control(robot, "GET", "/chat/robots?service=dingtalk")}
    assert names == {"made", "ops-dingtalk", "open"}
    robot.reset()
    assert robot.chat.robots() == [] and robot.chat.messages() == []


def test_seed_errors_name_the_item(cloud: Any) -> None:
    from localcloud.seed import SeedError

    with pytest.raises(SeedError, match=r"chat_robots\[0\].*service must be one of"):
        cloud.seed({"chat_robots": [{"service": "teams", "name": "x"}]})
    with pytest.raises(SeedError, match=r"chat_robots\[0\].*unknown fields"):
        cloud.seed({"chat_robots": [{"service": "dingtalk", "name": "x", "keyword": "alert"}]})


def test_endpoints_file_names_every_chat_base_url(cloud: Any) -> None:
    chat = cloud.endpoints["chat"]
    assert set(chat) == {"dingtalk", "wecom", "lark", "slack"}
    assert chat["dingtalk"].endswith("/robot/send") and chat["wecom"].endswith("/cgi-bin/webhook/send")
    assert chat["lark"].endswith("/open-apis/bot/v2/hook") and chat["slack"].endswith("/services")
    assert json.loads(json.dumps(cloud.endpoints))["chat"] == chat
