"""The handlers of the function set: parse the bytes FC hands over, call one use case, return its summary.

``sweep`` (hourly timer; ``{"verify_only": true}`` on the frequent timer), ``check`` (a batch from the sweep),
``on_change`` (EventBridge), ``webhook`` (HTTP, HMAC-signed), ``cert_renewal`` (daily timer: every custom domain
and CDN domain, with a full custom-domain discovery) and ``failed`` (async on-failure destination). The work is
in :mod:`tlsguard.functions.service` and the lifecycle it shares with the CLI. Poison events are acknowledged
with a short reason; a transient error that remained raises so FC's async retry applies.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from tlsguard.errors import EventError, TlsguardError
from tlsguard.functions import events as ev
from tlsguard.functions import service
from tlsguard.functions.service import RetryableFailure
from tlsguard.log import get_logger, mask_secrets, scrub

if TYPE_CHECKING:
    from collections.abc import Callable

log = get_logger("tlsguard.functions")
__all__ = ["RetryableFailure", "cert_renewal", "check", "failed", "on_change", "sweep", "webhook"]

def redacted(handler: Callable[[bytes | str, Any], dict[str, Any]]) -> Callable[[bytes | str, Any], dict[str, Any]]:
    """FC records what a handler returns and the message of what it raises (and hands both to destinations):
    both leave the process redacted (:func:`tlsguard.log.scrub`). A tlsguard error's message is redacted by the
    error itself; any other exception keeps its type and traceback, with its text arguments redacted."""

    @functools.wraps(handler)
    def run(event: bytes | str, context: Any) -> dict[str, Any]:
        try:
            document: dict[str, Any] = scrub(handler(event, context))
        except TlsguardError:
            raise
        except Exception as exc:
            exc.args = tuple(mask_secrets(a) if isinstance(a, str) else a for a in exc.args)
            raise
        return document

    return run


def _skipped(function: str, exc: EventError) -> dict[str, Any]:
    log.warning(f"{function} event skipped", extra={"reason": str(exc)})
    return {"function": function, "skipped": str(exc)}


@redacted
def sweep(event: bytes | str, context: Any) -> dict[str, Any]:
    """Timer: every bucket, custom domain and CDN domain; inline, or fanned out to ``tlsguard-check``."""
    try:
        return service.sweep(context, ev.parse_timer(event))
    except EventError as exc:
        return _skipped("sweep", exc)


@redacted
def cert_renewal(event: bytes | str, context: Any) -> dict[str, Any]:
    """Daily timer: every custom domain (after a full discovery) and CDN domain: renew from CAS, alert the rest."""
    try:
        return service.sweep(context, ev.parse_timer(event), kinds=service.DOMAIN_KINDS, rediscover=True,
                             command="cert_renewal")
    except EventError as exc:
        return _skipped("cert_renewal", exc)


@redacted
def check(event: bytes | str, context: Any) -> dict[str, Any]:
    """One batch of targets from the sweep's fan-out (or a manual invocation)."""
    try:
        payload = ev.load_json(event)
        service.batch_targets(payload)
    except EventError as exc:
        return _skipped("check", exc)
    return service.check(context, payload)


@redacted
def on_change(event: bytes | str, context: Any) -> dict[str, Any]:
    """EventBridge CloudEvents (one or a batch) of the writes the registry's checks react to."""
    try:
        items = ev.envelopes(event)
    except EventError as exc:
        service.bind_ids(context, "")
        log.warning("event skipped", extra={"reason": str(exc)})
        return {"function": "on_change", "handled": [], "skipped": [{"event_id": None, "reason": str(exc)}]}
    return service.on_change(context, items)


@redacted
def webhook(event: bytes | str, context: Any) -> dict[str, Any]:
    """HTTP: ``X-Tlsguard-Timestamp`` and ``X-Tlsguard-Signature: sha256=<hex HMAC(secret, ts + "." + body)>``;
    body ``{"targets"|"buckets"|"domains": [...], "apply": false}``. 401 bad signature, 400 bad body, 409 replay,
    413 too large, never a trace."""
    service.bind_ids(context, f"webhook:{getattr(context, 'request_id', '')}")
    try:
        request = ev.parse_http(event)
    except EventError as exc:
        return service.http_refusal(exc)
    return service.webhook_http(context, request)


@redacted
def failed(event: bytes | str, context: Any) -> dict[str, Any]:
    """FC's on-failure destination event: log the invocation that exhausted its retries and alert about it."""
    try:
        document = ev.load_json(event)
    except EventError as exc:
        return {"function": "failed", "skipped": str(exc)}
    if not isinstance(document, dict) or not isinstance(document.get("requestContext"), dict):
        return {"function": "failed", "skipped": "not an FC destination event"}
    return service.failed(context, document)
