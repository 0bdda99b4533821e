"""The signed generic webhook channel: the digest as JSON, HMAC-SHA256 signed (:mod:`tlsguard.notify.webhook`).

Unchanged for receivers: ``X-Tlsguard-Timestamp`` and ``X-Tlsguard-Signature: sha256=<hex>`` over
``timestamp + "." + body``. Any other notifier (anything with ``send(message)``) can stand in as a channel too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tlsguard.alerts.channels import ChannelResult, env_value

if TYPE_CHECKING:
    from tlsguard.policy.model import ChannelSpec
    from tlsguard.ports import NotifierPort


class NotifierChannel:
    """A channel that hands the digest, as it is, to a notifier."""

    type = "webhook"

    def __init__(self, name: str, notifier: NotifierPort) -> None:
        self.name = name
        self.notifier = notifier

    def deliver(self, digest: dict[str, Any]) -> ChannelResult:
        try:
            self.notifier.send(digest)
        except Exception as exc:  # reported by the dispatcher's caller, never raised into a run
            return ChannelResult(self.name, self.type, error=f"{type(exc).__name__}: {exc}")
        return ChannelResult(self.name, self.type, sent=True, messages=1)


def build(spec: ChannelSpec, language: str) -> NotifierChannel:
    from tlsguard.notify.webhook import WebhookNotifier
    from tlsguard.retry import RetryPolicy

    url = spec.url or env_value(spec, spec.url_env, "the webhook URL")
    secret = env_value(spec, spec.secret_env or "TLSGUARD_WEBHOOK_SECRET", "the signing secret")
    notifier = WebhookNotifier(url, secret, timeout_seconds=float(spec.options.get("timeout_seconds", 5.0)),
                               retry=RetryPolicy(attempts=int(spec.options.get("attempts", 3)), initial_seconds=0.5,
                                                 max_seconds=4.0))
    return NotifierChannel(spec.name, notifier)
