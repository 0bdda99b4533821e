"""ActionTrail management events for every OSS and CDN write, wrapped as EventBridge delivers them.

The record follows the ActionTrail management-event format and the envelope follows CloudEvents 1.0 with
Alibaba's extensions (see ../shared/reference/alibaba-api-facts.md §7 and
https://www.alibabacloud.com/help/en/doc-detail/181428.htm). An OSS record has exactly the fields of ActionTrail's
documented OSS sample (https://help.aliyun.com/document_detail/293590.html): no ``requestParameters``,
``eventRW`` or ``userAgent``; ``eventSource`` ``<bucket>.oss-<region>-cross.aliyuncs.com``; ``sourceIpAddress``
``Internal``; ``eventId`` equal to the OSS request id; plus ``errorCode``/``errorMessage`` on a failed call.
Events are kept in order for the control API and handed to the event bus, which matches rules and delivers to
functions.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from localcloud.iam import Principal

#: ActionTrail service names and EventBridge sources per emulated service.
SERVICES: dict[str, dict[str, str]] = {
    "oss": {"serviceName": "Oss", "source": "acs.oss", "type_prefix": "oss"},
    "cdn": {"serviceName": "Cdn", "source": "acs.cdn", "type_prefix": "cdn"},
}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class TrailCall:
    """What a service knows about one write call when it records it."""

    service: str  # "oss" | "cdn"
    event_name: str  # the API action, e.g. "PutBucketHttpsConfig"
    principal: Principal
    region: str
    request_id: str
    request_parameters: dict[str, Any]  # CDN records carry them; OSS records, as documented, do not
    resource_type: str  # "ACS::OSS::Bucket" | "ACS::CDN::Domain"
    resource_names: tuple[str, ...]
    source_ip: str
    user_agent: str
    event_source: str  # "cdn.aliyuncs.com" (an OSS record derives its own: :func:`oss_record`)
    error_code: str | None = None
    error_message: str | None = None
    api_version: str | None = None


class TrailRecorder:
    """Builds the event for each recorded call, keeps the log, and hands the envelope to subscribers."""

    def __init__(self, clock: Callable[[], float], account_region: Callable[[], str]) -> None:
        self._clock = clock
        self._default_region = account_region
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._subscribers: list[Callable[[dict[str, Any]], None]] = []

    def subscribe(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Register a consumer (the event bus) that receives every envelope."""
        self._subscribers.append(callback)

    def reset(self) -> None:
        with self._lock:
            self._events.clear()

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        """Envelopes emitted so far, oldest first, from index ``since``."""
        with self._lock:
            return list(self._events[since:])

    def count(self) -> int:
        with self._lock:
            return len(self._events)

    def record(self, call: TrailCall) -> dict[str, Any]:
        """Record one write call and publish its CloudEvents envelope; returns the envelope."""
        meta = SERVICES[call.service]
        now = self._clock()
        if call.service == "oss":
            record = oss_record(call, now)
            event_id = str(record["eventId"])
        else:
            event_id = str(uuid.uuid4()).upper()
            record = self._rpc_record(call, now, event_id)
        return self._publish(call, record, event_id, now, meta)

    @staticmethod
    def _rpc_record(call: TrailCall, now: float, event_id: str) -> dict[str, Any]:
        """A CDN (RPC API) record: the ActionTrail management-event fields, with the call's parameters."""
        meta = SERVICES[call.service]
        is_global = call.service == "cdn"
        record: dict[str, Any] = {
            "eventId": event_id,
            "eventVersion": 1,
            "eventName": call.event_name,
            "eventType": "ApiCall",
            "eventRW": "Write",
            "eventCategory": "Management",
            "eventSource": call.event_source,
            "eventTime": _iso(now),
            "acsRegion": call.region,
            "isGlobal": is_global,
            "serviceName": meta["serviceName"],
            "requestId": call.request_id,
            "requestParameters": call.request_parameters,
            "responseElements": {"RequestId": call.request_id},
            "sourceIpAddress": call.source_ip,
            "userAgent": call.user_agent,
            "userIdentity": call.principal.user_identity(),
            "referencedResources": {call.resource_type: list(call.resource_names)},
            "resourceType": call.resource_type,
            "resourceName": ";".join(call.resource_names),
            "recipientAccountId": call.principal.account_id,
        }
        if call.api_version:
            record["apiVersion"] = call.api_version
        if call.error_code:
            record["errorCode"] = call.error_code
            record["errorMessage"] = call.error_message or ""
        return record

    def _publish(self, call: TrailCall, record: dict[str, Any], event_id: str, now: float,
                 meta: dict[str, str]) -> dict[str, Any]:
        region = call.region
        if call.service == "oss":
            subject = f"acs:oss:{region}:{call.principal.account_id}:{call.resource_names[0]}"
        else:
            subject = f"acs:cdn:*:{call.principal.account_id}:domain/{call.resource_names[0]}"
        envelope: dict[str, Any] = {
            "specversion": "1.0",
            "id": event_id,
            "source": meta["source"],
            "type": f"{meta['type_prefix']}:ActionTrail:ApiCall",
            "subject": subject,
            "time": _iso(now),
            "datacontenttype": "application/json;charset=utf-8",
            "aliyunaccountid": call.principal.account_id,
            "aliyunpublishtime": datetime.fromtimestamp(now, tz=timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "aliyuneventbusname": "default",
            "aliyunregionid": region,
            "aliyunpublishaddr": "127.0.0.1",
            "data": record,
        }
        # Round-trip once so that what subscribers get is exactly JSON-shaped.
        envelope = json.loads(json.dumps(envelope))
        with self._lock:
            self._events.append(envelope)
        for subscriber in list(self._subscribers):
            subscriber(envelope)
        return envelope


#: ``additionalEventData.CallerBid`` in the documented OSS sample (the caller's business id on the China site).
OSS_CALLER_BID = "26842"


def oss_record(call: TrailCall, now: float) -> dict[str, Any]:
    """An OSS management event shaped as ActionTrail's documented OSS sample
    (https://help.aliyun.com/document_detail/293590.html), field for field."""
    bucket = call.resource_names[0]
    record: dict[str, Any] = {
        "eventId": call.request_id,
        "eventVersion": 1,
        "eventSource": f"{bucket}.oss-{call.region}-cross.aliyuncs.com",
        "sourceIpAddress": "Internal",
        "eventType": "ApiCall",
        "referencedResources": {call.resource_type: list(call.resource_names)},
        "userIdentity": call.principal.user_identity(),
        "serviceName": SERVICES["oss"]["serviceName"],
        "additionalEventData": {"CallerBid": OSS_CALLER_BID},
        "requestId": call.request_id,
        "eventTime": _iso(now),
        "isGlobal": False,
        "acsRegion": call.region,
        "eventName": call.event_name,
    }
    if call.error_code:
        # Failed calls carry the error (ActionTrail's event structure); the OSS sample shows a successful one.
        record["errorCode"] = call.error_code
        record["errorMessage"] = call.error_message or ""
    return record
