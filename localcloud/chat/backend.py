"""The state behind the chat sinks: robots, accepted messages, rate windows, and the two signing schemes.

Limits, codes and sources are listed in ``docs/emulated/chat.md``. Rate windows run on :attr:`ChatSinks.clock`,
which is localcloud's clock (``cloud.clock.time``, moved by ``POST /clock/advance``); a test may replace it with
a frozen clock for sub-second windows (Lark's 5/s, Slack's 1/s), and :meth:`ChatSinks.reset` restores it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import string
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from localcloud.cloud import LocalCloud

#: The chat products localcloud emulates, in the order the endpoints file lists them.
CHAT_SERVICES = ("dingtalk", "wecom", "lark", "slack")

#: Where each product's webhook lives on the chat port (the endpoints file's ``chat`` values are these paths).
BASE_PATHS = {
    "dingtalk": "/robot/send",
    "wecom": "/cgi-bin/webhook/send",
    "lark": "/open-apis/bot/v2/hook",
    "slack": "/services",
}

# -- documented limits (docs/emulated/chat.md cites each) -------------------------------------------------------
#: DingTalk: 20 messages per minute per robot; the 21st throttles the robot for 10 minutes.
DINGTALK_PER_MINUTE = 20
DINGTALK_PENALTY_SECONDS = 600.0
#: DingTalk: the signature's timestamp must be within one hour of the server's time.
DINGTALK_TIMESTAMP_WINDOW_MS = 3_600_000
#: DingTalk: message size (UNCONFIRMED figure; localcloud's choice), UTF-8 bytes of the request body.
DINGTALK_MAX_BODY_BYTES = 20_000
#: WeCom: 20 messages per minute per robot; text.content 2048 bytes, markdown.content 4096 bytes.
WECOM_PER_MINUTE = 20
WECOM_TEXT_MAX_BYTES = 2048
WECOM_MARKDOWN_MAX_BYTES = 4096
#: Lark: 100 per minute and 5 per second per bot; request body at most 20 KB; timestamp within one hour.
LARK_PER_MINUTE = 100
LARK_PER_SECOND = 5
LARK_MAX_BODY_BYTES = 20 * 1024
LARK_TIMESTAMP_WINDOW_SECONDS = 3600
#: Slack: about one message per second per webhook, short bursts allowed (burst size UNCONFIRMED: 3).
SLACK_RATE_PER_SECOND = 1.0
SLACK_BURST = 3
#: Slack: at most 50 blocks, section text at most 3000 characters, text truncated after 40,000 characters.
SLACK_MAX_BLOCKS = 50
SLACK_MAX_SECTION_TEXT = 3000
SLACK_TEXT_TRUNCATE = 40_000

_SLACK_TOKEN = re.compile(r"^(T[A-Z0-9]+)/(B[A-Z0-9]+)/([A-Za-z0-9]+)$")


class ChatSeedError(ValueError):
    """A robot that cannot be created; the message names the item and field."""


def dingtalk_sign(timestamp_ms: int | str, secret: str) -> str:
    """DingTalk's ``sign`` before URL encoding: base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}"))."""
    message = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode("ascii")


def lark_sign(timestamp_s: int | str, secret: str) -> str:
    """Lark's ``sign``: base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"")); the timestamp is in seconds."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


def _new_token(service: str) -> str:
    if service == "dingtalk":
        return secrets.token_hex(32)
    if service == "slack":
        upper = string.ascii_uppercase + string.digits
        alnum = string.ascii_letters + string.digits
        return ("T" + "".join(secrets.choice(upper) for _ in range(10)) + "/B"
                + "".join(secrets.choice(upper) for _ in range(10)) + "/"
                + "".join(secrets.choice(alnum) for _ in range(24)))
    return str(uuid.uuid4())


@dataclass
class Robot:
    """One webhook: its product, a name (the fault rules' ``resource``), the token in its URL, its signing secret."""

    service: str
    name: str
    token: str
    secret: str = ""
    refused: int = 0

    def as_dict(self, base_url: str | None) -> dict[str, Any]:
        return {"service": self.service, "name": self.name, "token": self.token, "secret": self.secret,
                "url": robot_url(self, base_url) if base_url else None, "refused": self.refused}


def robot_url(robot: Robot, base_url: str) -> str:
    """The URL a client posts to (DingTalk's still needs ``&timestamp=..&sign=..`` when the robot signs)."""
    if robot.service == "dingtalk":
        return f"{base_url}?access_token={robot.token}"
    if robot.service == "wecom":
        return f"{base_url}?key={robot.token}"
    return f"{base_url}/{robot.token}"


class SlidingWindow:
    """At most ``limit`` events in any ``seconds``-long window (several windows may apply to one robot)."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.events: deque[float] = deque()

    def retry_after(self, now: float) -> float:
        """0 when one more event fits now, else the seconds until the oldest event leaves the window."""
        while self.events and self.events[0] <= now - self.seconds:
            self.events.popleft()
        if len(self.events) < self.limit:
            return 0.0
        return self.events[0] + self.seconds - now

    def add(self, now: float) -> None:
        self.events.append(now)


class TokenBucket:
    """``capacity`` tokens refilled at ``rate`` per second (Slack's "1 per second, short bursts allowed")."""

    def __init__(self, capacity: int, rate: float, now: float) -> None:
        self.capacity = float(capacity)
        self.rate = rate
        self.tokens = float(capacity)
        self.last = now

    def retry_after(self, now: float) -> float:
        if now > self.last:
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = max(self.last, now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def add(self, now: float) -> None:
        self.tokens -= 1.0


@dataclass
class RateState:
    """A robot's windows plus DingTalk's penalty: once over the limit, refused until ``blocked_until``."""

    windows: list[SlidingWindow | TokenBucket] = field(default_factory=list)
    blocked_until: float = 0.0


class ChatSinks:
    """Robots of the four products, the messages they accepted (in order) and their rate windows."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self._default_clock: Callable[[], float] = cloud.clock.time
        #: The time source of the rate windows and signature checks (localcloud's clock unless a test pins it).
        self.clock: Callable[[], float] = self._default_clock
        self._lock = threading.Lock()
        self._robots: dict[tuple[str, str], Robot] = {}
        self._rates: dict[tuple[str, str], RateState] = {}
        self._messages: list[dict[str, Any]] = []
        self._seq = 0

    # -- robots --------------------------------------------------------------------------------------------
    def add_robot(self, spec: dict[str, Any]) -> Robot:
        """Create (or replace, by token) a robot from ``{service, name?, token?, secret?}``."""
        if not isinstance(spec, dict):
            raise ChatSeedError(f"a robot is a mapping {{service, name, token, secret}}, got {spec!r}")
        unknown = set(spec) - {"service", "name", "token", "secret"}
        if unknown:
            raise ChatSeedError(f"robot {spec.get('name', '?')!r}: unknown fields {', '.join(sorted(unknown))}")
        service = str(spec.get("service", ""))
        if service not in CHAT_SERVICES:
            raise ChatSeedError(f"robot {spec.get('name', '?')!r}: service must be one of "
                                f"{', '.join(CHAT_SERVICES)}, got {service!r}")
        token = str(spec.get("token") or _new_token(service))
        name = str(spec.get("name") or token)
        secret = str(spec.get("secret") or "")
        if not re.fullmatch(r"[A-Za-z0-9._~/-]+", token):
            raise ChatSeedError(f"robot {name!r}: token {token!r} must be URL-safe (letters, digits, -._~)")
        if service == "slack":
            if not _SLACK_TOKEN.match(token):
                raise ChatSeedError(f"robot {name!r}: a Slack token is the URL's tail T.../B.../<secret> "
                                    f"(e.g. T0001/B0001/abcdef), got {token!r}")
        elif "/" in token:
            raise ChatSeedError(f"robot {name!r}: token {token!r} cannot contain '/'")
        if secret and service in ("wecom", "slack"):
            raise ChatSeedError(f"robot {name!r}: {service} webhooks are not signed (the URL is the secret); "
                                "drop 'secret'")
        robot = Robot(service, name, token, secret)
        with self._lock:
            # A robot of the same product and name is replaced (re-seeding is idempotent for seeded tokens).
            for key in [k for k, other in self._robots.items() if other.service == service and other.name == name]:
                del self._robots[key]
                self._rates.pop(key, None)
            self._robots[(service, token)] = robot
            self._rates.pop((service, token), None)
        return robot

    def seed(self, items: list[Any]) -> None:
        for index, spec in enumerate(items):
            try:
                self.add_robot(spec)
            except ChatSeedError as exc:
                raise ChatSeedError(f"chat_robots[{index}]: {exc}") from None

    def robot(self, service: str, token: str) -> Robot | None:
        with self._lock:
            return self._robots.get((service, token))

    def slack_lookup(self, team: str, hook: str, secret: str) -> tuple[Robot | None, str]:
        """The Slack robot for ``/services/<team>/<hook>/<secret>``, or None and Slack's error string."""
        with self._lock:
            robots = [r for r in self._robots.values() if r.service == "slack"]
        same_team = [r for r in robots if r.token.split("/")[0] == team]
        if not same_team:
            return None, "no_team"
        same_hook = [r for r in same_team if r.token.split("/")[1] == hook]
        if not same_hook:
            return None, "no_service"
        for robot in same_hook:
            if hmac.compare_digest(robot.token.split("/")[2], secret):
                return robot, ""
        return None, "invalid_token"

    def robots(self, service: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            robots = list(self._robots.values())
        return [r.as_dict(self.base_url(r.service)) for r in robots if service in (None, "", r.service)]

    def base_url(self, service: str) -> str | None:
        chat = self.cloud.endpoints.get("chat")
        return str(chat[service]) if isinstance(chat, dict) and service in chat else None

    # -- rates ---------------------------------------------------------------------------------------------
    def _rate_state(self, robot: Robot, now: float) -> RateState:
        key = (robot.service, robot.token)
        state = self._rates.get(key)
        if state is None:
            windows: list[SlidingWindow | TokenBucket]
            if robot.service == "dingtalk":
                windows = [SlidingWindow(DINGTALK_PER_MINUTE, 60.0)]
            elif robot.service == "wecom":
                windows = [SlidingWindow(WECOM_PER_MINUTE, 60.0)]
            elif robot.service == "lark":
                windows = [SlidingWindow(LARK_PER_SECOND, 1.0), SlidingWindow(LARK_PER_MINUTE, 60.0)]
            else:
                windows = [TokenBucket(SLACK_BURST, SLACK_RATE_PER_SECOND, now)]
            state = self._rates[key] = RateState(windows)
        return state

    def admit(self, robot: Robot) -> float:
        """Count one message against the robot's windows: 0 when admitted, else seconds until it would be.

        A refused message does not count. DingTalk's robot, once over 20 in a minute, stays throttled for
        10 minutes (every message in that time is refused).
        """
        now = self.clock()
        with self._lock:
            state = self._rate_state(robot, now)
            if now < state.blocked_until:
                return state.blocked_until - now
            wait = max(window.retry_after(now) for window in state.windows)
            if wait > 0:
                if robot.service == "dingtalk":
                    state.blocked_until = now + DINGTALK_PENALTY_SECONDS
                    return DINGTALK_PENALTY_SECONDS
                return wait
            for window in state.windows:
                window.add(now)
            return 0.0

    def refused(self, robot: Robot) -> None:
        """Count a refusal (bad signature, bad body, over the rate) on the robot."""
        with self._lock:
            robot.refused += 1

    # -- messages ------------------------------------------------------------------------------------------
    def record(self, robot: Robot, msgtype: str, body: Any, request_id: str, **extra: Any) -> dict[str, Any]:
        with self._lock:
            self._seq += 1
            entry = {"seq": self._seq, "service": robot.service, "robot": robot.name, "msgtype": msgtype,
                     "time": self.clock(), "request_id": request_id, "body": body, **extra}
            self._messages.append(entry)
            return dict(entry)

    def messages(self, service: str | None = None, robot: str | None = None) -> list[dict[str, Any]]:
        """Accepted messages in order, optionally of one product and/or one robot (by name or token)."""
        with self._lock:
            entries = list(self._messages)
            tokens = {(r.service, r.name): r.token for r in self._robots.values()}
        result = []
        for entry in entries:
            if service and entry["service"] != service:
                continue
            if robot and robot not in (entry["robot"], tokens.get((entry["service"], entry["robot"]))):
                continue
            result.append(dict(entry))
        return result

    def clear_messages(self) -> None:
        with self._lock:
            self._messages.clear()

    def reset(self) -> None:
        """Forget robots, messages and windows; restore localcloud's clock."""
        with self._lock:
            self._robots.clear()
            self._rates.clear()
            self._messages.clear()
            self._seq = 0
        self.clock = self._default_clock

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            count = len(self._messages)
        return {"robots": self.robots(), "messages": count}


def ceil_seconds(seconds: float) -> int:
    """Whole seconds for a Retry-After header (at least 1)."""
    return max(1, math.ceil(seconds))
