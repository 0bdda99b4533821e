"""Alert channels: where a run's digest goes (DingTalk, WeCom, Lark/Feishu, Slack, email, the signed webhook).

The alert path hands each run's one digest to the :class:`Dispatcher`; the policy's routes
(``alerts.routes``) decide which items each channel gets; each channel renders its part in the policy's
language within the service's own limits (rate, message size) and checks the service's answer: a refused message
is a failed delivery. A failed delivery is reported, never raised (it never blocks a remediation); the alert path
keeps what the channel did not take in its outbox (:mod:`tlsguard.alerts.outbox`).

A channel implementation is one module here with ``build(spec, language) -> Channel``; :data:`BUILDERS` maps a
channel type to it.
"""

from __future__ import annotations

import fnmatch
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tlsguard.alerts.path import MAX_ITEMS_PER_SECTION
from tlsguard.errors import ConfigError

if TYPE_CHECKING:
    from tlsguard.policy.model import AlertSettings, ChannelSpec, Route
    from tlsguard.ports import NotifierPort

#: Channel type → module under tlsguard.alerts.channels (imported only when a policy uses it: cold start).
BUILDERS = {"webhook": "webhook", "dingtalk": "dingtalk", "wecom": "wecom", "lark": "lark", "slack": "slack",
            "email": "email"}
#: The digest's sections that hold items a route can select.
ROUTED_SECTIONS = ("needs_attention", "resolved", "remediated", "verifications")


@dataclass
class ChannelResult:
    """What one channel did with one digest."""

    name: str
    type: str
    sent: bool = False
    messages: int = 0  # messages delivered (a digest too big for one message is split)
    items: int = 0  # items of the digest routed to this channel
    error: str = ""
    retries: int = 0  # throttled or failed attempts retried

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "sent": self.sent, "messages": self.messages,
                "items": self.items, "error": self.error or None, "retries": self.retries}


class Channel(Protocol):
    """One configured destination."""

    name: str
    type: str

    def deliver(self, digest: dict[str, Any]) -> ChannelResult:
        """Render and send ``digest`` (already routed to this channel); never raise for a refused message."""
        ...


def _matches(route: Route, item: dict[str, Any]) -> bool:
    match = route.match
    target = item.get("target") or {}
    severity = str(item.get("severity") or "").lower()
    checks = set(item.get("checks") or ([item["check"]] if item.get("check") else []))
    if match.severities and severity not in match.severities:
        return False
    if match.checks and not checks & match.checks:
        return False
    if match.kinds and target.get("kind") not in match.kinds:
        return False
    return not (match.targets and not any(fnmatch.fnmatchcase(str(target.get("name") or ""), glob)
                                           for glob in match.targets))


def _severity_rank(item: dict[str, Any]) -> int:
    from tlsguard.model import Severity

    try:
        return Severity(str(item.get("severity") or "").upper()).rank
    except ValueError:
        return len(Severity)


def routed(digest: dict[str, Any], routes: tuple[Route, ...], channel: str, *,
           limit: int | None = MAX_ITEMS_PER_SECTION) -> dict[str, Any]:
    """The part of ``digest`` that ``channel`` gets: every item some route sends there (all of them without routes),
    at most ``limit`` per section listed (the worst first) and the rest counted in ``omitted``: the run's report lists
    them. ``limit=None``: every routed item (what a failed channel should have carried).

    Counts and run-level notices always go to every channel.
    """
    mine = [route for route in routes if channel in route.channels]
    part = dict(digest)
    omitted = int(digest.get("omitted") or 0)
    for section in ROUTED_SECTIONS:
        items = [item for item in digest.get(section) or [] if not routes or any(_matches(r, item) for r in mine)]
        items.sort(key=_severity_rank)  # stable: the digest's own order within a severity (batches' parts merged)
        if limit is not None and len(items) > limit:
            omitted += len(items) - limit
            items = items[:limit]
        part[section] = items
    part["omitted"] = omitted
    return part


def has_items(digest: dict[str, Any]) -> bool:
    return any(digest.get(section) for section in (*ROUTED_SECTIONS, "notices"))


class Dispatcher:
    """The run's channels and routes: one call delivers a digest everywhere it belongs."""

    def __init__(self, channels: list[Channel], routes: tuple[Route, ...] = ()) -> None:
        self.channels = channels
        self.routes = routes

    def dispatch(self, digest: dict[str, Any], *, only: list[str] | None = None) -> list[ChannelResult]:
        """Deliver ``digest`` to every channel (or those named in ``only``) its items are routed to."""
        results = []
        for channel in self.channels:
            if only is not None and channel.name not in only:
                continue
            part = routed(digest, self.routes, channel.name)
            if not has_items(part):
                continue
            try:
                result = channel.deliver(part)
            except Exception as exc:  # a channel bug must not cost the other channels their digest
                result = ChannelResult(channel.name, channel.type, error=f"{type(exc).__name__}: {exc}")
            result.items = sum(len(part.get(section) or []) for section in ROUTED_SECTIONS)
            results.append(result)
        return results

    def deliver_to(self, name: str, digest: dict[str, Any]) -> ChannelResult | None:
        """Deliver ``digest`` to the channel ``name`` as it is, without routing (its items were routed there when
        it was first sent: the outbox's delayed digests); None when no such channel is configured any more."""
        channel = next((c for c in self.channels if c.name == name), None)
        if channel is None:
            return None
        part = routed(digest, (), name)
        try:
            result = channel.deliver(part)
        except Exception as exc:  # as in dispatch: a channel bug is a failed delivery
            result = ChannelResult(channel.name, channel.type, error=f"{type(exc).__name__}: {exc}")
        result.items = sum(len(part.get(section) or []) for section in ROUTED_SECTIONS)
        return result

    @classmethod
    def single(cls, notifier: NotifierPort, name: str = "webhook") -> Dispatcher:
        """One plain notifier (anything with ``send(message)``) as the only channel."""
        from tlsguard.alerts.channels.webhook import NotifierChannel

        return cls([NotifierChannel(name, notifier)])


def build_dispatcher(settings: AlertSettings) -> Dispatcher | None:
    """The policy's channels (their URLs and secrets read from the environment now), or None without any."""
    if not settings.channels:
        return None
    channels = [build_channel(spec, settings.language) for spec in settings.channels]
    return Dispatcher(channels, settings.routes)


def build_channel(spec: ChannelSpec, language: str) -> Channel:
    module = BUILDERS.get(spec.type)
    if module is None:
        raise ConfigError(f"unknown channel type {spec.type!r}", field=f"alerts.channels.{spec.name}")
    channel: Channel = importlib.import_module(f"tlsguard.alerts.channels.{module}").build(spec, language)
    return channel


def env_value(spec: ChannelSpec, variable: str, what: str) -> str:
    """A channel's secret or URL from the environment; ConfigError (naming the variable, never the value)."""
    from tlsguard import settings
    from tlsguard.log import register_secret

    if not variable:
        raise ConfigError(f"channel {spec.name!r} ({spec.type}) needs {what}", field=f"alerts.channels.{spec.name}")
    value = settings.env(variable)
    if not value:
        raise ConfigError(f"channel {spec.name!r}: the environment variable {variable} ({what}) is not set",
                          field=f"alerts.channels.{spec.name}")
    register_secret(value)
    return value
