"""What every chat channel shares: outbound HTTP, rate budgets, splitting a digest, retries, redaction.

* **Outbound HTTP** (:func:`post_json`, stdlib ``urllib``): ``https://`` only, or ``http://`` to a loopback address
  (localcloud); redirects are never followed (a 3xx is a failed delivery: a robot URL that redirects is not the
  robot); no proxy is used for a loopback address.
* **Rate budget** (:class:`WindowLimiter`, :func:`limiter_for`): at most N messages in any window of S seconds, one
  limiter per robot (its URL) per process, shared by every channel and every run that posts to that robot. A sliding
  window rather than :class:`tlsguard.ratelimit.TokenBucket`: a bucket either lets N plus its burst through in some
  60-second window or must halve the rate, and DingTalk answers a 21st message in a minute with ten minutes of
  silence. Each window is a little longer than documented (a tenth, at most a second), so network jitter cannot
  push a message into the service's previous window.
* **Splitting** (:func:`plan`): a digest too big for one message becomes several, each saying "part i of n", filled
  with what needs a person first (:data:`tlsguard.alerts.render.PRIORITY`). A channel also has a message budget per
  digest (a run must not spend the robot's whole minute); when splitting would exceed it, items are rendered with
  less detail, and what still does not fit is left out with "N more items are in the run's report", except what
  needs a person, which is always sent (however many messages that takes; the limiter paces them).
* **Retries** (:func:`with_retries`, tenacity): only throttling answers, 5xx and network failures are retried, with
  exponential backoff and jitter, at least the service's Retry-After; never a refusal (bad signature, missing
  keyword, invalid payload).
* **Redaction** (:class:`Redactor`): an error never carries the robot URL, its token or the secret.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tlsguard.alerts.channels import ChannelResult
from tlsguard.alerts.render import LANGUAGES, PERSON_SECTIONS, PRIORITY, DigestView, ItemView, render, text, view
from tlsguard.errors import ConfigError, TlsguardError, Transient
from tlsguard.log import REDACTED, get_logger, mask_secrets
from tlsguard.netsafe import check_outbound_url, no_redirect_opener
from tlsguard.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from tlsguard.policy.model import ChannelSpec

log = get_logger("tlsguard.alerts.channels")

#: Detail levels of ``markdown.j2``, most detailed first.
DETAIL_LEVELS = ("full", "compact", "minimal")
#: Retries for a chat message: a throttled robot usually recovers within seconds; the alert path must not hang.
DEFAULT_RETRY = RetryPolicy(attempts=4, initial_seconds=1.0, max_seconds=20.0, jitter_seconds=0.5)
#: The longest Retry-After (or rate-limit reset) a channel waits for before one retry.
MAX_RETRY_AFTER_SECONDS = 60.0
DEFAULT_TIMEOUT_SECONDS = 10.0
#: Added to every documented window (see the module docstring): a tenth of it, at most this.
WINDOW_MARGIN_SECONDS = 1.0


# -- errors -------------------------------------------------------------------------------------------------
class Throttled(Transient):
    """The service said "too fast" (or answered 5xx, or could not be reached): retry after ``retry_after``."""

    def __init__(self, message: str, *, service: str, code: str = "", status: int = 0,
                 retry_after: float = 0.0) -> None:
        super().__init__(message, service=service, operation="send", code=code, status=status)
        self.retry_after = retry_after


class Refused(TlsguardError):
    """The service refused the message (signature, keyword, payload, unknown robot): never retried."""

    def __init__(self, message: str, *, code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


# -- URLs and HTTP ------------------------------------------------------------------------------------------
def check_url(spec: ChannelSpec, url: str) -> str:
    """``url`` if it is ``https://`` (or ``http://`` to a loopback address); ConfigError naming the channel and
    its variable, never the value (a robot URL carries its token). The rules are :mod:`tlsguard.netsafe`'s."""
    try:
        check_outbound_url(url, spec.url_env or spec.name)
    except ConfigError as exc:
        raise ConfigError(f"channel {spec.name!r}: the URL in {spec.url_env} must be https:// (http:// only to a "
                          f"loopback address): {exc.reason}", field=f"alerts.channels.{spec.name}") from None
    return url.strip()


@dataclass(frozen=True)
class Answer:
    """A service's HTTP answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body.decode("utf-8", "replace") or "{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def header_seconds(self, *names: str) -> float:
        """The first of ``names`` that holds a number of seconds (Retry-After, x-ogw-ratelimit-reset), else 0."""
        lowered = {k.lower(): v for k, v in self.headers.items()}
        for name in names:
            try:
                return max(0.0, float(lowered.get(name.lower(), "")))
            except ValueError:
                continue
        return 0.0


#: A service's answer is a short JSON status; more than this is not read (a hostile endpoint cannot fill memory).
MAX_ANSWER_BYTES = 64 * 1024


def post_json(url: str, body: bytes, *, timeout: float) -> Answer:
    """POST ``body`` (UTF-8 JSON); any HTTP status is an :class:`Answer`; no answer at all is :class:`Throttled`."""
    opener = no_redirect_opener(url)
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": "tlsguard-alerts/1"})
    try:
        with opener.open(request, timeout=timeout) as response:
            return Answer(int(response.status), dict(response.headers.items()), response.read(MAX_ANSWER_BYTES))
    except urllib.error.HTTPError as exc:
        try:
            payload = exc.read(MAX_ANSWER_BYTES)
        except OSError:
            payload = b""
        return Answer(int(exc.code), dict(exc.headers.items()) if exc.headers else {}, payload)
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Throttled(f"unreachable: {type(exc).__name__}: {reason}", service="chat") from exc


def encode(payload: dict[str, Any]) -> bytes:
    """The wire form (UTF-8, not ASCII-escaped: sizes measured on it are what the service receives)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- redaction ----------------------------------------------------------------------------------------------
_STATIC_SEGMENTS = frozenset({"robot", "send", "cgi-bin", "webhook", "open-apis", "bot", "v2", "hook", "services",
                              "api"})


@dataclass
class Redactor:
    """Removes a robot URL, the token inside it (query values, path segments) and the secret from any text."""

    url: str
    secrets: tuple[str, ...] = ()
    _values: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        values = [self.url, parts.query, *self.secrets]
        values += [v for _, v in urllib.parse.parse_qsl(parts.query)]
        values += [s for s in parts.path.split("/") if s and s.lower() not in _STATIC_SEGMENTS]
        values += [urllib.parse.quote(v, safe="") for v in list(values) if v]
        self._values = sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)

    def __call__(self, message: str) -> str:
        for value in self._values:
            message = message.replace(value, REDACTED)
        return mask_secrets(message)


# -- rate budget --------------------------------------------------------------------------------------------
class WindowLimiter:
    """At most ``count`` acquisitions in any ``seconds`` window, for every ``(count, seconds)`` given."""

    def __init__(self, windows: tuple[tuple[int, float], ...], *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not windows or any(count < 1 or seconds <= 0 for count, seconds in windows):
            raise ValueError("each window needs a positive count and length")
        self.windows = windows
        self._clock = clock
        self._sleep = sleep
        self._stamps: deque[float] = deque()
        self._keep = max(count for count, _ in windows)
        self._lock = threading.Lock()

    def _wait(self, now: float) -> float:
        stamps = list(self._stamps)
        wait = 0.0
        for count, seconds in self.windows:
            recent = [s for s in stamps if s > now - seconds]
            if len(recent) >= count:
                wait = max(wait, recent[-count] + seconds - now)
        return wait

    def acquire(self) -> float:
        """Block until a message may be sent (and count it); returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                wait = self._wait(now)
                if wait <= 0:
                    self._stamps.append(now)
                    while len(self._stamps) > self._keep:
                        self._stamps.popleft()
                    return waited
            self._sleep(wait)
            waited += wait


_limiters: dict[str, WindowLimiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(service: str, url: str, windows: tuple[tuple[int, float], ...], *,
                clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> WindowLimiter:
    """The process's one limiter for the robot at ``url`` (keyed by a digest of the URL, which holds its token)."""
    key = f"{service}:{hashlib.sha256(url.encode()).hexdigest()}"
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            margin = tuple((count, seconds + min(WINDOW_MARGIN_SECONDS, seconds / 10)) for count, seconds in windows)
            limiter = _limiters[key] = WindowLimiter(margin, clock=clock, sleep=sleep)
        return limiter


def reset_limiters() -> None:
    """Forget every robot's recent messages (tests)."""
    with _limiters_lock:
        _limiters.clear()


# -- retries ------------------------------------------------------------------------------------------------
def with_retries(policy: RetryPolicy, attempt: Callable[[], None], *, sleep: Callable[[float], None],
                 on_retry: Callable[[Throttled], None] | None = None) -> None:
    """Run ``attempt``; retry it on :class:`Throttled` (backoff with jitter, at least the service's Retry-After
    capped at :data:`MAX_RETRY_AFTER_SECONDS`); re-raise the last error. :class:`Refused` is never retried."""
    from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

    backoff = wait_exponential_jitter(multiplier=policy.initial_seconds, max=policy.max_seconds,
                                      jitter=policy.jitter_seconds)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        hint = min(error.retry_after, MAX_RETRY_AFTER_SECONDS) if isinstance(error, Throttled) else 0.0
        return max(hint, float(backoff(state)))

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        if on_retry is not None and isinstance(error, Throttled):
            on_retry(error)

    retrying = Retrying(stop=stop_after_attempt(max(1, policy.attempts)), wait=wait, sleep=sleep,
                        retry=retry_if_exception_type(Throttled), before_sleep=before_sleep, reraise=True)
    retrying(attempt)


# -- splitting ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """The messages one digest becomes on one channel."""

    parts: tuple[DigestView, ...]
    detail: str
    dropped: int  # items left out for the report (never one that needs a person)


def _ordered(items: tuple[ItemView, ...]) -> list[ItemView]:
    rank = {section: index for index, section in enumerate(PRIORITY)}
    return sorted(items, key=lambda item: rank.get(item.section, len(PRIORITY)))  # stable: keeps the view's order


def _probe(base: DigestView, items: list[ItemView]) -> DigestView:
    """A part as large as it can get once labelled: the longest "part i of n" and an omitted line."""
    return base.with_items(tuple(items), part=text(base.language, "part", i=999, n=999), omitted=999_999)


def _shrink(item: ItemView, fits: Callable[[ItemView], bool]) -> ItemView:
    """An item too big for a message on its own, cut down until it fits (detail first, then the headline)."""
    from dataclasses import replace

    for name in ("detail", "headline", "target", "actor"):
        value = getattr(item, name)
        if not value:
            continue
        low, high = 0, len(value)
        while low < high:  # the longest prefix that fits
            middle = (low + high + 1) // 2
            if fits(replace(item, **{name: value[:middle] + "…"})):
                low = middle
            else:
                high = middle - 1
        item = replace(item, **{name: value[:low] + "…" if low < len(value) else value})
        if fits(item):
            return item
    return replace(item, detail="", console="", undo="", actor="")


def _pack(base: DigestView, items: list[ItemView], fits: Callable[[DigestView], bool],
          limit: int | None = None) -> tuple[list[list[ItemView]], int]:
    """Greedy: each part takes the longest run of the next items that fits (found by galloping, then bisecting).
    With ``limit``, stops once that many parts are full; returns the parts and how many items were placed."""
    parts: list[list[ItemView]] = []
    start = 0
    while start < len(items):
        if limit is not None and len(parts) >= limit:
            break
        if not fits(_probe(base, items[start:start + 1])):
            items[start] = _shrink(items[start], lambda item: fits(_probe(base, [item])))
        good, step = 1, 1
        while start + good < len(items):
            trial = min(len(items) - start, good + step)
            if not fits(_probe(base, items[start:start + trial])):
                low, high = good, trial - 1
                while low < high:
                    middle = (low + high + 1) // 2
                    if fits(_probe(base, items[start:start + middle])):
                        low = middle
                    else:
                        high = middle - 1
                good = low
                break
            good, step = trial, step * 2
        parts.append(items[start:start + good])
        start += good
    return parts, start


def plan(base: DigestView, fits: Callable[[DigestView, str], bool], *, budget: int) -> Plan:
    """Split ``base`` into messages that each ``fits(part, detail)``; at most ``budget`` messages unless what needs
    a person alone takes more (then exactly those, every one of them, and nothing else)."""
    everything = _ordered(base.items)
    person = [i for i in everything if i.section in PERSON_SECTIONS]
    rest = [i for i in everything if i.section not in PERSON_SECTIONS]
    budget = max(1, budget)

    def packer(detail: str) -> Callable[[DigestView], bool]:
        return lambda part: fits(part, detail)

    parts, _ = _pack(base, list(everything), packer("full"))
    if len(parts) <= budget:
        return _label(base, parts, "full", 0)
    # The most detailed level at which what needs a person fits the budget (else the least detailed).
    detail = DETAIL_LEVELS[-1]
    for level in DETAIL_LEVELS:
        if len(_pack(base, list(person), packer(level))[0]) <= budget:
            detail = level
            break
    parts, _ = _pack(base, list(everything), packer(detail))
    if len(parts) <= budget:
        return _label(base, parts, detail, 0)
    person_parts, _ = _pack(base, list(person), packer(detail))
    if len(person_parts) >= budget or not rest:
        return _label(base, person_parts, detail, len(rest))
    # What needs a person, then as much of the rest as the remaining messages hold (the last part is topped up).
    last = person_parts.pop() if person_parts else []
    tail, placed = _pack(base, last + rest, packer(detail), limit=budget - len(person_parts))
    placed_rest = max(0, placed - len(last))
    return _label(base, person_parts + tail, detail, len(rest) - placed_rest)


def _label(base: DigestView, parts: list[list[ItemView]], detail: str, dropped: int) -> Plan:
    parts = parts or [[]]
    total = len(parts)
    views = tuple(base.with_items(tuple(items),
                                  part=text(base.language, "part", i=index, n=total) if total > 1 else "",
                                  omitted=(base.omitted + dropped) if index == total else 0)
                  for index, items in enumerate(parts, start=1))
    return Plan(views, detail, dropped)


# -- the channel --------------------------------------------------------------------------------------------
@dataclass
class Message:
    """One POST: its payload and the part it carries (for the error text)."""

    payload: dict[str, Any]
    part: DigestView
    label: str = ""


class ChatChannel:
    """The delivery loop every chat service shares; a service supplies :meth:`fits`, :meth:`messages` and
    :meth:`check` (its answer), and signs in :meth:`prepare` (every attempt: a retried message is signed anew)."""

    type = "chat"
    #: (messages, seconds) the service documents per robot
    windows: tuple[tuple[int, float], ...] = ((1, 1.0),)
    #: messages one digest may take (a run must not spend the robot's whole budget)
    budget = 5

    def __init__(self, name: str, url: str, *, language: str = "en", secret: str = "",
                 mention_mobiles: tuple[str, ...] = (), timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 retry: RetryPolicy = DEFAULT_RETRY, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.name = name
        self.url = url
        self.language = language if language in LANGUAGES else "en"
        self.secret = secret
        self.mention_mobiles = mention_mobiles
        self.timeout = timeout
        self.retry = retry
        self.clock = clock
        self.sleep = sleep
        self.redact = Redactor(url, (secret,) if secret else ())
        self.limiter = limiter_for(self.type, url, self.windows, clock=monotonic, sleep=sleep)

    def __repr__(self) -> str:  # never the URL: it holds the robot's token
        return f"{type(self).__name__}(name={self.name!r})"

    # -- what a service supplies ---------------------------------------------------------------------------
    def fits(self, part: DigestView, detail: str) -> bool:
        raise NotImplementedError

    def messages(self, plan_: Plan) -> list[Message]:
        raise NotImplementedError

    def prepare(self, message: Message) -> tuple[str, bytes]:
        """The URL and body of one attempt (signed now, where the service signs)."""
        return self.url, encode(message.payload)

    def check(self, answer: Answer) -> None:
        """Return if the service accepted the message; raise :class:`Throttled` or :class:`Refused`."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------------------
    def markdown(self, part: DigestView, detail: str, **options: Any) -> str:
        return render(part, "markdown.j2", flavor=self.type, detail=detail, **options)

    def wants_mention(self, part: DigestView) -> bool:
        return bool(self.mention_mobiles) and part.critical

    def plan(self, digest: dict[str, Any]) -> Plan:
        base = view(digest, self.language)
        reserve = 1 if self.type == "wecom" and self.wants_mention(base) else 0  # WeCom's separate mention message
        return plan(base, self.fits, budget=max(1, self.budget - reserve))

    def deliver(self, digest: dict[str, Any]) -> ChannelResult:
        result = ChannelResult(self.name, self.type)
        try:
            outgoing = self.messages(self.plan(digest))
        except Exception as exc:  # a rendering bug is a failed delivery, reported
            result.error = self.redact(f"cannot render the digest: {type(exc).__name__}: {exc}")
            return result
        for message in outgoing:
            try:
                self.send(message, result)
            except Throttled as exc:
                result.error = self.redact(f"{message.label or 'message'} not delivered after {self.retry.attempts} "
                                           f"attempts: {exc}")
                return result
            except Refused as exc:
                result.error = self.redact(f"{message.label or 'message'} refused: {exc}")
                return result
            result.messages += 1
        result.sent = True
        return result

    def send(self, message: Message, result: ChannelResult) -> None:
        def attempt() -> None:
            self.limiter.acquire()
            url, body = self.prepare(message)
            self.check(post_json(url, body, timeout=self.timeout))

        def retried(error: Throttled) -> None:
            result.retries += 1
            log.info("chat message retried", extra={"channel": self.name, "type": self.type,
                                                    "error": self.redact(str(error))})

        with_retries(self.retry, attempt, sleep=self.sleep, on_retry=retried)


def mention_mobiles(spec: ChannelSpec) -> tuple[str, ...]:
    value = spec.options.get("mention_mobiles") or ()
    if isinstance(value, str):
        value = [value]
    return tuple(str(v).strip() for v in value if str(v).strip())


def common_options(spec: ChannelSpec) -> dict[str, Any]:
    """The options every chat channel reads from its spec (beyond its URL and secret)."""
    options: dict[str, Any] = {"mention_mobiles": mention_mobiles(spec)}
    if "timeout_seconds" in spec.options:
        options["timeout"] = float(spec.options["timeout_seconds"])
    return options


def label(index: int, total: int) -> str:
    return f"part {index} of {total}" if total > 1 else "message"
