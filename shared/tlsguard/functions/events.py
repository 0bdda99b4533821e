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
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tlsguard.errors import EventError
from tlsguard.model import TargetKind, TargetRef, Trigger

if TYPE_CHECKING:
    from collections.abc import Iterable

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
    """A timer trigger's event; ``options`` is the payload parsed as a JSON object ({} when empty)."""

    trigger_time: str
    trigger_name: str
    options: dict[str, Any] = field(default_factory=dict)


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


def load_json(raw: bytes | bytearray | str | dict[str, Any] | list[Any]) -> Any:
    """FC passes ``bytes`` in Python 3; tests and local tools may pass text or already-parsed JSON."""
    if isinstance(raw, (dict, list)):
        return raw
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
        return json.loads(text) if text.strip() else {}
    except (UnicodeDecodeError, ValueError) as exc:
        raise EventError(f"event is not JSON: {type(exc).__name__}") from None


def parse_timer(raw: bytes | str | dict[str, Any]) -> TimerEvent:
    """A timer event (an empty or ``{}`` event counts as a manual run with no options)."""
    data = load_json(raw)
    if not isinstance(data, dict):
        raise EventError("timer event is not a JSON object")
    payload = data.get("payload") or ""
    options: dict[str, Any] = {}
    if isinstance(payload, dict):
        options = payload
    elif isinstance(payload, str) and payload.strip():
        try:
            parsed = json.loads(payload)
        except ValueError:
            raise EventError("timer payload is not a JSON object") from None
        if not isinstance(parsed, dict):
            raise EventError("timer payload is not a JSON object")
        options = parsed
    return TimerEvent(str(data.get("triggerTime", "")), str(data.get("triggerName", "")), options)


@dataclass(frozen=True)
class HttpRequest:
    """An FC 3.0 HTTP-trigger event: method, the raw body bytes, and headers with lower-cased names."""

    method: str
    body: bytes
    headers: dict[str, str]

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


def parse_http(raw: bytes | str | dict[str, Any]) -> HttpRequest:
    """The HTTP trigger's event (``requestContext.http.method``, ``headers``, ``body``, ``isBase64Encoded``)."""
    import base64
    import binascii

    request = load_json(raw)
    if not isinstance(request, dict):
        raise EventError("not an HTTP trigger event")
    try:
        method = str(((request.get("requestContext") or {}).get("http") or {}).get("method") or "POST").upper()
        body_text = request.get("body") or ""
        body = base64.b64decode(body_text) if request.get("isBase64Encoded") else str(body_text).encode("utf-8")
        headers = {str(k).lower(): str(v) for k, v in (request.get("headers") or {}).items()}
    except (binascii.Error, TypeError, AttributeError, ValueError):
        raise EventError("malformed HTTP trigger event") from None
    return HttpRequest(method, body, headers)


def envelopes(raw: bytes | str | dict[str, Any] | list[Any]) -> list[Any]:
    """EventBridge delivers one CloudEvent object, or a list of them when batching; always a list here."""
    data = load_json(raw)
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        return [data]
    raise EventError("event is neither a CloudEvent object nor a list of them")


def classify(envelope: Any) -> Change | Skip:
    """Decide what one CloudEvent asks for: the targets to re-check, or a reason to skip it."""
    if not isinstance(envelope, dict):
        return Skip("", "not a JSON object")
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
