"""EventBridge OpenAPI 2020-04-01 (RPC style): ListRules and ListTargets over the rules of ``cloud.events``.

ListRules: https://alibabacloud.com/help/en/eventbridge/developer-reference/api-eventbridge-2020-04-01-listrules and
its field table https://help.aliyun.com/zh/eventbridge/listrules (``EventBusName``, ``RuleNamePrefix``, ``Limit``
at most 100, ``NextToken``; answer ``{"Code", "Message", "RequestId", "Success", "Data": {"Rules": [{"RuleARN",
"EventBusName", "RuleName", "Description", "Status": "ENABLE"|"DISABLE", "FilterPattern", "Targets", "DetailMap"}],
"NextToken", "Total"}}``). ListTargets:
https://alibabacloud.com/help/en/eventbridge/developer-reference/api-eventbridge-2020-04-01-listtargets
(``EventBusName``, ``RuleName``, ``Limit``, ``NextToken``; ``Data.Targets[]`` of ``{"Id", "Type", "Endpoint",
"PushRetryStrategy", "ParamList"}``; an unknown rule answers ``EventRuleNotExisted``). RAM actions
``eventbridge:ListRules`` and ``eventbridge:ListTargets``. UNCONFIRMED: the HTTP status of ``EventRuleNotExisted``
and ``EventBusNotExist`` (404 here), the FC target's ``ParamList`` keys, and that the RPC form (``Action=ListRules``
on ``eventbridge.<region>.aliyuncs.com``) is what the OpenAPI SDKs call (the older form is
``POST /openapi/listRules`` on ``<account>.eventbridge.<region>.aliyuncs.com``, https://help.aliyun.com/en/eventbridge/listrules).

localcloud has one bus, ``default``; every rule targets one FC function, shown as an ``acs.fc.function`` target
whose endpoint is the function's FC 3.0 ARN.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from localcloud.errors import ServiceError
from localcloud.rpc.auth import NonceCache
from localcloud.rpc.qps import QpsLimiter
from localcloud.rpc.service import Action, RpcCall, RpcService

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud
    from localcloud.eventbridge.bus import Rule

VERSION = "2020-04-01"
DEFAULT_BUS = "default"
MAX_LIMIT = 100


def _invalid(name: str) -> ServiceError:
    return ServiceError(400, "InvalidParameter", f"Specified parameter {name} is not valid.")


def _page(call: RpcCall, items: list[Any]) -> tuple[list[Any], str]:
    raw_limit = call.get("Limit")
    try:
        limit = int(raw_limit) if raw_limit else MAX_LIMIT
    except ValueError:
        raise _invalid("Limit") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise _invalid("Limit")
    token = call.get("NextToken")
    try:
        offset = int(token) if token else 0
    except ValueError:
        raise _invalid("NextToken") from None
    if offset < 0:
        raise _invalid("NextToken")
    page = items[offset:offset + limit]
    return page, str(offset + limit) if offset + limit < len(items) else ""


def _answer(data: dict[str, Any]) -> dict[str, Any]:
    return {"Code": "Success", "Message": "", "Success": True, "Data": data}


class EventBridgeService(RpcService):
    """The EventBridge OpenAPI endpoint (``endpoints["eventbridge"]``)."""

    name = "eventbridge"
    product = "eventbridge"
    host_id = "eventbridge.cn-hangzhou.aliyuncs.com"
    version = VERSION
    ram_code = "eventbridge"

    def __init__(self, cloud: LocalCloud) -> None:
        super().__init__(cloud, QpsLimiter({}), NonceCache())

    def build_actions(self) -> dict[str, Action]:
        return {"ListRules": Action(self.list_rules), "ListTargets": Action(self.list_targets,
                                                                           resource_param="RuleName")}

    # -- shapes --------------------------------------------------------------------------------------------
    def _bus(self, call: RpcCall) -> str:
        bus = call.get("EventBusName") or DEFAULT_BUS
        if bus != DEFAULT_BUS:
            raise ServiceError(404, "EventBusNotExist", f"The event bus [{bus}] not existed!")
        return bus

    def _rules(self, call: RpcCall) -> list[Rule]:
        """The rules on the bus that belong to the caller's account (judged by their target function)."""
        mine = {spec.name for spec in self.cloud.fc.functions(call.account_id)}
        others = {spec.name for spec in self.cloud.fc.functions()} - mine
        return sorted((r for r in self.cloud.events.rules() if r.function not in others), key=lambda r: r.name)

    def _target(self, call: RpcCall, rule: Rule) -> dict[str, Any]:
        region = self.cloud.region
        arn = f"acs:fc:{region}:{call.account_id}:functions/{rule.function}"
        return {"Id": f"{rule.name}-fc", "Type": "acs.fc.function", "Endpoint": arn,
                "PushRetryStrategy": "BACKOFF_RETRY",
                "ParamList": [{"ResourceKey": "functionName", "Form": "CONSTANT", "Value": rule.function},
                              {"ResourceKey": "Qualifier", "Form": "CONSTANT", "Value": "LATEST"},
                              {"ResourceKey": "InvocationType", "Form": "CONSTANT", "Value": "Async"},
                              {"ResourceKey": "Body", "Form": "ORIGINAL"}]}

    def _rule(self, call: RpcCall, bus: str, rule: Rule) -> dict[str, Any]:
        return {"RuleARN": f"acs:eventbridge:{self.cloud.region}:{call.account_id}:eventbus/{bus}/rule/{rule.name}",
                "EventBusName": bus, "RuleName": rule.name, "Description": rule.description,
                "Status": "ENABLE" if rule.enabled else "DISABLE",
                "FilterPattern": json.dumps(rule.pattern, separators=(",", ":")),
                "Targets": [self._target(call, rule)], "DetailMap": {}}

    # -- actions -------------------------------------------------------------------------------------------
    def list_rules(self, call: RpcCall) -> dict[str, Any]:
        bus = self._bus(call)
        prefix = call.get("RuleNamePrefix")
        rules = [r for r in self._rules(call) if r.name.startswith(prefix)]
        page, token = _page(call, rules)
        data: dict[str, Any] = {"Rules": [self._rule(call, bus, r) for r in page], "Total": len(rules)}
        if token:
            data["NextToken"] = token
        return _answer(data)

    def list_targets(self, call: RpcCall) -> dict[str, Any]:
        self._bus(call)
        name = call.require("RuleName")
        rule = next((r for r in self._rules(call) if r.name == name), None)
        if rule is None:
            raise ServiceError(404, "EventRuleNotExisted", f"The event rule [{name}] not existed!")
        targets, token = _page(call, [self._target(call, rule)])
        data: dict[str, Any] = {"Targets": targets, "Total": 1}
        if token:
            data["NextToken"] = token
        return _answer(data)
