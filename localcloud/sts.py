"""STS RPC API 2015-04-01: GetCallerIdentity, the identity behind a request's AccessKey.

https://help.aliyun.com/en/ram/developer-reference/api-sts-2015-04-01-getcalleridentity: no request parameters and
no RAM authorization; the answer carries ``IdentityType`` (``Account``, ``RAMUser`` or ``AssumedRoleUser``),
``AccountId``, ``PrincipalId``, ``Arn``, ``UserId`` (accounts and RAM users only) and ``RoleId`` (roles only).
The ARN forms (``acs:ram::<account>:root``, ``...:user/<name>``, ``...:assumed-role/<role>/<session>``) follow the
doc's example (``acs:ram::196813200012****:user/admin``) and RAM's ARN conventions; the root and assumed-role forms
are UNCONFIRMED against a live answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from localcloud.rpc.auth import NonceCache
from localcloud.rpc.qps import QpsLimiter
from localcloud.rpc.service import Action, RpcCall, RpcService

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud
    from localcloud.iam import Principal

VERSION = "2015-04-01"


def caller_identity(principal: Principal) -> dict[str, Any]:
    """GetCallerIdentity's fields for ``principal``."""
    account = principal.account_id
    if principal.identity_type == "assumed-role":
        role_id = principal.principal_id.split(":", 1)[0]
        return {"IdentityType": "AssumedRoleUser", "AccountId": account, "PrincipalId": principal.principal_id,
                "RoleId": role_id,
                "Arn": f"acs:ram::{account}:assumed-role/{principal.role_name}/{principal.session_name}"}
    if principal.identity_type == "ram-user":
        return {"IdentityType": "RAMUser", "AccountId": account, "PrincipalId": principal.principal_id,
                "UserId": principal.principal_id, "Arn": f"acs:ram::{account}:user/{principal.user_name}"}
    return {"IdentityType": "Account", "AccountId": account, "PrincipalId": account, "UserId": account,
            "Arn": f"acs:ram::{account}:root"}


class StsService(RpcService):
    """The STS RPC endpoint (``endpoints["sts"]``); GetCallerIdentity only."""

    name = "sts"
    product = "Sts"
    host_id = "sts.aliyuncs.com"
    version = VERSION
    ram_code = None  # "No authorization for this operation" (the API page)

    def __init__(self, cloud: LocalCloud) -> None:
        super().__init__(cloud, QpsLimiter({}), NonceCache())

    def build_actions(self) -> dict[str, Action]:
        return {"GetCallerIdentity": Action(self.get_caller_identity)}

    def get_caller_identity(self, call: RpcCall) -> dict[str, Any]:
        return caller_identity(call.principal)
