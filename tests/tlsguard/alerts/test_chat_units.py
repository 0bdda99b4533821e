"""The chat channels without a network: signatures (the facts file's vectors), payload shapes, splitting measured
in each service's own units, the per-robot rate budget, retries, refusals and redaction.

Every POST goes to a scripted stand-in for ``_http.post_json`` (or, for the no-redirect and proxy rules of
``post_json`` itself, to a loopback server); time is a fake clock, so limiters and backoff never wait.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from tlsguard.alerts.channels import build_channel, dingtalk, lark, slack, wecom
from tlsguard.alerts.channels._http import (
    ChatChannel,
    Throttled,
    WindowLimiter,
    check_url,
    limiter_for,
    post_json,
)
from tlsguard.alerts.render import chat_escape, render, state_label, view
from tlsguard.errors import ConfigError
from tlsguard.policy.model import ChannelSpec

from tests.tlsguard.alerts._chat_support import (
    FAST,
    OK,
    FakeClock,
    Scripted,
    answer,
    digest,
    fresh_limiters,  # noqa: F401  (autouse)
    person_names,
    script,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.unit

SERVICES = ("dingtalk", "wecom", "lark", "slack")
CLASSES: dict[str, type[ChatChannel]] = {"dingtalk": dingtalk.DingTalkChannel, "wecom": wecom.WeComChannel,
                                         "lark": lark.LarkChannel, "slack": slack.SlackChannel}
URLS = {"dingtalk": "https://oapi.dingtalk.com/robot/send?access_token=dt0123456789abcdeftoken",
        "wecom": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=0a1b2c3d-wecom-robot-key",
        "lark": "https://open.feishu.cn/open-apis/bot/v2/hook/0a1b2c3d-lark-bot-token",
        "slack": "https://hooks.slack.com/services/T0001/B0001/slackSecretPart0123"}
SECRETS = {"dingtalk": "SECdingtalk-secret-0123456789", "lark": "lark-secret-0123456789"}
MOBILE = "13800000000"
PERSON_HEADING = {"en": "Needs a person", "zh-CN": "需要人工处理"}
PART = {"en": re.compile(r"part (\d+) of (\d+)"), "zh-CN": re.compile(r"第 (\d+)/(\d+) 部分")}


def make(service: str, clock: FakeClock, *, language: str = "en", mention: tuple[str, ...] = (MOBILE,),
         url: str = "", **kwargs: Any) -> ChatChannel:
    return CLASSES[service](f"{service}-test", url or URLS[service], language=language,
                            secret=SECRETS.get(service, ""), mention_mobiles=mention, retry=FAST,
                            clock=clock.time, monotonic=clock.time, sleep=clock.sleep, **kwargs)


# -- what each message carries, in the service's own units ---------------------------------------------------
def texts(service: str, body: dict[str, Any]) -> str:
    """All the human-readable text of one message."""
    if service == "dingtalk":
        return str(body["markdown"]["title"]) + "\n" + str(body["markdown"]["text"])
    if service == "wecom":
        return str(body[body["msgtype"]]["content"])
    if service == "lark":
        card = body["card"]
        return card["header"]["title"]["content"] + "\n" + "\n".join(e["content"] for e in card["elements"])
    return body["text"] + "\n" + "\n".join(b["text"]["text"] for b in body["blocks"])


def assert_within_limits(service: str, raw: bytes, body: dict[str, Any]) -> None:
    if service == "dingtalk":
        assert len(raw) <= dingtalk.BODY_MAX_BYTES
    elif service == "wecom":
        limit = wecom.MARKDOWN_MAX_BYTES if body["msgtype"] == "markdown" else wecom.TEXT_MAX_BYTES
        assert len(body[body["msgtype"]]["content"].encode("utf-8")) <= limit
    elif service == "lark":
        assert len(raw) <= lark.BODY_MAX_BYTES
    else:
        blocks = body["blocks"]
        assert len(blocks) <= slack.MAX_BLOCKS
        assert blocks[0]["type"] == "header" and len(blocks[0]["text"]["text"]) <= slack.HEADER_MAX_CHARS
        assert all(len(b["text"]["text"]) <= slack.SECTION_MAX_CHARS for b in blocks[1:])
        assert sum(len(b["text"]["text"]) for b in blocks) <= slack.MESSAGE_MAX_CHARS


# -- signatures ------------------------------------------------------------------------------------------------
def test_dingtalk_signature_matches_the_facts_file_vector() -> None:
    assert dingtalk.sign("SECexample", 1700000000000) == "uroalHrWHORz59talE1o26b8HuX2kOp8WlAN91F9Pj0="
    url = dingtalk.signed_url("https://oapi.dingtalk.com/robot/send?access_token=T", "SECexample", 1700000000000)
    assert url == ("https://oapi.dingtalk.com/robot/send?access_token=T&timestamp=1700000000000"
                   "&sign=uroalHrWHORz59talE1o26b8HuX2kOp8WlAN91F9Pj0%3D")
    assert dingtalk.signed_url("http://127.0.0.1/robot/send", "SECexample", 1).startswith(
        "http://127.0.0.1/robot/send?timestamp=1&sign=")


def test_lark_signature_matches_the_facts_file_vector() -> None:
    assert lark.sign("exampleSecret", 1700000000) == "9BtNtPKYmSijzqNklN4AvEyYAf7DaWBs0LL/QU4TaJo="
    assert lark.sign("exampleSecret", "1700000000") == lark.sign("exampleSecret", 1700000000)


def test_dingtalk_signs_each_attempt_with_the_time_in_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(now=1_700_000_000.0)
    posted = script(monkeypatch, answer({"errcode": 130101, "errmsg": "send too fast"}), OK["dingtalk"])
    result = make("dingtalk", clock).deliver(digest())
    assert result.sent and result.retries == 1
    first, second = (url for url, _ in posted.calls)
    assert first.startswith(URLS["dingtalk"] + "&timestamp=1700000000000&sign=")
    assert first.endswith(dingtalk.signed_url("", SECRETS["dingtalk"], 1700000000000).split("sign=")[1])
    assert "timestamp=1700000000000" not in second  # the retry is signed anew, after its backoff


def test_unsigned_robots_post_to_the_url_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    posted = script(monkeypatch, OK["dingtalk"])
    channel = dingtalk.DingTalkChannel("d", URLS["dingtalk"], retry=FAST)
    assert channel.deliver(digest()).sent
    assert posted.calls[0][0] == URLS["dingtalk"]


def test_lark_signs_in_the_body_with_the_time_in_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    posted = script(monkeypatch, OK["lark"])
    assert make("lark", FakeClock(now=1_700_000_000.5)).deliver(digest()).sent
    body = posted.bodies()[0]
    assert body["timestamp"] == "1700000000"
    assert body["sign"] == lark.sign(SECRETS["lark"], 1700000000)
    assert body["msg_type"] == "interactive"
    unsigned = lark.LarkChannel("l", URLS["lark"] + "x", retry=FAST)
    assert unsigned.deliver(digest()).sent
    assert "sign" not in posted.bodies()[1] and "timestamp" not in posted.bodies()[1]


# -- payload shapes --------------------------------------------------------------------------------------------
def test_dingtalk_markdown_mentions_people_only_for_a_critical_item(monkeypatch: pytest.MonkeyPatch) -> None:
    posted = script(monkeypatch, OK["dingtalk"])
    assert make("dingtalk", FakeClock()).deliver(digest(critical=1)).sent
    body = posted.bodies()[0]
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"].startswith("tlsguard: ")
    assert "[CRITICAL]" in body["markdown"]["text"] and "need-0000" in body["markdown"]["text"]
    assert body["markdown"]["text"].endswith(f"@{MOBILE}")  # DingTalk only notifies mobiles named in the text
    assert body["at"] == {"atMobiles": [MOBILE], "isAtAll": False}
    assert make("dingtalk", FakeClock()).deliver(digest(critical=0)).sent
    calm = posted.bodies()[1]
    assert calm["at"]["atMobiles"] == [] and f"@{MOBILE}" not in calm["markdown"]["text"]


def test_wecom_markdown_then_a_text_message_to_mention(monkeypatch: pytest.MonkeyPatch) -> None:
    posted = script(monkeypatch, OK["wecom"])
    result = make("wecom", FakeClock()).deliver(digest(needs=3, critical=2))
    assert result.sent and result.messages == 2
    markdown, mention = posted.bodies()
    assert markdown["msgtype"] == "markdown" and set(markdown) == {"msgtype", "markdown"}
    assert "**Needs a person**" in markdown["markdown"]["content"]
    assert mention["msgtype"] == "text"
    assert mention["text"]["mentioned_mobile_list"] == [MOBILE]
    assert "2 CRITICAL items need a person" in mention["text"]["content"]
    assert make("wecom", FakeClock(), mention=()).deliver(digest()).messages == 1  # nobody to mention
    assert make("wecom", FakeClock()).deliver(digest(critical=0)).messages == 1  # nothing critical


@pytest.mark.parametrize(("needs", "critical", "colour"), [(2, 1, "red"), (2, 0, "orange"), (0, 0, "green")])
def test_lark_card_header_colour_is_the_worst_severity_needing_a_person(
        monkeypatch: pytest.MonkeyPatch, needs: int, critical: int, colour: str) -> None:
    posted = script(monkeypatch, OK["lark"])
    assert make("lark", FakeClock()).deliver(digest(needs=needs, critical=critical)).sent
    card = posted.bodies()[0]["card"]
    assert card["header"]["template"] == colour
    assert card["header"]["title"] == {"tag": "plain_text", "content": view(digest(needs=needs)).title}
    assert card["elements"][0]["tag"] == "markdown"
    content = card["elements"][0]["content"]
    assert "###" not in content and "`" not in content  # card Markdown 1.0: no headings, no inline code
    assert "[console](https://" in content


def test_slack_block_kit_with_a_fallback_text_and_mrkdwn_escaping(monkeypatch: pytest.MonkeyPatch) -> None:
    posted = script(monkeypatch, OK["slack"])
    assert make("slack", FakeClock()).deliver(digest(message="a <b> & c")).sent
    body = posted.bodies()[0]
    assert body["text"] == view(digest()).title
    assert body["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": view(digest()).title,
                                                             "emoji": True}}
    sections = [b["text"] for b in body["blocks"][1:]]
    assert all(s["type"] == "mrkdwn" for s in sections)
    text = "\n".join(s["text"] for s in sections)
    assert "a &lt;b&gt; &amp; c" in text and "<b>" not in text
    assert "*Needs a person*" in text and "`need-0000`" in text and "|console>" in text


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_both_languages_render_on_every_service(monkeypatch: pytest.MonkeyPatch, service: str,
                                                 language: str) -> None:
    posted = script(monkeypatch, OK[service])
    assert make(service, FakeClock(), language=language).deliver(digest(gone=1)).sent
    shown = texts(service, posted.bodies()[0])
    assert PERSON_HEADING[language] in shown
    assert ("需要续期" if language == "zh-CN" else "renewal due") in shown  # the state, localized
    assert "renewal_due:" not in shown  # the dedup suffix is not for people


# -- splitting -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_a_500_item_digest_is_split_within_the_limits_keeping_every_person_item(
        monkeypatch: pytest.MonkeyPatch, service: str, language: str) -> None:
    clock = FakeClock()
    posted = script(monkeypatch, OK[service])
    big = digest(needs=500, fixed=0, gone=0, critical=40)
    result = make(service, clock, language=language).deliver(big)
    assert result.sent, result.error
    assert result.messages == len(posted.calls) > 1
    bodies = posted.bodies()
    for (_, raw), body in zip(posted.calls, bodies, strict=True):
        assert_within_limits(service, raw, body)
    shown = "\n".join(texts(service, body) for body in bodies)
    missing = {name for name in person_names(big) if name not in shown}
    assert not missing
    markdown = [b for b in bodies if not (service == "wecom" and b["msgtype"] == "text")]
    labels = [PART[language].search(texts(service, b)) for b in markdown]
    assert all(labels)
    assert [(int(m.group(1)), int(m.group(2))) for m in labels if m] == \
        [(i, len(markdown)) for i in range(1, len(markdown) + 1)]


@pytest.mark.parametrize("service", SERVICES)
def test_over_the_message_budget_the_rest_goes_to_the_report(monkeypatch: pytest.MonkeyPatch, service: str) -> None:
    posted = script(monkeypatch, OK[service])
    channel = make(service, FakeClock())
    big = digest(needs=6, fixed=800, gone=0, critical=1, omitted=3)
    result = channel.deliver(big)
    assert result.sent
    markdown = [b for b in posted.bodies() if not (service == "wecom" and b["msgtype"] == "text")]
    assert len(markdown) <= channel.budget
    shown = "\n".join(texts(service, b) for b in markdown)
    assert all(name in shown for name in person_names(big))
    delivered = sum(1 for i in range(800) if f"fixed-{i:04d}.example.com" in shown)
    assert 0 < delivered < 800
    assert f"{800 - delivered + 3} more items are in the run's report" in texts(service, markdown[-1])
    assert "more items are in the run's report" not in texts(service, markdown[0])
    # what was kept is the first of the rest, in the digest's order
    assert all(f"fixed-{i:04d}.example.com" in shown for i in range(delivered))


@pytest.mark.parametrize("service", SERVICES)
def test_what_needs_a_person_is_never_dropped_even_beyond_the_budget(monkeypatch: pytest.MonkeyPatch,
                                                                      service: str) -> None:
    posted = script(monkeypatch, OK[service])
    channel = make(service, FakeClock())
    long = "x" * 900
    big = digest(needs=400, fixed=50, gone=50, critical=400, message=long)
    assert channel.deliver(big).sent
    shown = "\n".join(texts(service, b) for b in posted.bodies())
    assert all(name in shown for name in person_names(big))
    if len(posted.calls) > channel.budget:  # over the budget: only what needs a person went, the rest is counted
        assert "fixed-0000.example.com" not in shown
        assert "100 more items are in the run's report" in shown


@pytest.mark.parametrize("service", SERVICES)
def test_an_item_too_big_for_any_message_is_cut_to_fit(monkeypatch: pytest.MonkeyPatch, service: str) -> None:
    posted = script(monkeypatch, OK[service])
    assert make(service, FakeClock()).deliver(digest(needs=1, fixed=0, gone=0, message="é" * 60_000)).sent
    (_, raw), body = posted.calls[0], posted.bodies()[0]
    assert_within_limits(service, raw, body)
    assert "need-0000" in texts(service, body) and "…" in texts(service, body)


@pytest.mark.parametrize("service", SERVICES)
def test_a_small_digest_is_one_message_without_a_part_label(monkeypatch: pytest.MonkeyPatch, service: str) -> None:
    posted = script(monkeypatch, OK[service])
    result = make(service, FakeClock(), mention=()).deliver(digest(omitted=7))
    assert result.sent and result.messages == 1 and len(posted.calls) == 1
    shown = texts(service, posted.bodies()[0])
    assert not PART["en"].search(shown)
    assert "7 more items are in the run's report" in shown


def test_detail_levels_and_state_labels() -> None:
    d = view(digest(needs=1, fixed=0, gone=1), "zh-CN")
    full = render(d, "markdown.j2", flavor="wecom")
    compact = render(d, "markdown.j2", flavor="wecom", detail="compact")
    minimal = render(d, "markdown.j2", flavor="wecom", detail="minimal")
    assert "控制台" in full and "accepts TLS 1.0" in full
    assert "控制台" not in compact and "accepts TLS 1.0" not in compact and "j-000000" in compact
    assert "j-000000" not in minimal and "need-0000" in minimal
    assert "偏离" in full and "需要续期" in full
    assert state_label("en", "expiring:ab12") == "expiring soon"
    assert state_label("en", "brand_new") == "brand_new"
    assert chat_escape("<a & b>", "slack") == "&lt;a &amp; b&gt;"
    assert chat_escape("<a & b>", "lark") == "&lt;a & b&gt;"
    assert chat_escape("<a & b>", "dingtalk") == "<a & b>"


# -- rate budget -----------------------------------------------------------------------------------------------
def test_window_limiter_allows_n_per_window_then_waits() -> None:
    clock = FakeClock(now=0.0)
    limiter = WindowLimiter(((20, 60.0),), clock=clock.time, sleep=clock.sleep)
    for _ in range(20):
        assert limiter.acquire() == 0
    assert limiter.acquire() == pytest.approx(60.0)
    assert clock.now == pytest.approx(60.0)


def test_lark_budget_is_five_per_second_and_a_hundred_per_minute() -> None:
    clock = FakeClock(now=0.0)
    limiter = limiter_for("lark", URLS["lark"], lark.RATE, clock=clock.time, sleep=clock.sleep)
    stamps = []
    for _ in range(101):
        limiter.acquire()
        stamps.append(clock.now)
    for i in range(len(stamps)):  # no window of the documented length holds more than allowed
        assert sum(1 for s in stamps if stamps[i] <= s < stamps[i] + 1.0) <= 5
        assert sum(1 for s in stamps if stamps[i] <= s < stamps[i] + 60.0) <= 100
    assert stamps[100] >= 60.0


def test_one_limiter_per_robot_shared_by_every_channel_and_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(now=0.0)
    script(monkeypatch, OK["dingtalk"])
    first, second = make("dingtalk", clock), make("dingtalk", clock)
    other = make("dingtalk", clock, url=URLS["dingtalk"] + "other")
    assert first.limiter is second.limiter and first.limiter is not other.limiter
    for _ in range(12):
        assert first.deliver(digest()).sent
        assert second.deliver(digest()).sent
    # 24 messages to one robot: the 21st waited for the first minute (plus margin) to pass
    assert clock.now >= 60.0
    assert sum(clock.slept) == pytest.approx(clock.now)


def test_slack_posts_at_most_one_message_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(now=0.0)
    script(monkeypatch, OK["slack"])
    channel = make("slack", clock)
    for _ in range(3):
        assert channel.deliver(digest()).sent
    assert clock.now >= 2.0


# -- retries, refusals, redaction ------------------------------------------------------------------------------
THROTTLED = {"dingtalk": answer({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}),
             "wecom": answer({"errcode": 45009, "errmsg": "api freq out of limit"}),
             "lark": answer({"code": 11232, "msg": "frequency limited"}),
             "slack": answer("rate_limited", 429, **{"Retry-After": "7"})}
REFUSED = {"dingtalk": (answer({"errcode": 310000, "errmsg": "sign not match"}), "310000"),
           "wecom": (answer({"errcode": 93000, "errmsg": "invalid webhook url"}), "93000"),
           "lark": (answer({"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}), "19021"),
           "slack": (answer("invalid_token", 403), "invalid_token")}


@pytest.mark.parametrize("service", SERVICES)
def test_throttling_is_answered_by_backoff_and_then_delivered(monkeypatch: pytest.MonkeyPatch, service: str) -> None:
    clock = FakeClock()
    posted = script(monkeypatch, THROTTLED[service], THROTTLED[service], OK[service])
    result = make(service, clock, mention=()).deliver(digest())
    assert result.sent and result.messages == 1 and result.retries == 2 and len(posted.calls) == 3
    assert len([s for s in clock.slept if s >= FAST.initial_seconds]) >= 2
    if service == "slack":
        assert max(clock.slept) >= 7.0  # Retry-After honoured


def test_lark_rate_limit_reset_header_and_both_meanings_of_9499(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    posted = script(monkeypatch, answer({"code": 99991400, "msg": "request trigger frequency limit"}, 429,
                                        **{"x-ogw-ratelimit-reset": "3"}), OK["lark"])
    assert make("lark", clock).deliver(digest()).sent and max(clock.slept) >= 3.0
    posted = script(monkeypatch, answer({"code": 9499, "msg": "too many request"}), OK["lark"])
    assert make("lark", clock).deliver(digest()).retries == 1 and len(posted.calls) == 2
    posted = script(monkeypatch, answer({"code": 9499, "msg": "Bad Request", "data": {}}, 400))
    result = make("lark", clock).deliver(digest())
    assert not result.sent and len(posted.calls) == 1 and "code 9499: Bad Request" in result.error


@pytest.mark.parametrize("service", SERVICES)
def test_a_refusal_is_a_failed_delivery_never_retried(monkeypatch: pytest.MonkeyPatch, service: str) -> None:
    refusal, code = REFUSED[service]
    posted = script(monkeypatch, refusal)
    result = make(service, FakeClock()).deliver(digest())
    assert not result.sent and result.messages == 0 and result.retries == 0 and len(posted.calls) == 1
    assert code in result.error and "refused" in result.error
    for secret in (URLS[service], SECRETS.get(service, "nothing-secret"), URLS[service].rsplit("/", 1)[-1],
                   URLS[service].rsplit("=", 1)[-1]):
        assert secret not in result.error


@pytest.mark.parametrize("service", SERVICES)
def test_the_error_never_carries_the_url_token_or_secret(monkeypatch: pytest.MonkeyPatch, service: str) -> None:
    token = URLS[service].rsplit("=", 1)[-1] if "=" in URLS[service] else URLS[service].rsplit("/", 1)[-1]
    echo = f"bad robot {URLS[service]} token {token} secret {SECRETS.get(service, 'x' * 8)}"
    refusal = {"dingtalk": answer({"errcode": 300001, "errmsg": echo}),
               "wecom": answer({"errcode": 93000, "errmsg": echo}),
               "lark": answer({"code": 19001, "msg": echo}),
               "slack": answer(echo, 404)}[service]
    script(monkeypatch, refusal)
    result = make(service, FakeClock()).deliver(digest())
    assert not result.sent and "***" in result.error
    assert URLS[service] not in result.error and token not in result.error
    if service in SECRETS:
        assert SECRETS[service] not in result.error
    assert URLS[service] not in repr(make(service, FakeClock()))


@pytest.mark.parametrize("service", SERVICES)
def test_server_errors_and_unreachable_robots_are_retried_then_reported(monkeypatch: pytest.MonkeyPatch,
                                                                         service: str) -> None:
    posted = script(monkeypatch, answer("oops", 502))
    result = make(service, FakeClock()).deliver(digest())
    assert not result.sent and len(posted.calls) == FAST.attempts and result.retries == FAST.attempts - 1
    assert "HTTP 502" in result.error and f"after {FAST.attempts} attempts" in result.error
    posted = script(monkeypatch, Throttled(f"unreachable: URLError: {URLS[service]} refused", service="chat"))
    result = make(service, FakeClock()).deliver(digest())
    assert not result.sent and len(posted.calls) == FAST.attempts
    assert "unreachable" in result.error and URLS[service] not in result.error


def test_a_failed_part_stops_the_digest_and_names_the_part(monkeypatch: pytest.MonkeyPatch) -> None:
    posted = script(monkeypatch, OK["lark"], answer({"code": 19021, "msg": "sign match fail"}))
    result = make("lark", FakeClock()).deliver(digest(needs=300, fixed=0, gone=0, critical=0))
    assert not result.sent and result.messages == 1 and len(posted.calls) == 2
    assert re.search(r"part 2 of \d+ refused: code 19021", result.error)


# -- URLs, building from the policy ----------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["https://oapi.dingtalk.com/robot/send?access_token=x", "http://127.0.0.1:8/robot",
                                 "http://localhost:9/x", "http://[::1]:9/x", "http://127.9.9.9/x"])
def test_https_or_loopback_http_urls_are_accepted(url: str) -> None:
    assert check_url(ChannelSpec("c", "dingtalk", url_env="V"), url) == url


@pytest.mark.parametrize("url", ["http://oapi.dingtalk.com/robot/send?access_token=sekrit", "ftp://h/x",
                                 "http://10.0.0.1/x?key=sekrit", "https:///nohost", "javascript:alert(1)"])
def test_other_urls_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        check_url(ChannelSpec("c", "dingtalk", url_env="ROBOT_URL"), url)
    assert "ROBOT_URL" in str(raised.value) and url not in str(raised.value) and "sekrit" not in str(raised.value)


def test_build_reads_the_url_secret_and_mentions_from_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_DT_URL", URLS["dingtalk"])
    monkeypatch.setenv("T_DT_SECRET", SECRETS["dingtalk"])
    monkeypatch.setenv("T_SLACK_URL", "http://hooks.slack.com/services/T1/B1/x")
    spec = ChannelSpec("ops", "dingtalk", url_env="T_DT_URL", secret_env="T_DT_SECRET",
                       options={"mention_mobiles": [MOBILE], "timeout_seconds": 3})
    channel = build_channel(spec, "zh-CN")
    assert isinstance(channel, dingtalk.DingTalkChannel)
    assert (channel.secret, channel.mention_mobiles, channel.timeout, channel.language) == \
        (SECRETS["dingtalk"], (MOBILE,), 3.0, "zh-CN")
    with pytest.raises(ConfigError, match="T_MISSING"):
        build_channel(ChannelSpec("ops", "lark", url_env="T_DT_URL", secret_env="T_MISSING"), "en")
    with pytest.raises(ConfigError, match="T_SLACK_URL") as raised:
        build_channel(ChannelSpec("s", "slack", url_env="T_SLACK_URL"), "en")
    assert "hooks.slack.com" not in str(raised.value)
    for service in ("wecom", "lark", "slack"):
        monkeypatch.setenv("T_URL", URLS[service])
        assert build_channel(ChannelSpec(service, service, url_env="T_URL"), "en").type == service


# -- post_json: no redirects, no proxy for loopback ------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_POST(self) -> None:
        self.seen.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/landed")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        payload = json.dumps({"errcode": 0, "errmsg": "ok"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def loopback() -> Iterator[str]:
    _Handler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_redirects_are_never_followed_and_loopback_skips_proxies(loopback: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # a proxy that does not exist
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    reply = post_json(f"{loopback}/redirect?access_token=t", b"{}", timeout=5)
    assert reply.status == 302 and _Handler.seen == ["/redirect?access_token=t"]
    result = dingtalk.DingTalkChannel("d", f"{loopback}/redirect?access_token=tok0123456789",
                                      retry=FAST).deliver(digest())
    assert not result.sent and "HTTP 302" in result.error and "tok0123456789" not in result.error
    assert "/landed" not in _Handler.seen
    assert dingtalk.DingTalkChannel("d", f"{loopback}/robot/send?access_token=t2", retry=FAST).deliver(digest()).sent


def test_scripted_answers_repeat_the_last_one() -> None:
    scripted = Scripted([OK["slack"]])
    assert scripted("u", b"{}", timeout=1).status == 200 and scripted("u", b"{}", timeout=1).status == 200
