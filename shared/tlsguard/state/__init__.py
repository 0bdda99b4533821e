"""The state bucket: event leases, the intent/outcome journal, pending live verifications, alert state and the
custom-domain inventory. Each lives under its own prefix; see the module of each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tlsguard.state.alert_state import AlertStateStore
from tlsguard.state.inventory import DomainInventory
from tlsguard.state.journal import Journal, JournalEntry, JournalId, new_journal_id
from tlsguard.state.leases import DEFAULT_LEASE_SECONDS, EventLeases, Lease, LeaseDecision, LeaseState
from tlsguard.state.pending import PendingVerification, PendingVerifications
from tlsguard.state.store import StateBucket

if TYPE_CHECKING:
    from tlsguard.ports import OssPort

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "AlertStateStore",
    "DomainInventory",
    "EventLeases",
    "Journal",
    "JournalEntry",
    "JournalId",
    "Lease",
    "LeaseDecision",
    "LeaseState",
    "PendingVerification",
    "PendingVerifications",
    "State",
    "StateBucket",
    "new_journal_id",
]


@dataclass
class State:
    """Everything tlsguard keeps in its state bucket, over one :class:`StateBucket`."""

    bucket: StateBucket
    journal: Journal
    leases: EventLeases
    pending: PendingVerifications
    alerts: AlertStateStore
    inventory: DomainInventory

    @classmethod
    def open(cls, oss: OssPort, bucket: str, prefix: str = "tlsguard/",
             lease_seconds: float = DEFAULT_LEASE_SECONDS) -> State:
        store = StateBucket(oss, bucket, prefix)
        return cls(store, Journal(store), EventLeases(store, lease_seconds), PendingVerifications(store),
                   AlertStateStore(store), DomainInventory(store))
