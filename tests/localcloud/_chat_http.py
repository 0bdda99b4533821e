"""Plain urllib helpers for the chat sink conformance tests (no tlsguard code: these are the wire formats)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class Answer:
    """One HTTP answer: status, headers, raw body, and the body as JSON when it is JSON."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


def post(url: str, body: Any, content_type: str = "application/json; charset=utf-8") -> Answer:
    """POST ``body`` (a JSON-able value, or bytes sent as they are) and return the answer, errors included."""
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Answer(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read())


def control(cloud: Any, method: str, path: str, body: Any = None) -> Any:
    """Call localcloud's control API and return its JSON answer (raises on an HTTP error)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(cloud.endpoints["control"] + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def messages(cloud: Any, **query: str) -> list[dict[str, Any]]:
    """``GET /chat/messages`` with optional ``service``/``robot`` filters."""
    suffix = "&".join(f"{key}={value}" for key, value in query.items())
    result: list[dict[str, Any]] = control(cloud, "GET", "/chat/messages" + (f"?{suffix}" if suffix else ""))
    return result


class FrozenClock:
    """A clock a test moves by hand, installed as the chat sinks' time source (``cloud.chat.clock``)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
