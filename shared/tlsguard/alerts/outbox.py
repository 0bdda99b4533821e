"""The alert outbox: what a channel could not take waits in the state bucket until it can (at least once, bounded).

``alerts/outbox/<channel>/<epoch>-<origin>-<nonce>.json``  the part of one digest routed to a channel that refused it
                                                          or could not be reached (after the channel's own retries);
                                                          created with forbid-overwrite, deleted once delivered.
``alerts/outbox-claims/<channel>/<entry>.<window>.json``   a run delivering the entry now (windows of
                                                          :data:`CLAIM_SECONDS`; deleted when it is done or failed).
``alerts/retry/<key>.json``                               an invocation whose work is done but whose digest nobody
                                                          heard: its FC retry only re-delivers the outbox.
``reports/<run>.json``                                    the report of such a run (its result never reaches FC).

Every later flush, by any entry point, first re-delivers each channel's entries (oldest first, at most
:data:`MAX_ENTRIES_PER_FLUSH`, merged into one "delayed" digest); entries older than ``alerts.outbox_hours`` are
dropped with a notice, and only then is their alert state withdrawn, so the next judgment alerts the problems that
are still open. Each entry is taken under a short claim, so two runs draining at once never deliver it twice; a
claim is a create-if-absent object per time window (OSS has no conditional overwrite), so however often a channel
stays down, taking an entry costs the same few requests.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tlsguard.model import utc_now_iso
from tlsguard.state.alert_state import safe_part

if TYPE_CHECKING:
    from tlsguard.state.store import StateBucket

#: Default age after which an undelivered entry is dropped (policy ``alerts.outbox_hours``).
DEFAULT_OUTBOX_HOURS = 24.0
#: Entries one flush re-delivers per channel (merged into one digest), and drops per flush in all: a run's own work
#: and its function's timeout come first.
MAX_ENTRIES_PER_FLUSH = 20
MAX_DROPS_PER_FLUSH = 100
#: Outbox keys one flush lists (oldest first); more wait for later flushes.
MAX_LISTED = 2000
#: How long a run holds an entry it is delivering (and the claims' window): longer than one channel's retries,
#: far shorter than a function's timeout.
CLAIM_SECONDS = 120.0
#: Entries merged into one delayed digest list at most this many earlier runs by name.
MAX_RUNS_NAMED = 5
#: Largest report kept for a run whose digest nobody heard (bytes of JSON; the targets are cut beyond it).
MAX_REPORT_BYTES = 1024 * 1024
_ENTRY = re.compile(r"^(?P<epoch>\d{1,12})-(?P<origin>[0-9a-f]{12})-[0-9a-f]{8}\.json$")


def origin_tag(origin: str, *, unheard: bool = False) -> str:
    """The part of an entry's name that says which run filed it, and whether no channel took that run's digest
    (what the failed path waits for: :func:`tlsguard.functions.failed_path.raise_if_unheard`)."""
    return hashlib.sha256((f"unheard:{origin}" if unheard else origin).encode()).hexdigest()[:12]


@dataclass
class Entry:
    """One saved part of a digest, taken (claimed) by this run."""

    key: str
    channel: str
    epoch: float
    document: dict[str, Any]
    claim: str = ""  # the claim object this run created for it

    @property
    def withdraw(self) -> list[tuple[str, str, str]]:
        """The alert-state keys ``(target key, check, state)`` of the problems this entry should have carried."""
        found = []
        for item in self.document.get("withdraw") or []:
            if isinstance(item, list) and len(item) == 3 and all(isinstance(part, str) for part in item):
                found.append((item[0], item[1], item[2]))
        return found

    @property
    def origin(self) -> str:
        return str(self.document.get("origin") or "")


@dataclass
class Taken:
    """What one flush took of one channel's outbox: entries to re-deliver, entries too old to deliver."""

    channel: str
    entries: list[Entry] = field(default_factory=list)
    expired: list[Entry] = field(default_factory=list)


class Outbox:
    """The ``alerts/outbox/`` records in the state bucket."""

    def __init__(self, bucket: StateBucket, *, max_age_seconds: float = DEFAULT_OUTBOX_HOURS * 3600) -> None:
        self.bucket = bucket
        self.max_age_seconds = max_age_seconds

    def _base(self) -> str:
        return self.bucket.key("alerts", "outbox") + "/"

    def _claim_key(self, entry_key: str, window: int) -> str:
        channel, _, name = entry_key[len(self._base()):].partition("/")
        return self.bucket.key("alerts", "outbox-claims", channel, f"{name}.{window}.json")

    def _claim(self, entry_key: str, now: float) -> str:
        """Claim an entry for this run: the claim's key, or "" when another run holds it (a claim made in this
        window, or one from the previous window that is still younger than :data:`CLAIM_SECONDS`)."""
        window = int(now // CLAIM_SECONDS)
        previous = self.bucket.read_json(self._claim_key(entry_key, window - 1))
        if previous is not None and now - float(previous.get("claimed_at") or 0.0) < CLAIM_SECONDS:
            return ""
        key = self._claim_key(entry_key, window)
        return key if self.bucket.create_json(key, {"claimed_at": now}) else ""

    # -- filing -------------------------------------------------------------------------------------------------
    def save(self, channel: str, channel_type: str, part: dict[str, Any], *, error: str, origin: str, now: float,
             withdraw: list[tuple[str, str, str]], unheard: bool = False) -> str | None:
        """File the part of a digest ``channel`` did not take (``unheard``: no channel took it); its key, or None
        when it could not be created."""
        name = f"{int(now):011d}-{origin_tag(origin, unheard=unheard)}-{secrets.token_hex(4)}.json"
        key = self._base() + f"{safe_part(channel)}/{name}"
        document = {"channel": channel, "type": channel_type, "epoch": now, "time": utc_now_iso(now),
                    "origin": origin, "unheard": unheard, "run": part.get("run") or {}, "run_time": part.get("time"),
                    "error": error, "digest": part, "withdraw": [list(item) for item in withdraw]}
        return key if self.bucket.create_json(key, document) else None

    # -- draining -----------------------------------------------------------------------------------------------
    def listing(self) -> dict[str, list[str]]:
        """Channel → its entries' keys, oldest first (at most :data:`MAX_LISTED` in all)."""
        base = self._base()
        found: dict[str, list[str]] = {}
        for key in itertools.islice(self.bucket.keys(base), MAX_LISTED):
            channel, _, name = key[len(base):].partition("/")
            if channel and _ENTRY.match(name):
                found.setdefault(channel, []).append(key)
        for keys in found.values():
            keys.sort(key=lambda k: k.rsplit("/", 1)[-1])
        return found

    def take(self, channel: str, keys: list[str], now: float, *, drops_left: int = MAX_DROPS_PER_FLUSH) -> Taken:
        """Claim the channel's oldest entries: those past the age bound to drop, the rest (bounded) to re-deliver.
        An entry another run holds, or one already gone, is skipped."""
        taken = Taken(channel)
        for key in keys:
            epoch = float(_ENTRY.match(key.rsplit("/", 1)[-1])["epoch"])  # type: ignore[index]  # listing() matched
            expired = now - epoch >= self.max_age_seconds
            if expired and len(taken.expired) >= drops_left:
                continue
            if not expired and len(taken.entries) >= MAX_ENTRIES_PER_FLUSH:
                break
            claim = self._claim(key, now)
            if not claim:
                continue
            document = self.bucket.read_json(key)
            if document is None:  # delivered or dropped by another run meanwhile
                self.bucket.delete(claim)
                continue
            entry = Entry(key, channel, epoch, document if "damaged" not in document else {}, claim)
            (taken.expired if expired else taken.entries).append(entry)
        return taken

    def done(self, entries: list[Entry]) -> None:
        """Delivered (or dropped): delete the entries, then their claims (a claim left by a run that died too)."""
        for entry in entries:
            self.bucket.delete(entry.key)
            stale = self._claim_key(entry.key, 0).rsplit(".", 2)[0] + "."
            for claim in itertools.islice(self.bucket.keys(stale), 10):
                self.bucket.delete(claim)

    def release(self, entries: list[Entry]) -> None:
        """Not delivered: give the entries back at once (the next flush, or this invocation's retry, tries again)."""
        for entry in entries:
            if entry.claim:
                self.bucket.delete(entry.claim)

    # -- the failed path: a retry of an invocation whose work is done ---------------------------------------------
    def _retry_key(self, key: str) -> str:
        return self.bucket.key("alerts", "retry", hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")

    def mark_retry(self, keys: list[str], document: dict[str, Any]) -> None:
        """Record that the invocation known by ``keys`` (its request id, its run) has done its work."""
        for key in keys:
            self.bucket.create_json(self._retry_key(key), {**document, "keys": keys})

    def retry_record(self, keys: list[str]) -> dict[str, Any] | None:
        """The record :meth:`mark_retry` left for any of ``keys``, or None (a first attempt)."""
        for key in keys:
            record = self.bucket.read_json(self._retry_key(key))
            if record is not None and "damaged" not in record:
                return record
        return None

    def clear_retry(self, record: dict[str, Any]) -> None:
        for key in record.get("keys") or []:
            if isinstance(key, str):
                self.bucket.delete(self._retry_key(key))

    def save_report(self, origin: str, document: dict[str, Any]) -> str:
        """Keep the report of a run whose digest nobody heard (``reports/<run>.json``); its key."""
        from tlsguard.alerts.digests import run_key

        key = self.bucket.key("reports", run_key(origin) + ".json")
        body = json.dumps(document, default=str)
        if len(body) > MAX_REPORT_BYTES and isinstance(document.get("targets"), list):
            kept = document["targets"][:100]
            document = {**document, "targets": kept, "targets_cut": len(document["targets"]) - len(kept)}
        self.bucket.create_json(key, document)  # a retry of the same run finds the first attempt's report
        return key


def delayed_digest(channel: str, entries: list[Entry], now: float) -> dict[str, Any]:
    """The entries of one channel as one digest: their items in order, led by a notice naming when and why they
    could not be delivered. One entry keeps its run and counts; several list their runs in the notice."""
    digests = [entry.document.get("digest") or {} for entry in entries]
    sections = ("needs_attention", "resolved", "remediated", "verifications")
    runs = [str((d.get("run") or {}).get("correlation_id") or (d.get("run") or {}).get("command") or "a run")
            for d in digests]
    first = entries[0].document
    named = ", ".join(dict.fromkeys(runs[:MAX_RUNS_NAMED])) + (f" and {len(runs) - MAX_RUNS_NAMED} more"
                                                               if len(runs) > MAX_RUNS_NAMED else "")
    notice = {"kind": "delayed", "channel": channel, "runs": len(entries), "named": named,
              "first_time": str(first.get("time") or "?"), "first_error": str(first.get("error") or "?"),
              "message": f"Delayed: {len(entries)} digest{'s' if len(entries) != 1 else ''} for {channel} could not "
                         f"be delivered when sent (first at {first.get('time') or '?'}: {first.get('error') or '?'}); "
                         f"runs: {named}"}
    merged: dict[str, Any] = {
        "version": 2, "kind": "digest", "time": utc_now_iso(now),
        "run": dict(digests[0].get("run") or {}) if len(digests) == 1 else
        {"command": "delayed", "correlation_id": None, "mode": None},
        "counts": dict(digests[0].get("counts") or {}) if len(digests) == 1 else {},
        **{section: [item for d in digests for item in d.get(section) or []] for section in sections},
        "notices": [notice, *(n for d in digests for n in d.get("notices") or [])],
        "omitted": sum(int(d.get("omitted") or 0) for d in digests),
        "delayed": [{"run": r, "time": e.document.get("run_time"), "error": e.document.get("error")}
                    for r, e in zip(runs, entries, strict=True)],
    }
    return merged
