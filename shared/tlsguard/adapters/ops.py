"""Adapters of ``tlsguard doctor``'s ports: STS, ActionTrail, EventBridge, FC 3.0 and the bucket ACL.

STS 2015-04-01 GetCallerIdentity, ActionTrail 2020-07-06 LookupEvents and EventBridge 2020-04-01
ListRules/ListTargets are RPC APIs called with aliyun-python-sdk-core's CommonRequest (:mod:`tlsguard.certs._rpc`);
FC 3.0 GetFunction/ListTriggers/InvokeFunction go through alibabacloud-fc20230330; the ACL comes from OSS
GetBucketInfo (alibabacloud-oss-v2). SDKs are imported lazily; errors map to tlsguard's taxonomy.

Endpoints: ``sts.aliyuncs.com``; ``actiontrail.<region>.aliyuncs.com``
(https://alibabacloud.com/help/en/actiontrail/developer-reference/api-actiontrail-2020-07-06-lookupevents);
``eventbridge.<region>.aliyuncs.com`` (UNCONFIRMED: the OpenAPI endpoint of the RPC form); FC
``<account>.<region>.fc.aliyuncs.com``. Against localcloud, the endpoints file names each one.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

from tlsguard.certs._rpc import RpcCaller, RpcConnection
from tlsguard.errors import CloudError, NotFound, PermissionDenied, Transient
from tlsguard.ratelimit import TokenBucket
from tlsguard.retry import RetryPolicy, call_with_retries

if TYPE_CHECKING:
    from tlsguard.adapters.oss import AliyunOss
    from tlsguard.ports import BucketRef

STS_VERSION = "2015-04-01"
ACTIONTRAIL_VERSION = "2020-07-06"
EVENTBRIDGE_VERSION = "2020-04-01"
#: LookupEvents answers at most 50 events per call and may be called "at most twice per second" (API page above).
LOOKUP_PAGE = 50
LOOKUP_RATE = 2.0
#: EventBridge ListRules / ListTargets return at most 100 entries per call (the ListRules page).
RULES_PAGE = 100
#: Most pages any listing here follows (bounded time whatever the account holds).
MAX_PAGES = 20


def _time(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class AliyunIdentity:
    """STS GetCallerIdentity (https://help.aliyun.com/en/ram/developer-reference/api-sts-2015-04-01-getcalleridentity;
    no RAM authorization needed)."""

    def __init__(self, connection: RpcConnection) -> None:
        self.rpc = RpcCaller(connection, service="sts", version=STS_VERSION, public_domain="sts.aliyuncs.com")

    def caller_identity(self) -> dict[str, str]:
        answer = self.rpc.call("GetCallerIdentity")
        return {key: str(answer.get(key) or "") for key in ("IdentityType", "AccountId", "Arn", "PrincipalId",
                                                            "UserId", "RoleId")}


class AliyunTrail:
    """ActionTrail LookupEvents, paced to its documented two calls per second and bounded in pages."""

    def __init__(self, connection: RpcConnection) -> None:
        self.rpc = RpcCaller(connection, service="actiontrail", version=ACTIONTRAIL_VERSION,
                             public_domain=f"actiontrail.{connection.region}.aliyuncs.com")
        self.pace = TokenBucket(LOOKUP_RATE, burst=LOOKUP_RATE)

    def lookup_events(self, key: str, value: str, start: float, end: float,
                      max_pages: int = MAX_PAGES) -> list[dict[str, Any]]:
        """Events whose ``key`` (a LookupAttribute key, e.g. ServiceName) is ``value``, newest first."""
        events: list[dict[str, Any]] = []
        token = ""
        for _ in range(max(1, max_pages)):
            params: dict[str, str | int | bool] = {
                "LookupAttribute.1.Key": key, "LookupAttribute.1.Value": value, "StartTime": _time(start),
                "EndTime": _time(end), "MaxResults": LOOKUP_PAGE}
            if token:
                params["NextToken"] = token
            self.pace.acquire()
            answer = self.rpc.call("LookupEvents", params, resource=f"{key}={value}")
            for event in answer.get("Events") or []:
                if isinstance(event, str):  # tolerate events rendered as JSON text
                    try:
                        event = json.loads(event)
                    except ValueError:
                        continue
                if isinstance(event, dict):
                    events.append(event)
            token = str(answer.get("NextToken") or "")
            if not token:
                break
        return events


class AliyunEventRules:
    """EventBridge ListRules / ListTargets (https://alibabacloud.com/help/en/eventbridge/developer-reference/
    api-eventbridge-2020-04-01-listrules, ...-listtargets)."""

    def __init__(self, connection: RpcConnection) -> None:
        self.rpc = RpcCaller(connection, service="eventbridge", version=EVENTBRIDGE_VERSION,
                             public_domain=f"eventbridge.{connection.region}.aliyuncs.com")

    def _pages(self, action: str, params: dict[str, str | int | bool], key: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        token = ""
        for _ in range(MAX_PAGES):
            answer = self.rpc.call(action, {**params, "Limit": RULES_PAGE, **({"NextToken": token} if token else {})},
                                   resource=str(params.get("RuleName") or params.get("EventBusName") or ""))
            raw = answer.get("Data")
            data: dict[str, Any] = raw if isinstance(raw, dict) else {}
            items = data.get(key)
            found.extend(item for item in (items if isinstance(items, list) else []) if isinstance(item, dict))
            token = str(data.get("NextToken") or "")
            if not token:
                break
        return found

    def list_rules(self, bus: str) -> list[dict[str, Any]]:
        return self._pages("ListRules", {"EventBusName": bus}, "Rules")

    def list_targets(self, bus: str, rule: str) -> list[dict[str, Any]]:
        return self._pages("ListTargets", {"EventBusName": bus, "RuleName": rule}, "Targets")


class AliyunFunctions:
    """FC 3.0 GetFunction, ListTriggers and a Sync InvokeFunction (alibabacloud-fc20230330)."""

    def __init__(self, connection: RpcConnection, endpoint: str) -> None:
        from alibabacloud_fc20230330.client import Client
        from alibabacloud_tea_openapi.models import Config

        protocol = "https"
        if endpoint.startswith("http://"):
            protocol, endpoint = "http", endpoint[len("http://"):]
        elif endpoint.startswith("https://"):
            endpoint = endpoint[len("https://"):]
        self.client = Client(Config(access_key_id=connection.access_key_id,
                                    access_key_secret=connection.access_key_secret,
                                    security_token=connection.security_token or None, endpoint=endpoint,
                                    protocol=protocol, region_id=connection.region, read_timeout=30000,
                                    connect_timeout=5000))
        self.retry = RetryPolicy(attempts=3)

    def _call(self, operation: str, resource: str, fn: Any) -> Any:
        def attempt() -> Any:
            try:
                return fn()
            except Exception as exc:
                raise _fc_error(exc, operation, resource) from exc

        return call_with_retries(self.retry, attempt)

    def get_function(self, name: str) -> dict[str, Any] | None:
        """The function's settings as FC returns them (``Function``), None when it does not exist."""
        from alibabacloud_fc20230330 import models
        from alibabacloud_tea_util.models import RuntimeOptions

        try:
            response = self._call("GetFunction", name, lambda: self.client.get_function_with_options(
                name, models.GetFunctionRequest(), {}, RuntimeOptions()))
        except NotFound:
            return None
        body: dict[str, Any] = response.body.to_map() if response.body is not None else {}
        return body

    def list_triggers(self, name: str) -> list[dict[str, Any]]:
        """Every trigger of the function (``Trigger``; ``triggerConfig`` parsed from its JSON text)."""
        from alibabacloud_fc20230330 import models
        from alibabacloud_tea_util.models import RuntimeOptions

        triggers: list[dict[str, Any]] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            request = models.ListTriggersRequest(limit=100, next_token=token)
            response = self._call("ListTriggers", name, lambda r=request: self.client.list_triggers_with_options(
                name, r, {}, RuntimeOptions()))
            body = response.body.to_map() if response.body is not None else {}
            for trigger in body.get("triggers") or []:
                config = trigger.get("triggerConfig")
                if isinstance(config, str):
                    try:
                        trigger = {**trigger, "triggerConfig": json.loads(config)}
                    except ValueError:
                        pass
                triggers.append(trigger)
            token = body.get("nextToken") or None
            if not token:
                break
        return triggers

    def invoke(self, name: str, payload: bytes) -> None:
        """A Sync invocation whose answer is not needed (a permission probe with a payload the handler refuses)."""
        from alibabacloud_fc20230330 import models
        from alibabacloud_tea_util.models import RuntimeOptions

        self._call("InvokeFunction", name, lambda: self.client.invoke_function_with_options(
            name, models.InvokeFunctionRequest(body=io.BytesIO(payload)),
            models.InvokeFunctionHeaders(x_fc_invocation_type="Sync"), RuntimeOptions()))


def _fc_error(exc: BaseException, operation: str, resource: str) -> CloudError:
    status = int(getattr(exc, "statusCode", 0) or 0)
    code = str(getattr(exc, "code", "") or type(exc).__name__)
    message = str(getattr(exc, "message", "") or exc)
    kwargs: dict[str, Any] = {"service": "fc", "operation": operation, "code": code, "status": status,
                              "resource": resource}
    if status in (401, 403):
        return PermissionDenied(message, **kwargs)
    if status == 404:
        return NotFound(message, **kwargs)
    if status and status < 500 and status != 429:
        return CloudError(message, **kwargs)
    return Transient(message, **kwargs)


class AliyunBucketAcl:
    """A bucket's ACL from OSS GetBucketInfo (``BucketInfo.acl``: private, public-read or public-read-write;
    https://www.alibabacloud.com/help/en/oss/developer-reference/getbucketinfo)."""

    def __init__(self, oss: AliyunOss) -> None:
        self.oss = oss

    def bucket_acl(self, bucket: BucketRef) -> str:
        import alibabacloud_oss_v2 as oss_sdk

        from tlsguard.adapters.oss import map_sdk_error

        client = self.oss.client(bucket.region)

        def fetch() -> str:
            try:
                result = client.get_bucket_info(oss_sdk.GetBucketInfoRequest(bucket=bucket.name))
            except Exception as exc:
                raise map_sdk_error(exc, "oss", "GetBucketInfo", bucket.name) from exc
            info = result.bucket_info
            return str(getattr(info, "acl", "") or "") if info is not None else ""

        return call_with_retries(self.oss.retry, fetch)
