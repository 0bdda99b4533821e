"""Event leases: each ActionTrail event is acted on once, and a retry finishes what a dead claimant started.

``claims/<sha256(event id)>.<n>.json`` holds ``{owner, expires_at}`` (generation ``n`` from 1, created with
forbid-overwrite: of concurrent deliveries exactly one creates it). ``.<n>.done`` marks the event handled: a later
delivery is a duplicate, forever. ``.<n>.released`` gives the lease back early (the claimant failed with a
transient error and FC will retry). A delivery that finds generation ``n`` neither done nor released and past its
``expires_at`` takes over by creating generation ``n + 1``; one still inside its lease is busy: the caller waits
for it to finish or expire (the lease is short, well under the function's timeout) rather than dropping the event.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tlsguard.state.store import StateBucket

#: Default lease: longer than one event's work (a few round trips), far shorter than on_change's 60 s timeout.
DEFAULT_LEASE_SECONDS = 20.0
#: Generations tried before giving up (a pathological number of dead claimants).
MAX_GENERATIONS = 50


class LeaseState(str, Enum):
    ACQUIRED = "acquired"
    DUPLICATE = "duplicate"  # a claimant finished this event
    BUSY = "busy"  # a live claimant holds it


@dataclass(frozen=True)
class Lease:
    event_id: str
    generation: int
    expires_at: float

    @property
    def taken_over(self) -> bool:
        """True when an earlier claimant died or released the event before finishing it."""
        return self.generation > 1


@dataclass(frozen=True)
class LeaseDecision:
    state: LeaseState
    lease: Lease | None = None
    holder_expires_at: float = 0.0  # busy: when the live claimant's lease ends


class EventLeases:
    """Leases on event ids in the state bucket."""

    def __init__(self, bucket: StateBucket, ttl_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        self.bucket = bucket
        self.ttl_seconds = ttl_seconds

    def _key(self, event_id: str, generation: int, suffix: str) -> str:
        digest = hashlib.sha256(event_id.encode()).hexdigest()
        return self.bucket.key("claims", f"{digest}.{generation}.{suffix}")

    def _exists(self, key: str) -> bool:
        return self.bucket.oss.get_object(self.bucket.bucket, key) is not None

    def acquire(self, event_id: str, *, now: float, details: dict[str, Any] | None = None) -> LeaseDecision:
        """Claim ``event_id``: acquired (act on it), duplicate (already handled) or busy (a live claimant)."""
        expires_at = now + self.ttl_seconds
        for generation in range(1, MAX_GENERATIONS + 1):
            claim_key = self._key(event_id, generation, "json")
            document = {"event_id": event_id, "generation": generation, "expires_at": expires_at, "claimed_at": now,
                        **(details or {})}
            if self.bucket.create_json(claim_key, document):
                return LeaseDecision(LeaseState.ACQUIRED, Lease(event_id, generation, expires_at))
            if self._exists(self._key(event_id, generation, "done")):
                return LeaseDecision(LeaseState.DUPLICATE)
            if self._exists(self._key(event_id, generation, "released")):
                continue
            claim = self.bucket.read_json(claim_key) or {}
            try:
                holder_expires = float(claim.get("expires_at") or 0.0)
            except (TypeError, ValueError):
                holder_expires = 0.0
            if now < holder_expires:
                return LeaseDecision(LeaseState.BUSY, holder_expires_at=holder_expires)
            # expired without done or release: the claimant died; take over with the next generation
        return LeaseDecision(LeaseState.BUSY, holder_expires_at=now + self.ttl_seconds)

    def complete(self, lease: Lease) -> None:
        """The event is handled: every later delivery is a duplicate."""
        self.bucket.create(self._key(lease.event_id, lease.generation, "done"), b"done")

    def release(self, lease: Lease) -> None:
        """Give the lease back now (a transient failure; FC's retry may take it at once)."""
        self.bucket.create(self._key(lease.event_id, lease.generation, "released"), b"released")
