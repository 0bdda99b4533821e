"""The journal: every write is recorded as an intent before it happens and an outcome after.

Layout under the state prefix (every object created with forbid-overwrite, never overwritten):
``open/<kind>/<name>/<stamp>Z-<hex>.json``             the intent, written before the first write: the target,
                                                        trigger and actions (call, exact parameters, before and
                                                        after); it exists while the entry has no outcome;
``journal/<kind>/<name>/<stamp>Z-<hex>.intent.json``   the same intent, filed with
``journal/<kind>/<name>/<stamp>Z-<hex>.outcome.json``  what each action did, verification, live state; the open
                                                        intent is deleted once both exist.

A process killed anywhere leaves either nothing written (the write waits for the intent) or an open intent that
the next run touching the target (or one listing ``open/``) reconciles: it re-reads the target, records whether
the actions landed, and files the entry. A journal id is the entry's path
(``oss-bucket/acme-prod-assets/20261207T182828123456Z-1a2b3c4d``), so ``tlsguard undo ID`` finds it directly.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from tlsguard.errors import ConfigError, TlsguardError
from tlsguard.model import Action, TargetKind, TargetRef, utc_now_iso

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tlsguard.state.store import StateBucket

_STAMP = "%Y%m%dT%H%M%S%f"
_ID = re.compile(r"^(?P<kind>oss-bucket|oss-cname|cdn-domain)/(?P<name>[A-Za-z0-9*._-]{1,255})/"
                 r"(?P<stamp>\d{8}T\d{12})Z-(?P<hex>[0-9a-f]{8})$")
JOURNAL_VERSION = 2


def stamp_of(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.timezone.utc).strftime(_STAMP)


def new_journal_id(target: TargetRef, now: float) -> str:
    """A fresh id: the target's key, the time (sortable) and 8 random hex digits."""
    return f"{target.key}/{stamp_of(now)}Z-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class JournalId:
    kind: TargetKind
    name: str
    stamp: str

    @classmethod
    def parse(cls, text: str) -> JournalId:
        match = _ID.match(text.strip())
        if match is None:
            raise ConfigError(f"not a journal id: {text!r} (expected <kind>/<name>/<YYYYmmddTHHMMSSffffff>Z-<8 hex>, "
                              "as `tlsguard journal list` prints them)")
        return cls(TargetKind(match["kind"]), match["name"], f"{match['stamp']}Z-{match['hex']}")

    @property
    def epoch(self) -> float:
        when = dt.datetime.strptime(self.stamp.split("Z", 1)[0], _STAMP).replace(tzinfo=dt.timezone.utc)
        return when.timestamp()

    @property
    def target_key(self) -> str:
        return f"{self.kind.value}/{self.name}"

    def __str__(self) -> str:
        return f"{self.target_key}/{self.stamp}"


class DamagedEntry(TlsguardError):
    """A journal object that is not the JSON tlsguard wrote (truncated, overwritten by hand)."""


def _intact(journal_id: str, intent: dict[str, Any]) -> dict[str, Any]:
    if "damaged" in intent or not isinstance(intent.get("target"), dict):
        raise DamagedEntry(f"journal entry {journal_id} is damaged: {intent.get('damaged') or 'no target'}")
    return intent


@dataclass(frozen=True)
class JournalEntry:
    """An intent and, once written, its outcome."""

    journal_id: str
    intent: dict[str, Any]
    outcome: dict[str, Any] | None

    @property
    def target(self) -> TargetRef:
        return TargetRef.from_dict(self.intent["target"])

    @property
    def actions(self) -> list[Action]:
        target = self.target
        return [Action.from_dict(target, a) for a in self.intent.get("actions") or []]

    @property
    def complete(self) -> bool:
        return self.outcome is not None

    @property
    def status(self) -> str:
        return str(self.outcome.get("status")) if self.outcome else "incomplete"

    @property
    def epoch(self) -> float:
        return JournalId.parse(self.journal_id).epoch

    def to_dict(self) -> dict[str, Any]:
        return {"journal_id": self.journal_id, "status": self.status, "intent": self.intent, "outcome": self.outcome}


class Journal:
    """Open intents, filed intents and outcomes in the state bucket."""

    def __init__(self, bucket: StateBucket) -> None:
        self.bucket = bucket

    def _entry_key(self, journal_id: str, part: str) -> str:
        return self.bucket.key("journal", f"{journal_id}.{part}.json")

    def _open_key(self, journal_id: str) -> str:
        return self.bucket.key("open", f"{journal_id}.json")

    # -- writing ------------------------------------------------------------------------------------------
    @staticmethod
    def intent_document(journal_id: str, target: TargetRef, actions: list[Action], *, now: float,
                        trigger: dict[str, Any], reason: str, mode: str, kind: str = "remediation",
                        undo_of: str | None = None) -> dict[str, Any]:
        JournalId.parse(journal_id)
        return {"version": JOURNAL_VERSION, "journal_id": journal_id, "kind": kind, "target": target.to_dict(),
                "time": utc_now_iso(now), "trigger": trigger, "reason": reason, "mode": mode,
                "actions": [a.to_dict() for a in actions], "undo_of": undo_of}

    def write_intent(self, intent: dict[str, Any]) -> None:
        """Record what is about to be written. Must succeed before the first write (else nothing is written)."""
        if not self.bucket.create_json(self._open_key(intent["journal_id"]), intent):
            raise TlsguardError(f"journal entry {intent['journal_id']} already exists")

    def write_outcome(self, intent: dict[str, Any], *, now: float, status: str, actions: list[dict[str, Any]],
                      verified: bool, reason: str, live_verification: str = "not_applicable",
                      reconciled: bool = False) -> None:
        """File the intent with what the writes did, then delete the open intent."""
        journal_id = str(intent["journal_id"])
        outcome = {"version": JOURNAL_VERSION, "journal_id": journal_id, "time": utc_now_iso(now),
                   "status": status, "actions": actions, "verified": verified, "reason": reason,
                   "live_verification": live_verification, "reconciled": reconciled}
        from tlsguard.parallel import overlapped  # lazily: multiprocessing is not for the functions' cold start

        filed = {k: v for k, v in intent.items() if k != "nonce"}
        overlapped([partial(self.bucket.create_json, self._entry_key(journal_id, "intent"), filed),
                    partial(self.bucket.create_json, self._entry_key(journal_id, "outcome"), outcome)])
        self.bucket.delete(self._open_key(journal_id))

    def close_open(self, journal_id: str) -> None:
        """Delete an open intent whose entry is already filed."""
        self.bucket.delete(self._open_key(journal_id))

    # -- reading ------------------------------------------------------------------------------------------
    def read(self, journal_id: str) -> JournalEntry | None:
        """A filed entry, or an open intent (incomplete: no outcome yet)."""
        parsed = str(JournalId.parse(journal_id))
        intent = self.bucket.read_json(self._entry_key(parsed, "intent"))
        if intent is not None:
            return JournalEntry(parsed, _intact(parsed, intent), self.bucket.read_json(self._entry_key(parsed,
                                                                                                    "outcome")))
        opened = self.bucket.read_json(self._open_key(parsed))
        return JournalEntry(parsed, _intact(parsed, opened), None) if opened is not None else None

    def _ids_under(self, area: str, suffix: str, target: TargetRef | None, since: float | None) -> list[str]:
        base = self.bucket.key(area) + "/"
        prefix = base + (target.key + "/" if target is not None else "")
        start_after = f"{prefix}{stamp_of(since)}" if target is not None and since is not None else ""
        found = []
        for key in self.bucket.keys(prefix, start_after):  # keys sort by time within a target
            if not key.endswith(suffix):
                continue
            journal_id = key[len(base):-len(suffix)]
            try:
                parsed = JournalId.parse(journal_id)
            except ConfigError:
                continue
            if since is None or parsed.epoch >= since:
                found.append(journal_id)
        return found

    def open_ids(self, target: TargetRef | None = None) -> list[str]:
        """Ids of intents without a filed outcome (all targets, or one)."""
        return self._ids_under("open", ".json", target, None)

    def ids(self, target: TargetRef | None = None, since: float | None = None, *,
            opened: Callable[[], list[str]] | None = None) -> list[str]:
        """Ids of every entry, filed or open, of one target or all, oldest first, optionally since an epoch.

        The two listings are independent: they are made at once (one round trip, not two). ``opened``: the target's
        open intents from an :meth:`open_ids` listing made anyway (called after the filed listing: not listed twice)."""
        from tlsguard.parallel import overlapped

        if opened is not None:
            filed = self._ids_under("journal", ".intent.json", target, since)
            still_open = [i for i in opened() if since is None or JournalId.parse(i).epoch >= since]
        else:
            filed, still_open = overlapped([partial(self._ids_under, "journal", ".intent.json", target, since),
                                            partial(self._ids_under, "open", ".json", target, since)])
        return sorted(set(filed) | set(still_open), key=lambda i: JournalId.parse(i).stamp)

    def entries(self, journal_ids: list[str]) -> list[JournalEntry]:
        """Read several entries at once (in parallel: each is two GETs); a damaged one is left out."""
        if not journal_ids:
            return []

        def read(journal_id: str) -> JournalEntry | None:
            try:
                return self.read(journal_id)
            except DamagedEntry:
                return None

        from tlsguard.parallel import overlapped

        found = overlapped([partial(read, journal_id) for journal_id in journal_ids])
        return [entry for entry in found if entry is not None]

    def iterate(self, *, target_name: str = "", since: float | None = None) -> Iterator[JournalEntry]:
        """Every entry (or those whose target name is ``target_name``), oldest first."""
        ids = [i for i in self.ids(since=since) if not target_name or JournalId.parse(i).name == target_name]
        for start in range(0, len(ids), 32):
            yield from self.entries(ids[start:start + 32])
