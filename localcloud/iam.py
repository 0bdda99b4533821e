"""Identities: accounts, their AccessKey pairs, and RAM-role session (STS) credentials.

Every emulated service authenticates a request to a :class:`Principal`, which also feeds the ``userIdentity``
of the ActionTrail event the request produces. A RAM user or role may be limited to a set of RAM actions
(:meth:`IdentityStore.restrict`): the services then refuse any other action as RAM would (no Allow: implicit
deny). Nothing is limited unless a test asks for it.
"""

from __future__ import annotations

import fnmatch
import secrets
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

#: A session token's problems, as services map them to their own error codes.
TOKEN_OK = "ok"
TOKEN_MISSING = "missing"
TOKEN_MISMATCH = "mismatch"
TOKEN_EXPIRED = "expired"


@dataclass(frozen=True)
class Principal:
    """Who is calling: an account's root or RAM user key, or an assumed role's STS session."""

    account_id: str
    access_key_id: str
    access_key_secret: str
    identity_type: str  # "root-account" | "ram-user" | "assumed-role"
    user_name: str  # "root", a RAM user name, or "<role>:<session>"
    principal_id: str
    security_token: str | None = None
    expires_at: float | None = None  # epoch seconds, STS only
    role_name: str | None = None
    session_name: str | None = None

    @property
    def is_sts(self) -> bool:
        return self.security_token is not None

    def check_token(self, presented: str | None, now: float) -> str:
        """Validate the security token sent with a request signed by this principal's key."""
        if not self.is_sts:
            return TOKEN_OK
        if not presented:
            return TOKEN_MISSING
        if not secrets.compare_digest(presented, self.security_token or ""):
            return TOKEN_MISMATCH
        if self.expires_at is not None and now >= self.expires_at:
            return TOKEN_EXPIRED
        return TOKEN_OK

    def user_identity(self) -> dict[str, object]:
        """The ActionTrail ``userIdentity`` block for this principal."""
        identity: dict[str, object] = {
            "type": self.identity_type,
            "accountId": self.account_id,
            "principalId": self.principal_id,
            "accessKeyId": self.access_key_id,
            "userName": self.user_name,
        }
        if self.is_sts:
            identity["sessionContext"] = {"attributes": {"mfaAuthenticated": "false"}}
        return identity


class IdentityStore:
    """Accounts, keys and roles; thread-safe; lookups by AccessKeyId are O(1)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, Principal] = {}
        self._accounts: dict[str, str] = {}  # id -> name
        self._roles: dict[tuple[str, str], str] = {}  # (account, role) -> role id
        #: (account, RAM user or role name) -> the RAM actions (fnmatch globs) it is allowed; absent = all.
        self._allowed: dict[tuple[str, str], tuple[str, ...]] = {}

    def reset(self) -> None:
        with self._lock:
            self._keys.clear()
            self._accounts.clear()
            self._roles.clear()
            self._allowed.clear()

    # -- RAM authorization ----------------------------------------------------------------------------------
    def restrict(self, account_id: str, name: str, allowed_actions: Iterable[str] | None) -> None:
        """Allow the RAM user or role ``name`` only ``allowed_actions`` (RAM action names such as
        ``oss:GetBucketPolicy``, or globs such as ``oss:Get*``); None lifts the limit. A root key is never
        limited, as an account's root is not subject to RAM policies."""
        with self._lock:
            if allowed_actions is None:
                self._allowed.pop((account_id, name), None)
            else:
                self._allowed[(account_id, name)] = tuple(allowed_actions)

    def allows(self, principal: Principal, action: str) -> bool:
        """Whether ``principal`` may perform the RAM action ``action`` (unrestricted identities may do anything)."""
        if principal.identity_type == "root-account":
            return True
        name = principal.role_name if principal.identity_type == "assumed-role" else principal.user_name
        with self._lock:
            allowed = self._allowed.get((principal.account_id, name or ""))
        if allowed is None:
            return True
        return any(fnmatch.fnmatchcase(action, pattern) for pattern in allowed)

    def add_account(self, account_id: str, name: str = "") -> None:
        with self._lock:
            self._accounts[account_id] = name or account_id

    def accounts(self) -> dict[str, str]:
        with self._lock:
            return dict(self._accounts)

    def add_access_key(self, account_id: str, access_key_id: str, access_key_secret: str,
                       user_name: str | None = None) -> Principal:
        """Register a long-term key: the root account's when ``user_name`` is None, else a RAM user's."""
        if user_name is None:
            principal = Principal(account_id, access_key_id, access_key_secret, "root-account", "root", account_id)
        else:
            principal = Principal(account_id, access_key_id, access_key_secret, "ram-user", user_name,
                                  str(abs(hash((account_id, user_name))) % 10**16).zfill(16))
        with self._lock:
            if account_id not in self._accounts:
                self._accounts[account_id] = account_id
            self._keys[access_key_id] = principal
        return principal

    def add_role(self, account_id: str, role_name: str) -> str:
        role_id = str(300000000000000000 + abs(hash((account_id, role_name))) % 10**17)
        with self._lock:
            self._roles[(account_id, role_name)] = role_id
        return role_id

    def roles(self, account_id: str) -> list[str]:
        with self._lock:
            return [name for (acct, name) in self._roles if acct == account_id]

    def assume_role(self, account_id: str, role_name: str, session_name: str, now: float,
                    duration_seconds: float = 3600.0) -> Principal:
        """Mint STS session credentials (``STS.`` key id, secret, SecurityToken, expiry) for a role."""
        with self._lock:
            role_id = self._roles.get((account_id, role_name))
        if role_id is None:
            role_id = self.add_role(account_id, role_name)
        principal = Principal(
            account_id=account_id,
            access_key_id="STS." + secrets.token_hex(14),
            access_key_secret=secrets.token_urlsafe(30),
            identity_type="assumed-role",
            user_name=f"{role_name}:{session_name}",
            principal_id=f"{role_id}:{session_name}",
            security_token="CAIS" + secrets.token_urlsafe(96),
            expires_at=now + duration_seconds,
            role_name=role_name,
            session_name=session_name,
        )
        with self._lock:
            self._keys[principal.access_key_id] = principal
        return principal

    def expire(self, access_key_id: str, at: float) -> None:
        """Force an STS credential's expiry (tests of expired tokens)."""
        with self._lock:
            principal = self._keys[access_key_id]
            self._keys[access_key_id] = replace(principal, expires_at=at)

    def lookup(self, access_key_id: str) -> Principal | None:
        with self._lock:
            return self._keys.get(access_key_id)

    def keys(self) -> list[Principal]:
        with self._lock:
            return list(self._keys.values())
