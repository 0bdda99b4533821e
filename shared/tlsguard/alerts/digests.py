"""One digest for a fanned-out sweep: each batch files its part; the last to finish sends them as one message.

``digests/<run>/part-<n>.json``  one batch's digest (what it found new, reminded, resolved, remediated);
``digests/<run>/expected.json``  written by the sweep once every batch is queued: how many parts to wait for;
``digests/<run>/sent.json``      created (forbid-overwrite) by whoever sends: exactly one sender.
Whoever completes the set (a batch, or the sweep itself if the batches were faster) sends the combined digest. A
run whose parts never all arrive (a batch that exhausted its retries) is sent as it stands by the next sweep once
it is older than :data:`STALE_AFTER_SECONDS`, saying how many batches reported.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tlsguard.alerts.path import MAX_DIGEST_ITEMS, MAX_ITEMS_PER_SECTION

if TYPE_CHECKING:
    from tlsguard.state import StateBucket

STALE_AFTER_SECONDS = 1800.0
_SECTIONS = ("needs_attention", "resolved", "remediated", "verifications", "notices")
_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")


def run_key(correlation: str) -> str:
    return _UNSAFE.sub("_", correlation)[:200] or "run"


def merge(parts: list[dict[str, Any]], *, expected: int) -> dict[str, Any]:
    """Several batches' digests as one: counts summed, sections concatenated (bounded), the rest counted."""
    merged: dict[str, Any] = {**parts[0], "counts": {}, **{section: [] for section in _SECTIONS}, "omitted": 0}
    for part in parts:
        for name, count in (part.get("counts") or {}).items():
            merged["counts"][name] = merged["counts"].get(name, 0) + int(count)
        for section in _SECTIONS:
            merged[section].extend(part.get(section) or [])
        merged["omitted"] += int(part.get("omitted") or 0)
    for section in _SECTIONS:  # each channel lists its own worst items of these (alerts.channels.routed)
        bound = MAX_ITEMS_PER_SECTION if section == "notices" else MAX_DIGEST_ITEMS
        extra = len(merged[section]) - bound
        if extra > 0:
            merged[section] = merged[section][:bound]
            merged["omitted"] += extra
    merged["batches"] = {"reported": len(parts), "expected": expected}
    return merged


def _has_content(message: dict[str, Any]) -> bool:
    return any(message.get(section) for section in _SECTIONS)


class DigestParts:
    """The parts of fanned-out runs' digests, in the state bucket."""

    def __init__(self, bucket: StateBucket) -> None:
        self.bucket = bucket

    def _key(self, run: str, name: str) -> str:
        return self.bucket.key("digests", run_key(run), name)

    def save_part(self, run: str, part: int, message: dict[str, Any]) -> None:
        self.bucket.create_json(self._key(run, f"part-{part}.json"), message)

    def expect(self, run: str, batches: int, now: float) -> None:
        self.bucket.create_json(self._key(run, "expected.json"), {"batches": batches, "epoch": now})

    def claim(self, run: str, *, now: float, force: bool = False) -> dict[str, Any] | None:
        """The combined digest when this caller must send it (all parts in, or ``force``), else None."""
        expected = self.bucket.read_json(self._key(run, "expected.json"))
        if not expected or "damaged" in expected:
            return None
        batches = int(expected.get("batches") or 0)
        part_keys = [k for k in self.bucket.keys(self._key(run, "part-")) if k.endswith(".json")]
        if len(part_keys) < batches and not force:
            return None
        if not self.bucket.create_json(self._key(run, "sent.json"), {"epoch": now, "parts": len(part_keys)}):
            return None  # someone else completed the set first
        parts = [p for p in (self.bucket.read_json(k) for k in sorted(part_keys)) if p and "damaged" not in p]
        for key in [*part_keys, self._key(run, "expected.json")]:
            self.bucket.delete(key)
        if not parts:
            return None
        message = merge(parts, expected=batches)
        return message if _has_content(message) else None

    def stale_runs(self, now: float) -> list[str]:
        """Runs whose parts are not all in and whose fan-out is older than :data:`STALE_AFTER_SECONDS`."""
        base = self.bucket.key("digests") + "/"
        runs: dict[str, set[str]] = {}
        for key in self.bucket.keys(base):
            run, _, name = key[len(base):].partition("/")
            runs.setdefault(run, set()).add(name)
        stale = []
        for run, names in runs.items():
            if "expected.json" not in names or "sent.json" in names:
                continue
            expected = self.bucket.read_json(self._key(run, "expected.json")) or {}
            if now - float(expected.get("epoch") or 0.0) >= STALE_AFTER_SECONDS:
                stale.append(run)
        return stale
