"""Generic signed webhook: POST the alert as JSON, signed with HMAC-SHA256, retried with backoff.

Headers (documented for receivers):
``Content-Type: application/json``
``X-Tlsguard-Timestamp: <unix seconds>``
``X-Tlsguard-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``
Receivers recompute the HMAC over the exact raw body and reject stale timestamps (e.g. older than 5 minutes)
to stop replays. The secret comes from an environment variable and is never logged.

Outbound rules (:mod:`tlsguard.netsafe`): the URL must be ``https://`` (``http://`` only to a loopback address),
checked when the notifier is built; a redirect is never followed (a 3xx is a failed delivery naming the status:
the signed body and its headers go to the configured receiver or nowhere); the answer is read up to 64 KiB.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

from tlsguard.errors import CloudError, ConfigError, Transient
from tlsguard.log import register_secret
from tlsguard.netsafe import check_outbound_url, no_redirect_opener
from tlsguard.retry import RetryPolicy, call_with_retries

TIMESTAMP_HEADER = "X-Tlsguard-Timestamp"
SIGNATURE_HEADER = "X-Tlsguard-Signature"
#: Longest timestamp and signature header values considered (unix seconds; ``sha256=`` and 64 hex digits).
MAX_TIMESTAMP_CHARS = 32
MAX_SIGNATURE_CHARS = 128
#: The most of a receiver's answer that is read (it is discarded: only the status matters).
MAX_ANSWER_BYTES = 64 * 1024


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None,
           tolerance_seconds: float = 300.0) -> bool:
    """Receiver side: constant-time check of the signature and the timestamp's freshness.

    Headers can hold any bytes: a timestamp that is not short ASCII, or a signature of any other shape, is simply
    not valid (False, never an exception); the comparison is of bytes, so non-ASCII text cannot raise.
    """
    if not timestamp.isascii() or len(timestamp) > MAX_TIMESTAMP_CHARS or len(signature) > MAX_SIGNATURE_CHARS:
        return False
    try:
        age = abs((now if now is not None else time.time()) - float(timestamp))
    except ValueError:
        return False
    given = signature.encode("utf-8", "surrogatepass")
    return age <= tolerance_seconds and hmac.compare_digest(sign(secret, timestamp, body).encode(), given)


class WebhookNotifier:
    """Implements :class:`tlsguard.ports.NotifierPort`."""

    def __init__(self, url: str, secret: str, *, timeout_seconds: float = 5.0,
                 retry: RetryPolicy | None = None, url_source: str = "the webhook URL") -> None:
        """``url_source`` names where the URL came from (a variable, a policy field) in a ConfigError."""
        if not secret:
            raise ConfigError("webhook secret is empty")
        register_secret(secret)
        register_secret(url)  # a receiver's URL can carry its own token
        check_outbound_url(url, url_source)
        self.url = url.strip()
        self._secret = secret
        self.timeout_seconds = timeout_seconds
        self.retry = retry or RetryPolicy(attempts=3, initial_seconds=0.5, max_seconds=4.0)

    @classmethod
    def from_env(cls, url: str, secret_env: str, **kwargs: Any) -> WebhookNotifier:
        secret = os.environ.get(secret_env, "")
        if not secret:
            raise ConfigError(f"webhook secret variable {secret_env} is not set", field="alerts.webhook.secret_env")
        return cls(url, secret, **kwargs)

    def __repr__(self) -> str:
        return "WebhookNotifier(url=***)"

    def send(self, alert: dict[str, Any]) -> None:
        body = json.dumps(alert, sort_keys=True, default=str).encode()

        def attempt() -> None:
            timestamp = str(int(time.time()))
            request = urllib.request.Request(self.url, data=body, method="POST", headers={
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self._secret, timestamp, body),
                "User-Agent": "tlsguard-webhook/1",
            })
            try:
                with opener.open(request, timeout=self.timeout_seconds) as response:
                    response.read(MAX_ANSWER_BYTES)
            except urllib.error.HTTPError as exc:
                exc.close()
                if exc.code >= 500 or exc.code == 429:
                    raise Transient(f"webhook answered {exc.code}", service="webhook", operation="POST",
                                    status=exc.code) from None
                if 300 <= exc.code < 400:
                    raise CloudError(f"webhook answered {exc.code} (a redirect; not followed)", service="webhook",
                                     operation="POST", code="Redirect", status=exc.code) from None
                raise CloudError(f"webhook answered {exc.code}", service="webhook", operation="POST",
                                 status=exc.code) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                raise Transient(f"webhook unreachable: {type(reason).__name__}: {reason}", service="webhook",
                                operation="POST") from None

        opener = no_redirect_opener(self.url)
        call_with_retries(self.retry, attempt)
