"""ActionTrail RPC API 2020-07-06: LookupEvents over the events ``cloud.trail`` recorded.

https://alibabacloud.com/help/en/actiontrail/developer-reference/api-actiontrail-2020-07-06-lookupevents (RAM action
``actiontrail:LookupEvents``; "at most twice per second") and the LookupAttribute keys of
https://www.alibabacloud.com/help/tr/actiontrail/support/how-to-set-the-lookupattribute-parameter (ServiceName,
EventName, User, EventId, ResourceType, ResourceName, EventRW, EventAccessKeyId, EventType, ...). Parameters:
``LookupAttribute.N.Key`` / ``.Value`` (at most two, ANDed), ``StartTime`` / ``EndTime``
(``YYYY-MM-DDThh:mm:ssZ``; default the last 7 days; a window of at most 30 days within the last 90, per the
2017-12-04 page https://help.aliyun.com/document_detail/28849.html), ``MaxResults`` (0..50, default 20),
``NextToken``. The answer is ``{"RequestId", "StartTime", "EndTime", "Events": [...], "NextToken"?}`` with the
newest event first; each event is the recorded ActionTrail record as an object (UNCONFIRMED: whether 2020-07-06
returns objects or JSON strings; tlsguard's client accepts both). Only the caller's own account's events are
returned. Attribute keys localcloud does not emulate are refused with ``InvalidParameter``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from localcloud.errors import ServiceError
from localcloud.rpc.auth import NonceCache
from localcloud.rpc.qps import QpsLimiter
from localcloud.rpc.service import Action, RpcCall, RpcService

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud

VERSION = "2020-07-06"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DEFAULT_WINDOW_SECONDS = 7 * 86400
MAX_WINDOW_SECONDS = 30 * 86400
MAX_AGE_SECONDS = 90 * 86400
MAX_RESULTS = 50
DEFAULT_RESULTS = 20
MAX_ATTRIBUTES = 2
#: LookupEvents is limited to two calls per second (the API page).
QPS_LIMITS = {"LookupEvents": 2}


def _invalid(name: str) -> ServiceError:
    return ServiceError(400, "InvalidParameter", f"Specified parameter {name} is not valid.")


def _parse_time(call: RpcCall, name: str, default: float) -> float:
    raw = call.get(name)
    if not raw:
        return default
    try:
        return datetime.strptime(raw, TIME_FORMAT).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise _invalid(name) from None


def _format(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime(TIME_FORMAT)


def _event_time(record: dict[str, Any]) -> float:
    try:
        return datetime.strptime(str(record.get("eventTime") or ""), TIME_FORMAT).replace(
            tzinfo=timezone.utc).timestamp()
    except ValueError:
        return 0.0


def _resources(record: dict[str, Any]) -> dict[str, list[str]]:
    referenced = record.get("referencedResources")
    if not isinstance(referenced, dict):
        return {}
    return {str(k): [str(v) for v in values] for k, values in referenced.items() if isinstance(values, list)}


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    identity = record.get("userIdentity")
    return identity if isinstance(identity, dict) else {}


def _user(record: dict[str, Any]) -> str:
    """The caller's name as ActionTrail's User attribute matches it: the RAM user, or the role of a session."""
    name = str(_identity(record).get("userName") or "")
    return name.split(":", 1)[0]


#: LookupAttribute key -> the values of a record it matches against.
_ATTRIBUTES: dict[str, Any] = {
    "ServiceName": lambda r: [str(r.get("serviceName") or "")],
    "EventName": lambda r: [str(r.get("eventName") or "")],
    "EventId": lambda r: [str(r.get("eventId") or "")],
    "EventType": lambda r: [str(r.get("eventType") or "")],
    # localcloud records only writes; OSS records carry no eventRW (the documented OSS sample has none).
    "EventRW": lambda r: [str(r.get("eventRW") or "Write")],
    "User": lambda r: [_user(r)],
    "EventAccessKeyId": lambda r: [str(_identity(r).get("accessKeyId") or "")],
    "ResourceType": lambda r: list(_resources(r)),
    "ResourceName": lambda r: [name for names in _resources(r).values() for name in names],
}


class ActionTrailService(RpcService):
    """The ActionTrail RPC endpoint (``endpoints["actiontrail"]``); LookupEvents only."""

    name = "actiontrail"
    product = "Actiontrail"
    host_id = "actiontrail.cn-hangzhou.aliyuncs.com"
    version = VERSION
    ram_code = "actiontrail"

    def __init__(self, cloud: LocalCloud) -> None:
        super().__init__(cloud, QpsLimiter(QPS_LIMITS), NonceCache())

    def build_actions(self) -> dict[str, Action]:
        return {"LookupEvents": Action(self.lookup_events)}

    def _filters(self, call: RpcCall) -> list[tuple[str, str]]:
        filters: list[tuple[str, str]] = []
        for index in range(1, MAX_ATTRIBUTES + 2):
            key = call.get(f"LookupAttribute.{index}.Key")
            value = call.get(f"LookupAttribute.{index}.Value")
            if not key and not value:
                continue
            if index > MAX_ATTRIBUTES:
                raise _invalid("LookupAttribute")
            if key not in _ATTRIBUTES:
                raise ServiceError(400, "InvalidParameter",
                                   f"Specified parameter LookupAttribute.{index}.Key is not valid "
                                   f"(localcloud emulates {', '.join(sorted(_ATTRIBUTES))}; see EMULATED_APIS.md).")
            if not value:
                raise _invalid(f"LookupAttribute.{index}.Value")
            filters.append((key, value))
        return filters

    def lookup_events(self, call: RpcCall) -> dict[str, Any]:
        now = self.cloud.clock.time()
        end = _parse_time(call, "EndTime", now)
        start = _parse_time(call, "StartTime", end - DEFAULT_WINDOW_SECONDS)
        if start > end or end - start > MAX_WINDOW_SECONDS or start < now - MAX_AGE_SECONDS:
            raise _invalid("StartTime")
        raw_max = call.get("MaxResults")
        try:
            limit = int(raw_max) if raw_max else DEFAULT_RESULTS
        except ValueError:
            raise _invalid("MaxResults") from None
        if not 0 <= limit <= MAX_RESULTS:
            raise _invalid("MaxResults")
        limit = limit or DEFAULT_RESULTS
        token = call.get("NextToken")
        try:
            offset = int(token) if token else 0
        except ValueError:
            raise _invalid("NextToken") from None
        if offset < 0:
            raise _invalid("NextToken")
        filters = self._filters(call)
        matched: list[dict[str, Any]] = []
        for envelope in reversed(self.cloud.trail.events()):  # newest first
            record = envelope.get("data")
            if not isinstance(record, dict) or str(envelope.get("aliyunaccountid") or "") != call.account_id:
                continue
            if not start <= _event_time(record) <= end:
                continue
            if all(value in _ATTRIBUTES[key](record) for key, value in filters):
                matched.append(record)
        page = matched[offset:offset + limit]
        body: dict[str, Any] = {"StartTime": _format(start), "EndTime": _format(end), "Events": page}
        if offset + limit < len(matched):
            body["NextToken"] = str(offset + limit)
        return body
