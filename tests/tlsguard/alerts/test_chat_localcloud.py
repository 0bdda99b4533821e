"""The chat channels against localcloud's chat sinks: DingTalk ``/robot/send``, WeCom ``/cgi-bin/webhook/send``,
Lark ``/open-apis/bot/v2/hook/<token>`` and Slack ``/services/...``, each checking the product's signature, body
shape, size and rate the way the product does (``docs/emulated/chat.md``).

Robots come from the seed's ``chat_robots``, their base URLs from the endpoints file's ``chat`` map, and what a
sink accepted from the control API (``GET /chat/messages``). The channels are built as a run builds them: from a
policy's channel spec, the URL and secret read from environment variables.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
from tlsguard.alerts.channels import Dispatcher, _http, build_channel, build_dispatcher, lark
from tlsguard.alerts.path import AlertPath
from tlsguard.policy.model import AlertSettings, ChannelSpec
from tlsguard.retry import RetryPolicy

from localcloud.faults import FaultRule
from tests.tlsguard.alerts._chat_support import (
    FAST,
    digest,
    fresh_limiters,  # noqa: F401  (autouse)
    person_names,
)

if TYPE_CHECKING:
    from tlsguard.alerts.channels._http import ChatChannel

    from localcloud.cloud import LocalCloud

SERVICES = ("dingtalk", "wecom", "lark", "slack")
TOKENS = {"dingtalk": "0f3c9a1be2d44c5b8a7e6d5c4b3a2910", "wecom": "6a1f4e2c-93b7-4d5e-8f10-2b3c4d5e6f70",
          "lark": "2d9e7c1a-4b3f-4e8a-9c6d-5f1e2a3b4c5d", "slack": "T0LOCAL01/B0LOCAL01/s3cr3tSlackHookPart99"}
SECRETS = {"dingtalk": "SEClocalcloud-dingtalk-secret-01", "lark": "localcloud-lark-secret-01"}
MOBILE = "13800000000"
PERSON_HEADING = {"en": "Needs a person", "zh-CN": "需要人工处理"}


def robot_url(endpoints: dict[str, Any], service: str, token: str) -> str:
    base = endpoints["chat"][service]
    if service == "dingtalk":
        return f"{base}?access_token={token}"
    if service == "wecom":
        return f"{base}?key={token}"
    return f"{base}/{token}"


def seed_robot(cloud: LocalCloud, service: str) -> None:
    """One robot of ``service``, named after it, with the token (and secret) above."""
    robot: dict[str, Any] = {"service": service, "name": f"{service}-robot", "token": TOKENS[service]}
    if service in SECRETS:
        robot["secret"] = SECRETS[service]
    cloud.seed({"chat_robots": [robot]})


def channel_for(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch, service: str, *, language: str = "en",
                token: str = "", secret: str | None = None) -> ChatChannel:
    """The channel a run builds from ``{name, type, url_env, secret_env, mention_mobiles}``."""
    monkeypatch.setenv(f"TLSGUARD_TEST_{service.upper()}_URL", robot_url(cloud.endpoints, service,
                                                                        token or TOKENS[service]))
    secret_env = ""
    if service in SECRETS:
        secret_env = f"TLSGUARD_TEST_{service.upper()}_SECRET"
        monkeypatch.setenv(secret_env, SECRETS[service] if secret is None else secret)
    spec = ChannelSpec(f"{service}-ops", service, url_env=f"TLSGUARD_TEST_{service.upper()}_URL",
                       secret_env=secret_env, options={"mention_mobiles": [MOBILE]})
    channel = build_channel(spec, language)
    assert isinstance(channel, _http.ChatChannel)
    channel.retry = FAST
    channel.clock = cloud.clock.time  # the sinks check signatures against localcloud's clock
    return channel


def accepted(cloud: LocalCloud, service: str) -> list[dict[str, Any]]:
    """What the sink accepted, through the control API."""
    url = f"{cloud.endpoints['control']}/chat/messages?service={service}"
    with urllib.request.urlopen(url, timeout=10) as response:
        entries: list[dict[str, Any]] = json.loads(response.read())
    return entries


class Spy:
    """Wraps the real ``post_json``: every body sent, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bodies: list[dict[str, Any]] = []
        self._real = _http.post_json
        monkeypatch.setattr(_http, "post_json", self)

    def __call__(self, url: str, body: bytes, *, timeout: float) -> _http.Answer:
        self.bodies.append(json.loads(body.decode("utf-8")))
        return self._real(url, body, timeout=timeout)


def shown(service: str, body: dict[str, Any]) -> str:
    if service == "dingtalk":
        return str(body["markdown"]["text"])
    if service == "wecom":
        return str(body[body["msgtype"]]["content"])
    if service == "lark":
        return "\n".join(e["content"] for e in body["card"]["elements"]) + body["card"]["header"]["title"]["content"]
    return "\n".join(b["text"]["text"] for b in body["blocks"])


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_a_digest_is_delivered_and_recorded_exactly(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch,
                                                     service: str, language: str) -> None:
    seed_robot(cloud, service)
    spy = Spy(monkeypatch)
    result = channel_for(cloud, monkeypatch, service, language=language).deliver(digest(needs=3, critical=1))
    assert result.sent, result.error
    entries = accepted(cloud, service)
    assert [entry["body"] for entry in entries] == spy.bodies  # the signature was accepted, nothing was altered
    assert all(entry["robot"] == f"{service}-robot" for entry in entries)
    assert PERSON_HEADING[language] in shown(service, entries[0]["body"])
    expected = {"dingtalk": ["markdown"], "wecom": ["markdown", "text"], "lark": ["interactive"],
                "slack": ["blocks"]}[service]
    assert [entry["msgtype"] for entry in entries] == expected and result.messages == len(expected)
    if service == "dingtalk":
        assert entries[0]["body"]["at"]["atMobiles"] == [MOBILE]
    if service == "wecom":
        assert entries[1]["mentions"]["mentioned_mobile_list"] == [MOBILE]


@pytest.mark.parametrize("service", SERVICES)
def test_a_wrong_secret_is_refused_and_reported_as_a_failed_delivery(cloud: LocalCloud,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     service: str) -> None:
    seed_robot(cloud, service)
    if service in SECRETS:  # the signing services: the right robot, the wrong secret
        wrong_secret = "SECwrong-secret-0000" if service == "dingtalk" else "wrong-lark-secret-0000"
        channel = channel_for(cloud, monkeypatch, service, secret=wrong_secret)
        secret = wrong_secret
    else:  # the URL is the secret: a wrong one
        wrong = TOKENS[service][:-4] + ("0000" if service == "slack" else "ffff")
        channel = channel_for(cloud, monkeypatch, service, token=wrong)
        secret = wrong
    result = channel.deliver(digest())
    assert not result.sent and result.messages == 0 and result.retries == 0
    code = {"dingtalk": "310000", "wecom": "93000", "lark": "19021", "slack": "invalid_token"}[service]
    assert code in result.error
    for value in (secret, TOKENS[service], TOKENS[service].rsplit("/", 1)[-1], channel.url):
        assert value not in result.error
    assert accepted(cloud, service) == []
    robots = {r["name"]: r for r in cloud.chat.robots(service)}
    if service in SECRETS:
        assert robots[f"{service}-robot"]["refused"] == 1  # refused once: never retried


@pytest.mark.parametrize("service", SERVICES)
def test_throttling_is_answered_by_backoff_and_eventually_delivered(cloud: LocalCloud,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   service: str) -> None:
    seed_robot(cloud, service)
    cloud.faults.add(FaultRule("throttle", service=service, operation="Send", remaining=2))
    channel = channel_for(cloud, monkeypatch, service)
    result = channel.deliver(digest(critical=0))
    assert result.sent, result.error
    assert result.retries == 2 and result.messages == 1
    assert len(accepted(cloud, service)) == 1


@pytest.mark.parametrize("service", ["lark", "slack"])
def test_a_robot_busy_with_other_senders_throttles_and_the_channel_waits(cloud: LocalCloud,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        service: str) -> None:
    """Another process posts to the same robot (its own limiter knows nothing of ours): the sink's own window
    (Lark 5/s, Slack 1/s with a burst of 3) answers 11232 / 429 and the channel backs off until admitted."""
    seed_robot(cloud, service)
    frozen = [time.time()]
    cloud.chat.clock = lambda: frozen[0]  # the sink's window does not move until we say so
    url = robot_url(cloud.endpoints, service, TOKENS[service])
    other = {"lark": {"msg_type": "text", "content": {"text": "other sender"}},
             "slack": {"text": "other sender"}}[service]
    if service == "lark":
        other["timestamp"] = str(int(cloud.clock.time()))
        other["sign"] = lark.sign(SECRETS["lark"], other["timestamp"])
    for _ in range(5 if service == "lark" else 3):
        assert _http.post_json(url, _http.encode(other), timeout=10).status == 200
    channel = channel_for(cloud, monkeypatch, service)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # time passes for the sink only when the channel waits
        sleeps.append(seconds)
        frozen[0] += seconds

    channel.sleep = sleep
    channel.retry = RetryPolicy(attempts=4, initial_seconds=0.5, max_seconds=2.0, jitter_seconds=0.0)
    result = channel.deliver(digest(critical=0))
    assert result.sent, result.error
    assert result.retries >= 1 and sleeps
    assert [e["body"].get("text") for e in accepted(cloud, service)][-1] != "other sender"


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_a_500_item_digest_is_delivered_within_the_limits_with_every_person_item(
        cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch, service: str, language: str) -> None:
    seed_robot(cloud, service)
    big = digest(needs=150, reminders=50, fixed=200, gone=100, critical=20, notices=3)
    assert sum(len(big[s]) for s in ("needs_attention", "remediated", "resolved", "notices")) == 503
    channel = channel_for(cloud, monkeypatch, service, language=language)
    result = channel.deliver(big)
    assert result.sent, result.error  # the sink refuses anything over its size or rate limits
    entries = accepted(cloud, service)
    assert len(entries) == result.messages > 1
    text = "\n".join(shown(service, e["body"]) for e in entries)
    names = person_names(big)
    assert not {name for name in names if name not in text}
    assert all(f"ListBuckets failed ({i})" in text for i in range(3))
    assert PERSON_HEADING[language] in text
    part = "第 1/" if language == "zh-CN" else "part 1 of "
    assert part in shown(service, entries[0]["body"])


def test_the_alert_path_delivers_one_digest_to_all_four_services(cloud: LocalCloud,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    specs = []
    for service in SERVICES:
        seed_robot(cloud, service)
        monkeypatch.setenv(f"TLSGUARD_TEST_{service.upper()}_URL", robot_url(cloud.endpoints, service,
                                                                            TOKENS[service]))
        secret_env = ""
        if service in SECRETS:
            secret_env = f"TLSGUARD_TEST_{service.upper()}_SECRET"
            monkeypatch.setenv(secret_env, SECRETS[service])
        specs.append(ChannelSpec(f"{service}-ops", service, url_env=f"TLSGUARD_TEST_{service.upper()}_URL",
                                 secret_env=secret_env, options={"mention_mobiles": [MOBILE]}))
    dispatcher = build_dispatcher(AlertSettings(language="zh-CN", channels=tuple(specs)))
    assert isinstance(dispatcher, Dispatcher)
    path = AlertPath(store=None, notifier=dispatcher, settings=AlertSettings(), clock=cloud.clock.time)
    delivery = path.send(digest(needs=4, critical=2))
    assert delivery.sent and not delivery.error
    assert [(c.type, c.sent, c.items) for c in delivery.channels] == [(s, True, 6) for s in SERVICES]
    assert all(accepted(cloud, service) for service in SERVICES)
