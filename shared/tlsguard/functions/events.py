"""Parse the exact bytes FC hands a handler: timer JSON, EventBridge CloudEvents (one object or a list).

Timer event (https://www.alibabacloud.com/help/en/functioncompute/fc-3-0/user-guide/timer-triggers):
``{"triggerTime": "2023-12-26T07:49:00Z", "triggerName": "...", "payload": "<string>"}``.
EventBridge delivers ActionTrail records wrapped in a CloudEvents 1.0 envelope
(https://www.alibabacloud.com/help/en/doc-detail/181428.htm); OSS events carry ``source: acs.oss`` and
``type: oss:ActionTrail:ApiCall`` (https://help.aliyun.com/document_detail/205739.html).

The event only says where to look: the targets it names are re-read before anything is decided.
Nothing here raises for a bad *single* event: :func:`classify` returns a :class:`Skip` with a short reason,
so the handler can log it and acknowledge (FC must not retry a poison event forever). Only a body that is not
JSON at all raises :class:`~tlsguard.errors.EventError`.

Every entry is bounded before parsing goes further (issue 14): size (:data:`MAX_EVENT_BYTES`, checked on the raw
bytes), nesting depth (:data:`MAX_JSON_DEPTH`, checked iteratively on the text before :func:`json.loads`, so no
decoder or later walk can recurse deeply), numbers (no NaN or Infinity, no integer of more than
:data:`MAX_INT_DIGITS` digits) and the types of the fields used for ids, names and keys. In a batch of CloudEvents
an element that fails these checks becomes an :class:`Unparsed` item that :func:`classify` skips with its reason;
the other events are still handled.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tlsguard.errors import EventError, EventTooLarge
from tlsguard.model import TargetKind, TargetRef, Trigger

if TYPE_CHECKING:
    from collections.abc import Iterable

#: Largest event a handler parses. FC caps an async invocation's payload at 128 KB and a sync one at 32 MB
#: (https://www.alibabacloud.com/help/doc-detail/2527064.html); EventBridge caps a PutEvents request at 256 KB
#: (https://www.alibabacloud.com/help/en/eventbridge/latest/calculate-the-size-of-events-published-by-putevents).
#: Nothing tlsguard is sent comes near 1 MiB: a larger event is refused before it is decoded.
MAX_EVENT_BYTES = 1024 * 1024
#: Deepest nesting of arrays and objects accepted: ActionTrail records nest a few levels, while Python's decoder
#: (and every recursive walk after it: logging, redaction, json.dumps) fails near the recursion limit of 1000.
MAX_JSON_DEPTH = 64
#: Longest integer literal accepted (ids, counts and epochs fit; a 5,000-digit number only costs CPU).
MAX_INT_DIGITS = 40
#: Most CloudEvents one on_change invocation handles; the rest are skipped with a reason. An EventBridge trigger
#: batches up to its CountBasedWindow (example 100 in
#: https://www.alibabacloud.com/help/en/functioncompute/fc/developer-reference/api-fc-2023-03-30-struct-batchwindow;
#: the maximum it may be set to is UNCONFIRMED).
MAX_BATCH_EVENTS = 100
#: Longest id, name, source or type kept from an event (an ActionTrail eventId is a 36-character UUID).
MAX_FIELD_CHARS = 256
#: Largest webhook body: 100 target names fit many times over. FC lets a sync HTTP request carry 32 MB and
#: suggests a function set its own lower limit
#: (https://alibabacloud.com/help/en/functioncompute/fc-3-0/http-body-be-modified).
MAX_HTTP_BODY_BYTES = 64 * 1024
#: Largest HTTP-trigger event (the body, base64 when binary, and the headers); larger is 413 before decoding.
MAX_HTTP_EVENT_BYTES = 256 * 1024
#: A timer's name and time go into the run's correlation id (and the state keys derived from it): FC trigger
#: names and ISO 8601 times fit this; anything else is reported and ignored.
_TIMER_FIELD = re.compile(r"[\w.:+-]{1,128}", re.ASCII)
_ESCAPED = re.compile(r"\\.", re.DOTALL)
_STRING = re.compile(r'"[^"]*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_TOKEN = re.compile(r'"[^"]*"|[\[\]{},]')

#: CloudEvents types of ActionTrail records (API calls and console operations) per service, and the source.
#: OSS: https://help.aliyun.com/document_detail/205739.html; CDN publishes with source ``acs.cdn``
#: (https://help.aliyun.com/document_detail/205719.html; the exact source string is UNCONFIRMED in
#: alibaba-api-facts.md §7, localcloud emits it).
OSS_EVENT_TYPES: tuple[str, ...] = ("oss:ActionTrail:ApiCall", "oss:ActionTrail:ConsoleOperation")
OSS_SOURCE = "acs.oss"
BUCKET_RESOURCE = "ACS::OSS::Bucket"
CDN_EVENT_TYPES: tuple[str, ...] = ("cdn:ActionTrail:ApiCall", "cdn:ActionTrail:ConsoleOperation")
CDN_SOURCE = "acs.cdn"
DOMAIN_RESOURCE = "ACS::CDN::Domain"
#: OSS events that change which custom domains a bucket has: every custom domain of the bucket is re-checked.
CNAME_EVENT_NAMES = ("PutCname", "DeleteCname")


def event_names(service: str) -> tuple[str, ...]:
    """The ActionTrail event names of ``service`` the registry's checks react to (s.yaml's rules name these)."""
    from tlsguard.checks import REGISTRY

    names = {event.split(":", 1)[1] for check in REGISTRY.checks.values() for event in check.events
             if event.split(":", 1)[0] == service}
    return tuple(sorted(names))


@dataclass(frozen=True)
class TimerEvent:
    """A timer trigger's event; ``options`` is the payload parsed as a JSON object ({} when empty or plain text).

    ``problems`` says what was ignored (a payload that tried to be a JSON object and is not, a malformed trigger
    name or time): the sweep still runs, with the default options, and reports them.
    """

    trigger_time: str
    trigger_name: str
    options: dict[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """A write tlsguard reacts to: the targets it names (a CDN batch call can name several domains), by whom.

    ``cname_bucket`` is set for PutCname / DeleteCname: every custom domain of that bucket is re-read.
    """

    event_id: str
    event_name: str
    targets: tuple[TargetRef, ...]
    record: dict[str, Any]
    cname_bucket: str = ""
    region: str = ""


@dataclass(frozen=True)
class Skip:
    """An event that is acknowledged without acting on it, and why."""

    event_id: str
    reason: str
    event_name: str = ""


@dataclass(frozen=True)
class Unparsed:
    """One element of a batch that could not be parsed (too deep, not JSON, NaN...): skipped with ``reason``."""

    reason: str


def nests_deeper_than(text: str, limit: int) -> bool:
    """Whether JSON text nests arrays and objects more than ``limit`` levels deep, found without recursion.

    Escapes and then strings are cut out (regular expressions that run in linear time), leaving the brackets;
    their running depth is an upper bound of what :func:`json.loads` would recurse into before it finds an error.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", _ESCAPED.sub("", text)))
    if len(brackets) <= limit:
        return False
    depth = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif depth:
            depth -= 1
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS + 1:
        raise ValueError(f"integer of {len(text)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def loads_bounded(text: str, what: str = "event") -> Any:
    """JSON text → value, refusing with :class:`EventError` what no entry point needs: nesting deeper than
    :data:`MAX_JSON_DEPTH`, NaN and Infinity, numbers out of float range, integers over :data:`MAX_INT_DIGITS`."""
    if nests_deeper_than(text, MAX_JSON_DEPTH):
        raise EventError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except ValueError as exc:
        detail = f"{exc.msg} at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) \
            else str(exc)
        raise EventError(f"{what} is not JSON ({detail[:160]})") from None


def _check_parsed(value: Any, what: str) -> None:
    """Already-parsed JSON (tests, local tools): the same depth bound, walked with an explicit stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise EventError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def load_json(raw: bytes | bytearray | str | dict[str, Any] | list[Any], *, limit: int = MAX_EVENT_BYTES,
              what: str = "event") -> Any:
    """FC passes ``bytes`` in Python 3; tests and local tools may pass text or already-parsed JSON.

    Bounded: over ``limit`` bytes raises :class:`EventTooLarge` before decoding; not UTF-8, not JSON, too deep or
    hostile numbers raise :class:`EventError` with the reason. An empty event is ``{}`` (a manual run).
    """
    if isinstance(raw, (dict, list)):
        _check_parsed(raw, what)
        return raw
    if not isinstance(raw, (bytes, bytearray, str)):
        raise EventError(f"{what} is a {type(raw).__name__}, not bytes or text")
    if len(raw) > limit:
        raise EventTooLarge(f"{what} is {len(raw)} bytes, over the {limit}-byte limit")
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
    except UnicodeDecodeError as exc:
        raise EventError(f"{what} is not UTF-8 (byte {exc.start})") from None
    return loads_bounded(text, what) if text.strip() else {}


def _timer_field(data: dict[str, Any], name: str, problems: list[str]) -> str:
    value = data.get(name)
    if value is None or value == "":
        return ""
    if isinstance(value, str) and _TIMER_FIELD.fullmatch(value):
        return value
    problems.append(f"{name} ignored: expected up to 128 letters, digits and ._:+- "
                    f"(got {type(value).__name__} {str(value)[:40]!r})")
    return ""


def timer_payload_options(payload: str) -> tuple[dict[str, Any], str]:
    """The options a timer payload sets, and a problem when it tried to be a JSON object and is not.

    FC's timer payload is free text (the documented example is ``"awesome-fc"``:
    https://www.alibabacloud.com/help/en/fc/formats-of-event-for-different-triggers): any text runs the sweep;
    only a JSON object sets options.
    """
    text = payload.strip()
    if not text:
        return {}, ""
    if text[0] not in "{[":
        try:
            loads_bounded(text, "timer payload")
        except EventError:
            return {}, ""  # plain text such as "awesome-fc": no options, nothing wrong
        return {}, "timer payload is JSON but not an object: ignored, the default options apply"
    try:
        parsed = loads_bounded(text, "timer payload")
    except EventError as exc:
        return {}, f"{exc}: ignored, the default options apply"
    if not isinstance(parsed, dict):
        return {}, "timer payload is JSON but not an object: ignored, the default options apply"
    return parsed, ""


def parse_timer(raw: bytes | str | dict[str, Any]) -> TimerEvent:
    """A timer event (an empty or ``{}`` event counts as a manual run with no options).

    Only an event that is not a JSON object at all (or is over the size or depth bounds) raises
    :class:`EventError`; a payload or field that cannot be used is listed in ``problems`` and the sweep runs.
    """
    data = load_json(raw, what="timer event")
    if not isinstance(data, dict):
        raise EventError("timer event is not a JSON object")
    problems: list[str] = []
    trigger_time = _timer_field(data, "triggerTime", problems)
    trigger_name = _timer_field(data, "triggerName", problems)
    payload = data.get("payload")
    options: dict[str, Any] = {}
    if isinstance(payload, dict):  # local tools pass the options already parsed
        options = payload
    elif isinstance(payload, str):
        options, problem = timer_payload_options(payload)
        if problem:
            problems.append(problem)
    elif payload is not None:
        problems.append(f"timer payload is a {type(payload).__name__}, not text: ignored, the default options apply")
    return TimerEvent(trigger_time, trigger_name, options, tuple(problems))


@dataclass(frozen=True)
class HttpRequest:
    """An FC 3.0 HTTP-trigger event: method, the raw body bytes, and headers with lower-cased names."""

    method: str
    body: bytes
    headers: dict[str, str]

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


def parse_http(raw: bytes | str | dict[str, Any]) -> HttpRequest:
    """The HTTP trigger's event (``requestContext.http.method``, ``headers``, ``body``, ``isBase64Encoded``: FC 3.0's
    request struct, https://www.alibabacloud.com/help/en/functioncompute/fc/http-trigger-invoking-function).

    :class:`EventTooLarge` (413) when the event or the decoded body is over its limit; :class:`EventError` (400)
    naming the field when a field has the wrong type, the base64 is invalid or a header is given twice.
    """
    import base64
    import binascii

    request = load_json(raw, limit=MAX_HTTP_EVENT_BYTES, what="HTTP trigger event")
    if not isinstance(request, dict):
        raise EventError("not an HTTP trigger event")
    context = request.get("requestContext")
    http = context.get("http") if isinstance(context, dict) else None
    method = http.get("method", "POST") if isinstance(http, dict) else "POST"
    if not isinstance(method, str) or not 0 < len(method) <= 16:
        raise EventError("requestContext.http.method must be an HTTP method")
    body_text = request.get("body")
    body_text = "" if body_text is None else body_text
    encoded = request.get("isBase64Encoded")
    if not isinstance(body_text, str):
        raise EventError("body must be a string")
    if encoded not in (None, True, False):
        raise EventError("isBase64Encoded must be true or false")
    if len(body_text) > (MAX_HTTP_BODY_BYTES * 4 // 3 + 4 if encoded else MAX_HTTP_BODY_BYTES):
        raise EventTooLarge(f"body is over the {MAX_HTTP_BODY_BYTES}-byte limit")
    try:
        body = base64.b64decode(body_text, validate=True) if encoded else body_text.encode("utf-8")
    except (binascii.Error, ValueError):
        raise EventError("body is not valid base64" if encoded else "body is not valid text") from None
    if len(body) > MAX_HTTP_BODY_BYTES:
        raise EventTooLarge(f"body is {len(body)} bytes, over the {MAX_HTTP_BODY_BYTES}-byte limit")
    raw_headers = request.get("headers")
    raw_headers = {} if raw_headers is None else raw_headers
    if not isinstance(raw_headers, dict):
        raise EventError("headers must be an object")
    headers: dict[str, str] = {}
    for name, value in raw_headers.items():
        if not isinstance(value, str):
            raise EventError(f"header {name[:40]!r} must be a string")
        key = name.lower()
        if key in headers and headers[key] != value:
            raise EventError(f"header {name[:40]!r} is given twice")
        headers[key] = value
    return HttpRequest(method.upper(), body, headers)


def envelopes(raw: bytes | str | dict[str, Any] | list[Any]) -> list[Any]:
    """EventBridge delivers one CloudEvent object, or a list of them when batching; always a list here.

    A batch whose text cannot be parsed as a whole is parsed element by element, so one hostile event (too deep,
    NaN, broken) becomes an :class:`Unparsed` item and the others are still handled. Events past
    :data:`MAX_BATCH_EVENTS` are not handled: one :class:`Unparsed` item says how many.
    """
    data: Any
    try:
        data = load_json(raw)
    except EventTooLarge:
        raise
    except EventError as whole:
        items = _batch_items(raw)
        if items is None:
            raise whole from None
        data = []
        for item in items[:MAX_BATCH_EVENTS]:
            try:
                data.append(load_json(item) if item.strip() else Unparsed("empty element in the batch"))
            except EventError as exc:
                data.append(Unparsed(str(exc)))
        data.extend(items[MAX_BATCH_EVENTS:])  # only counted below
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list):
        raise EventError("event is neither a CloudEvent object nor a list of them")
    if len(data) > MAX_BATCH_EVENTS:
        over = len(data) - MAX_BATCH_EVENTS
        return [*data[:MAX_BATCH_EVENTS], Unparsed(f"{over} events over the batch limit of {MAX_BATCH_EVENTS}: "
                                                   "not handled")]
    return data


def _batch_items(raw: bytes | str | dict[str, Any] | list[Any]) -> list[str] | None:
    """The texts of a top-level JSON array's elements (None when the event is not such an array of balanced
    brackets), split iteratively: escapes are masked with two placeholder characters so offsets hold."""
    if isinstance(raw, (dict, list)):
        return None
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
    except UnicodeDecodeError:
        return None
    if not text.lstrip().startswith("["):
        return None
    items: list[str] = []
    depth, start, end = 0, 0, -1
    for match in _TOKEN.finditer(_ESCAPED.sub("__", text)):
        token = match.group()
        if token[0] == '"':
            continue
        if token in "[{":
            depth += 1
            if depth == 1:
                start = match.end()
        elif token in "]}":
            depth -= 1
            if depth == 0:
                if token != "]":
                    return None
                items.append(text[start:match.start()])
                end = match.end()
                break
        elif depth == 1:  # a comma between two elements
            items.append(text[start:match.start()])
            start = match.end()
    if end < 0 or text[end:].strip():
        return None
    return [] if items == [""] else items


def _envelope_problem(envelope: dict[str, Any]) -> str:
    """Why a CloudEvent's fields cannot be used as ids, names and sources (wrong type, too long), or ""."""
    data = envelope.get("data")
    fields = [("id", envelope.get("id")), ("source", envelope.get("source")), ("type", envelope.get("type")),
              ("aliyunregionid", envelope.get("aliyunregionid"))]
    if isinstance(data, dict):
        fields += [(f"data.{name}", data.get(name)) for name in ("eventId", "eventName", "eventRW", "errorCode",
                                                                  "acsRegion", "eventSource")]
        identity = data.get("userIdentity")
        if isinstance(identity, dict):  # the actor named in reports and alerts
            fields += [(f"data.userIdentity.{key}", value) for key, value in identity.items()
                       if isinstance(value, str)]
    for name, value in fields:
        if value is not None and not isinstance(value, str):
            return f"{name} is a {type(value).__name__}, not a string"
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            return f"{name} is {len(value)} characters (at most {MAX_FIELD_CHARS})"
        if isinstance(value, str) and not (value.isascii() and value.isprintable()):
            return f"{name} is not printable ASCII"
    return ""


def classify(envelope: Any) -> Change | Skip:
    """Decide what one CloudEvent asks for: the targets to re-check, or a reason to skip it."""
    if isinstance(envelope, Unparsed):
        return Skip("", envelope.reason)
    if not isinstance(envelope, dict):
        return Skip("", "not a JSON object")
    problem = _envelope_problem(envelope)
    if problem:
        return Skip("", f"malformed event: {problem}")
    event_id = str(envelope.get("id") or "")
    data = envelope.get("data")
    if not isinstance(data, dict):
        return Skip(event_id, "no ActionTrail record in data")
    name = str(data.get("eventName") or "")
    event_id = event_id or str(data.get("eventId") or "")
    is_oss = envelope.get("source") == OSS_SOURCE and envelope.get("type") in OSS_EVENT_TYPES
    is_cdn = envelope.get("source") == CDN_SOURCE and envelope.get("type") in CDN_EVENT_TYPES
    if not is_oss and not is_cdn:
        return Skip(event_id, f"unexpected source/type {envelope.get('source')!r}/{envelope.get('type')!r}", name)
    if str(data.get("eventRW") or "Write") == "Read":
        return Skip(event_id, "read event", name)
    if data.get("errorCode"):
        return Skip(event_id, f"failed call ({data.get('errorCode')}): nothing changed", name)
    if name not in event_names("oss" if is_oss else "cdn"):
        return Skip(event_id, f"{name or 'unnamed event'} is not an event tlsguard reacts to", name)
    if not event_id:
        return Skip("", "event has no id (cannot be deduplicated)", name)
    if is_cdn:
        return _classify_cdn(event_id, name, data)
    bucket = _bucket_of(data)
    if not bucket:
        return Skip(event_id, "no bucket named in the event", name)
    region = str(data.get("acsRegion") or envelope.get("aliyunregionid") or "")
    if name in CNAME_EVENT_NAMES:
        return Change(event_id, name, (), data, cname_bucket=bucket, region=region)
    return Change(event_id, name, (TargetRef(TargetKind.OSS_BUCKET, bucket, region),), data, region=region)


def _classify_cdn(event_id: str, name: str, record: dict[str, Any]) -> Change | Skip:
    domains: list[str] = []
    referenced = record.get("referencedResources")
    if isinstance(referenced, dict) and isinstance(referenced.get(DOMAIN_RESOURCE), list):
        domains = [d for d in referenced[DOMAIN_RESOURCE] if isinstance(d, str) and d]
    params = record.get("requestParameters")
    if not domains and isinstance(params, dict):
        raw = params.get("DomainNames") or params.get("DomainName") or ""
        domains = [d.strip() for d in str(raw).split(",") if d.strip()]
    if not domains:
        return Skip(event_id, "no CDN domain named in the event", name)
    targets = tuple(TargetRef(TargetKind.CDN_DOMAIN, d) for d in dict.fromkeys(d.lower() for d in domains))
    return Change(event_id, name, targets, record)


def trigger_from_trail(record: dict[str, Any], own_principals: Iterable[str]) -> Trigger:
    """The Trigger of an ActionTrail record: who made the change, and whether it was tlsguard's own role.

    The actor is our own when the identity is an assumed role whose name (``userName`` is ``role:session``,
    ``principalId`` is ``roleId:session``, or an ARN mentions ``role/<name>``) is one of ``own_principals``.
    """
    raw_identity = record.get("userIdentity")
    identity: dict[str, Any] = raw_identity if isinstance(raw_identity, dict) else {}

    def text(name: str) -> str:
        value = identity.get(name)
        return value if isinstance(value, str) else ""

    kind = text("type")
    user = text("userName")
    principal = text("principalId")
    own = False
    if kind == "assumed-role":
        # Exact role names only: "tlsguard-fc-role-dev" is somebody else's role, not ours.
        names = {user.split(":", 1)[0], principal.split(":", 1)[0], _role_from_arn(text("arn"))} - {""}
        own = any(p in names for p in own_principals)
    actor = f"{kind}:{user or principal or text('accessKeyId')}".strip(":")
    return Trigger("event", str(record.get("eventId", "")), actor, own, str(record.get("eventName", "")))


def _role_from_arn(arn: str) -> str:
    """``acs:ram::<account>:assumed-role/<role>/<session>`` → ``<role>`` (empty when not such an ARN)."""
    resource = arn.split(":", 4)[-1] if arn.count(":") >= 4 else ""
    parts = resource.split("/")
    return parts[1] if len(parts) >= 2 and parts[0] == "assumed-role" else ""


def _bucket_of(record: dict[str, Any]) -> str:
    """The bucket from referencedResources, else requestParameters.BucketName, else the eventSource host."""
    referenced = record.get("referencedResources")
    if isinstance(referenced, dict):
        names = referenced.get(BUCKET_RESOURCE)
        if isinstance(names, list) and names and isinstance(names[0], str):
            return names[0]
    params = record.get("requestParameters")
    if isinstance(params, dict) and isinstance(params.get("BucketName"), str):
        return str(params["BucketName"])
    source = str(record.get("eventSource") or "")
    if ".oss-" in source:
        return source.split(".oss-", 1)[0]
    return ""
