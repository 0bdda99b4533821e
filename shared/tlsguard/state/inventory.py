"""The custom-domain inventory: which OSS custom domains exist, found by a full ListCname pass.

Listing every bucket's CNAMEs costs one call per bucket, so the sweep does it only every
``certificates.discovery_hours`` (default 24) and in between checks the domains the last pass found. Each pass is
kept as a new generation ``inventory/oss-cname.<stamp>.json`` (never overwritten); the newest wins and older ones
are deleted. A domain bound since the last pass is still checked at once: its PutCname event reaches on_change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tlsguard.model import TargetKind, TargetRef, utc_now_iso
from tlsguard.state.journal import stamp_of

if TYPE_CHECKING:
    from tlsguard.state.store import StateBucket


class DomainInventory:
    """Generations of the custom-domain inventory in the state bucket."""

    def __init__(self, bucket: StateBucket) -> None:
        self.bucket = bucket

    def _prefix(self) -> str:
        return self.bucket.key("inventory", "oss-cname.")

    def latest(self) -> tuple[float, list[TargetRef]] | None:
        """(when the newest pass ran, its domains), or None when no pass has run."""
        keys = sorted(self.bucket.keys(self._prefix()))
        for key in reversed(keys):
            document = self.bucket.read_json(key)
            if document and "damaged" not in document:
                domains = [TargetRef.from_dict(item) for item in document.get("domains") or []
                           if isinstance(item, dict) and item.get("kind") == TargetKind.OSS_CNAME.value]
                return float(document.get("epoch") or 0.0), domains
        return None

    def store(self, domains: list[TargetRef], now: float) -> None:
        """Record a full pass, then drop the generations before it."""
        previous = sorted(self.bucket.keys(self._prefix()))
        document: dict[str, Any] = {"epoch": now, "time": utc_now_iso(now), "domains": [d.to_dict() for d in domains]}
        self.bucket.create_json(f"{self._prefix()}{stamp_of(now)}.json", document)
        for key in previous:
            self.bucket.delete(key)
