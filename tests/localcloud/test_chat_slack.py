"""Slack incoming webhook sink (``POST /services/T../B../<secret>``): each test states the documented behaviour.

Sources are cited in docs/emulated/chat.md; figures marked UNCONFIRMED there are localcloud's choices.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from tests.localcloud._chat_http import FrozenClock, control, messages, post

TOKEN = "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"


@pytest.fixture
def robot(cloud: Any) -> Any:
    cloud.seed({"chat_robots": [{"service": "slack", "name": "ops-slack", "token": TOKEN}]})
    cloud.chat.clock = FrozenClock(cloud.clock.time())
    return cloud


def _url(cloud: Any, token: str = TOKEN) -> str:
    return f"{cloud.endpoints['chat']['slack']}/{token}"


TEXT = {"text": "tlsguard: 2 drifted"}
BLOCKS = {"text": "tlsguard: 2 drifted", "blocks": [
    {"type": "header", "text": {"type": "plain_text", "text": "tlsguard"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*2* drifted"}},
    {"type": "divider"}]}


@pytest.mark.parametrize("body", [TEXT, BLOCKS], ids=["text", "blocks"])
def test_valid_url_is_accepted_with_plain_text_ok_and_recorded(robot: Any, body: dict[str, Any]) -> None:
    answer = post(_url(robot), body)
    assert (answer.status, answer.text) == (200, "ok")  # success is HTTP 200 with the body "ok"
    [entry] = messages(robot, service="slack")
    assert entry["body"] == body and entry["msgtype"] == ("blocks" if "blocks" in body else "text")


def test_form_encoded_payload_is_accepted(robot: Any) -> None:
    form = urllib.parse.urlencode({"payload": json.dumps(TEXT)}).encode()
    answer = post(_url(robot), form, content_type="application/x-www-form-urlencoded")
    assert (answer.status, answer.text) == (200, "ok")
    assert messages(robot)[0]["body"] == TEXT


@pytest.mark.parametrize(("token", "status", "error"), [
    ("T99999999/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", 404, "no_team"),
    ("T00000000/B99999999/XXXXXXXXXXXXXXXXXXXXXXXX", 404, "no_service"),
    ("T00000000/B00000000/YYYYYYYYYYYYYYYYYYYYYYYY", 403, "invalid_token"),
    ("T00000000/B00000000", 404, "no_service"),
])
def test_unknown_url_is_refused_with_slack_plain_text_errors(robot: Any, token: str, status: int, error: str) -> None:
    answer = post(_url(robot, token), TEXT)
    assert (answer.status, answer.text) == (status, error)
    assert messages(robot) == []


@pytest.mark.parametrize(("body", "error"), [
    (b"{not json", "invalid_payload"),  # HTTP 400 invalid_payload
    ({}, "no_text"),
    ({"text": ""}, "no_text"),
    ({"text": 42}, "invalid_payload"),
    ({"blocks": [{"text": "no type"}]}, "invalid_blocks"),
    ({"blocks": "not a list"}, "invalid_blocks"),
])
def test_malformed_body_is_refused_with_400(robot: Any, body: Any, error: str) -> None:
    answer = post(_url(robot), body)
    assert (answer.status, answer.text) == (400, error)
    assert messages(robot) == []


def test_over_size_blocks_are_refused_and_long_text_is_truncated(robot: Any) -> None:
    # at most 50 blocks per message; a section's text at most 3000 characters
    many = {"blocks": [{"type": "divider"}] * 51}
    assert (post(_url(robot), many).status, post(_url(robot), many).text) == (400, "invalid_blocks")
    long_section = {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]}
    assert post(_url(robot), long_section).text == "invalid_blocks"
    assert post(_url(robot), {"blocks": [{"type": "divider"}] * 50}).text == "ok"
    # text over 40,000 characters is accepted and truncated, not refused
    robot.chat.clock.advance(5)
    assert post(_url(robot), {"text": "y" * 40_001}).text == "ok"
    entry = messages(robot)[-1]
    assert entry["truncated"] is True and len(entry["body"]["text"]) == 40_000


def test_over_rate_is_refused_with_429_and_retry_after_then_accepted(robot: Any) -> None:
    # about one message per second, short bursts allowed (burst size UNCONFIRMED: 3)
    for _ in range(3):
        assert post(_url(robot), TEXT).text == "ok"
    answer = post(_url(robot), TEXT)
    assert (answer.status, answer.text) == (429, "rate_limited")
    assert answer.headers["Retry-After"] == "1"
    robot.chat.clock.advance(1.0)
    assert post(_url(robot), TEXT).text == "ok"
    assert post(_url(robot), TEXT).status == 429
    assert len(messages(robot)) == 4


def test_injected_throttle_answers_429_with_retry_after(robot: Any) -> None:
    control(robot, "POST", "/faults", {"kind": "throttle", "service": "slack", "remaining": 1})
    answer = post(_url(robot), TEXT)
    assert answer.status == 429 and answer.headers["Retry-After"] == "1"
    assert post(_url(robot), TEXT).text == "ok"


def test_slack_tokens_are_the_url_tail(cloud: Any) -> None:
    from localcloud.seed import SeedError

    with pytest.raises(SeedError, match=r"T\.\.\./B\.\.\./"):
        cloud.seed({"chat_robots": [{"service": "slack", "name": "x", "token": "abc"}]})
    created = control(cloud, "POST", "/chat/robots", {"service": "slack", "name": "generated"})
    assert created["url"].startswith(cloud.endpoints["chat"]["slack"] + "/T")
    assert post(created["url"], TEXT).text == "ok"


def test_unknown_paths_on_the_chat_port_answer_404(cloud: Any) -> None:
    base = cloud.endpoints["chat"]["slack"].rsplit("/", 1)[0]
    answer = post(base + "/api/chat.postMessage", TEXT)
    assert answer.status == 404 and answer.json()["Code"] == "NotFound"
