"""The rules for tlsguard's own outbound HTTP (alert webhooks, chat robots; not the SDKs' calls).

* :func:`check_outbound_url`: only ``https://``, or ``http://`` to a loopback address (127.0.0.0/8, ::1,
  ``localhost``: localcloud and local sinks). Anything else (``file://``, ``ftp://``, plain HTTP to another host,
  no host at all) is a :class:`~tlsguard.errors.ConfigError` that names where the URL came from, never the URL:
  a robot URL carries its token.
* :func:`no_redirect_opener`: a urllib opener that never follows a redirect. A 3xx surfaces as
  ``urllib.error.HTTPError`` with its status, so a delivery that is redirected fails, naming the status; the
  Location is not visited and the signature headers are sent nowhere else (a redirect to the ECS metadata
  service must not be fetched with them). A loopback URL is reached without any proxy.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
import urllib.request
from typing import Any

from tlsguard.errors import ConfigError

#: Longest outbound URL accepted (robot URLs are well under 300 characters).
MAX_URL_LENGTH = 2048


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1), as written in a URL (brackets allowed)."""
    name = host.strip().lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def check_outbound_url(url: str, what: str) -> None:
    """Refuse a URL tlsguard must not send to; ``what`` names its source (a variable, a policy field) in the error.

    Accepted: ``https://<host>...`` and ``http://<loopback>...``. The URL's value never appears in the message.
    """
    text = url.strip() if isinstance(url, str) else ""
    problem = ""
    if not text:
        problem = "is empty"
    elif len(text) > MAX_URL_LENGTH:
        problem = f"is longer than {MAX_URL_LENGTH} characters"
    elif any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        problem = "contains whitespace or control characters"
    else:
        try:
            parts = urllib.parse.urlsplit(text)
            host = parts.hostname or ""
            _ = parts.port  # raises ValueError for a port that is not a number in range
        except ValueError:
            problem = "is not a valid URL"
        else:
            if parts.scheme == "https" and host:
                return
            if parts.scheme == "http" and host and is_loopback_host(host):
                return
            if parts.scheme == "http" and host:
                problem = "uses http:// to a host that is not loopback"
            elif parts.scheme in ("http", "https"):
                problem = "has no host"
            else:
                problem = "uses another scheme"
    raise ConfigError(f"the URL {problem}; accepted: https://, or http:// to 127.0.0.1, ::1 or localhost", field=what)


class RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: urllib then raises ``HTTPError`` carrying the 3xx status (the answer itself)."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> None:
        return None


def no_redirect_opener(url: str) -> urllib.request.OpenerDirector:
    """An opener for ``url`` that follows no redirect and, for a loopback URL, uses no proxy."""
    handlers: list[urllib.request.BaseHandler] = [RefuseRedirects()]
    if is_loopback_host(urllib.parse.urlsplit(url).hostname or ""):
        handlers.append(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener(*handlers)
