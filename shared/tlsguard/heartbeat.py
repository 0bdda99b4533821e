"""The event-path heartbeat: proof that ActionTrail → EventBridge → on_change still delivers.

on_change rests on an assumption no document confirms: that OSS's PutBucketHttpsConfig (and the other writes the
checks react to) reach EventBridge under those names (../shared/reference/alibaba-api-facts.md §7, UNCONFIRMED).
If they do not, or the rule is disabled or deleted, on_change never fires and only the sweeps protect. So every
sweep timer run makes one harmless write of tlsguard's own that produces that very event: it reads the state
bucket's https config and puts it back unchanged (PutBucketHttpsConfig). on_change recognises the event (the state
bucket, written by one of ``guard.own_principals``), records its arrival and never treats it as drift. At its end,
just before its digest, the sweep judges the path from the records (:func:`judge`): a heartbeat write that no
arrival answers within ``heartbeat.max_lag_minutes`` (default 15) is alerted through the alert path as "event
path broken; only sweeps protect", deduplicated, and resolved by the first sweep that finds heartbeats arriving
again; the sweeps run regardless.

In the state bucket (every record created once, never overwritten; times in the key, so one listing is enough):

``heartbeat/sent/<ms>.json``              filed just before a heartbeat write: when it was made;
``heartbeat/received/<ms>-<sent ms>.json`` one arrival: when, and the write it answers (the newest made before it);
                                          the body holds the event id, its eventTime and the lag.

An arrival answers every write made before it. The clock of both records is the later of the function's own
clock and the cloud's timestamp at hand (the timer's ``triggerTime``, the event's ``eventTime``), so a function
whose clock runs behind the cloud's cannot hide a stale heartbeat (and localcloud's clock can move time).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tlsguard.errors import CloudError
from tlsguard.log import get_logger
from tlsguard.model import utc_now_iso

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from tlsguard.functions.events import Change
    from tlsguard.ports import BucketRef, OssPort
    from tlsguard.state import StateBucket

log = get_logger("tlsguard.heartbeat")

#: The write a heartbeat makes, and so the ActionTrail event it expects.
HEARTBEAT_EVENT = "PutBucketHttpsConfig"
#: The pseudo-check the alert path files event-path problems under (on the state bucket target).
EVENT_PATH_CHECK = "event-path"
#: A heartbeat is written at most this often: the five-minute timer writes one per run, and the hourly and
#: five-minute timers firing together write one.
MIN_INTERVAL_SECONDS = 60.0
#: Most heartbeat keys one run lists (the store keeps only a handful; this bounds a damaged one).
MAX_KEYS = 1000
#: Unanswered writes kept besides the oldest one (the age of the oldest is what the alert is about).
KEEP_UNANSWERED = 2

OK = "ok"
BROKEN = "broken"
WAITING = "waiting"
UNKNOWN = "unknown"
DISABLED = "disabled"


def cloud_time(text: Any) -> float | None:
    """``2023-12-26T07:49:00Z`` (optionally with fractions) as epoch seconds; None when it is not such a time."""
    if not isinstance(text, str) or not text.endswith("Z") or len(text) > 40:
        return None
    try:
        return dt.datetime.fromisoformat(text[:-1]).replace(tzinfo=dt.timezone.utc).timestamp()
    except ValueError:
        return None


def heartbeat_clock(local: float, *cloud_stamps: Any) -> float:
    """The later of the function's clock and the cloud timestamps given (unparseable ones are ignored)."""
    return max([local, *(t for t in (cloud_time(s) for s in cloud_stamps) if t is not None)])


@dataclass(frozen=True)
class Arrival:
    """One heartbeat event that reached on_change, and the write it answers (0 when none was on file)."""

    received_at: float
    answered_sent_at: float

    @property
    def lag_seconds(self) -> float | None:
        return self.received_at - self.answered_sent_at if self.answered_sent_at else None


@dataclass(frozen=True)
class EventPath:
    """What the heartbeat says about the event path at ``checked_at``."""

    status: str
    max_lag_seconds: float
    checked_at: float
    last_sent_at: float | None = None
    last_received_at: float | None = None
    lag_seconds: float | None = None
    oldest_unanswered_at: float | None = None
    written: bool = False
    error: str = ""

    @property
    def unanswered_for(self) -> float | None:
        return None if self.oldest_unanswered_at is None else self.checked_at - self.oldest_unanswered_at

    def message(self) -> str:
        seen = _when(self.last_received_at) if self.last_received_at else "never"
        lag = f", lag {self.lag_seconds:.1f} s" if self.lag_seconds is not None else ""
        if self.status == BROKEN:
            return (f"event path broken; only sweeps protect: no heartbeat event for "
                    f"{_duration(self.unanswered_for or 0.0)} after the heartbeat write of "
                    f"{_when(self.oldest_unanswered_at)} (limit {_duration(self.max_lag_seconds)}); last heartbeat "
                    f"seen {seen}{lag}. Check the EventBridge rule of tlsguard-on-change, that the functions' role "
                    f"is in guard.own_principals, and run tlsguard doctor")
        if self.status == OK:
            return f"event path ok: last heartbeat seen {seen}{lag}"
        if self.status == WAITING:
            return (f"waiting for the first heartbeat event (written {_when(self.oldest_unanswered_at)}, "
                    f"limit {_duration(self.max_lag_seconds)})")
        if self.status == DISABLED:
            return self.error or "heartbeat disabled"
        return self.error or "no heartbeat written yet"

    def to_dict(self) -> dict[str, Any]:
        def iso(value: float | None) -> str | None:
            return utc_now_iso(value) if value else None

        return {"status": self.status, "message": self.message(), "max_lag_seconds": self.max_lag_seconds,
                "checked_at": iso(self.checked_at), "last_sent_at": iso(self.last_sent_at),
                "last_received_at": iso(self.last_received_at),
                "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
                "oldest_unanswered_at": iso(self.oldest_unanswered_at),
                "unanswered_seconds": None if self.unanswered_for is None else round(self.unanswered_for, 3),
                "written": self.written, "error": self.error or None}


def _when(epoch: float | None) -> str:
    return utc_now_iso(epoch) if epoch else "never"


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def assess(sent: Sequence[float], arrivals: Sequence[Arrival], now: float, max_lag_seconds: float) -> EventPath:
    """Judge the event path from the heartbeat writes and arrivals on file (pure).

    Broken: a write no arrival answers is older than ``max_lag_seconds``. Ok: an arrival is on file and nothing
    is overdue. Waiting: writes, none answered yet, none overdue. Unknown: no heartbeat at all.
    """
    last = max(arrivals, key=lambda a: a.received_at, default=None)
    answered_until = last.received_at if last is not None else float("-inf")
    unanswered = sorted(s for s in sent if s > answered_until)
    oldest = unanswered[0] if unanswered else None
    common: dict[str, Any] = {
        "max_lag_seconds": max_lag_seconds, "checked_at": now, "last_sent_at": max(sent, default=None),
        "last_received_at": last.received_at if last else None, "lag_seconds": last.lag_seconds if last else None,
        "oldest_unanswered_at": oldest}
    if oldest is not None and now - oldest > max_lag_seconds:
        return EventPath(BROKEN, **common)
    if last is not None:
        return EventPath(OK, **common)
    if oldest is not None:
        return EventPath(WAITING, **common)
    return EventPath(UNKNOWN, **common)


def _ms(epoch: float) -> str:
    return f"{round(epoch * 1000):015d}"


class HeartbeatStore:
    """The ``heartbeat/`` records in the state bucket."""

    def __init__(self, bucket: StateBucket) -> None:
        self.bucket = bucket

    def _prefix(self, part: str) -> str:
        return self.bucket.key("heartbeat", part) + "/"

    def _keys(self, part: str) -> list[str]:
        return list(itertools.islice(self.bucket.keys(self._prefix(part)), MAX_KEYS))

    def sent(self) -> dict[float, str]:
        """Heartbeat writes on file: time → key."""
        found: dict[float, str] = {}
        for key in self._keys("sent"):
            stem = key.rsplit("/", 1)[-1].split(".", 1)[0]
            if stem.isdigit():
                found[int(stem) / 1000.0] = key
        return found

    def arrivals(self) -> dict[Arrival, str]:
        """Heartbeat arrivals on file: arrival → key."""
        found: dict[Arrival, str] = {}
        for key in self._keys("received"):
            received, _, answered = key.rsplit("/", 1)[-1].split(".", 1)[0].partition("-")
            if received.isdigit() and answered.isdigit():
                found[Arrival(int(received) / 1000.0, int(answered) / 1000.0)] = key
        return found

    def read(self, now: float, max_lag_seconds: float) -> EventPath:
        return assess(list(self.sent()), list(self.arrivals()), now, max_lag_seconds)

    def file_write(self, now: float, bucket: str) -> str:
        """File a heartbeat write about to be made (before it, like a journal intent); returns its key."""
        key = f"{self._prefix('sent')}{_ms(now)}.json"
        self.bucket.create_json(key, {"sent_at": utc_now_iso(now), "event": HEARTBEAT_EVENT, "bucket": bucket})
        return key

    def record_arrival(self, received_at: float, event_id: str, event_time: str) -> Arrival:
        """Record that a heartbeat event reached on_change; it answers the newest write made before it."""
        earlier = [t for t in self.sent() if t <= received_at]
        arrival = Arrival(received_at, max(earlier, default=0.0))
        key = f"{self._prefix('received')}{_ms(received_at)}-{_ms(arrival.answered_sent_at)}.json"
        self.bucket.create_json(key, {"received_at": utc_now_iso(received_at), "event_id": event_id[:200],
                                      "event_time": event_time[:40], "lag_seconds": arrival.lag_seconds})
        return arrival

    def prune(self) -> None:
        """Keep the store small: the newest arrival, and of the writes it does not answer the oldest and newest."""
        arrivals = self.arrivals()
        newest = max(arrivals, key=lambda a: a.received_at, default=None)
        for arrival, key in arrivals.items():
            if arrival is not newest:
                self.bucket.delete(key)
        sent = self.sent()
        unanswered = sorted(t for t in sent if newest is None or t > newest.received_at)
        keep = set(unanswered[:1] + unanswered[-KEEP_UNANSWERED:])
        for when, key in sent.items():
            if when not in keep:
                self.bucket.delete(key)


def state_bucket_ref(oss: OssPort, name: str) -> BucketRef | None:
    """The state bucket with its region (ListBuckets with the name as prefix), None when it is not listed."""
    return next((ref for ref in oss.list_buckets(prefix=name) if ref.name == name), None)


def write_heartbeat(oss: OssPort, store: HeartbeatStore, bucket_name: str, now: float) -> None:
    """File the write, then re-put the state bucket's https config exactly as read. A write that failed is
    withdrawn (no event is owed for it) and the error raised."""
    bucket = state_bucket_ref(oss, bucket_name)
    if bucket is None:
        raise CloudError(f"the state bucket {bucket_name} is not listed by ListBuckets", service="oss",
                         operation="ListBuckets", code="NoSuchBucket", resource=bucket_name)
    config = oss.get_https_config(bucket)
    key = store.file_write(now, bucket_name)
    try:
        oss.put_https_config(bucket, config)
    except CloudError:
        store.bucket.delete(key)
        raise


def beat(oss: OssPort, store: HeartbeatStore, bucket_name: str, now: float) -> tuple[bool, str]:
    """Write a heartbeat if none was written in the last :data:`MIN_INTERVAL_SECONDS`: (written, error).

    The sweep calls it first thing and judges the path (:func:`judge`) at its end, just before its digest, so an
    arrival that lands meanwhile is seen. Errors are data: a failed write is returned, never raised.
    """
    try:
        # A write already answered is pruned from ``sent``; the arrival still names it (its answered time).
        recent = [*store.sent(), *(arrival.answered_sent_at for arrival in store.arrivals())]
        if any(now - when < MIN_INTERVAL_SECONDS for when in recent):
            return False, ""
        write_heartbeat(oss, store, bucket_name, now)
    except CloudError as exc:
        log.warning("heartbeat not written", extra={"error": exc.describe()})
        return False, f"heartbeat write failed: {exc.describe()}"
    log.info("heartbeat written", extra={"bucket": bucket_name})
    return True, ""


def judge(store: HeartbeatStore, now: float, max_lag_seconds: float, *, written: bool = False,
          error: str = "") -> EventPath:
    """The path as the records on file show it (then pruned); a failed read leaves it unknown."""
    try:
        path = store.read(now, max_lag_seconds)
    except CloudError as exc:
        log.warning("heartbeat state unreadable", extra={"error": exc.describe()})
        return EventPath(UNKNOWN, max_lag_seconds, now, written=written,
                         error=error or f"heartbeat state unreadable: {exc.describe()}")
    try:
        store.prune()
    except CloudError as exc:  # the next run prunes
        log.warning("heartbeat records not pruned", extra={"error": exc.describe()})
    return replace(path, written=written, error=error)


def is_heartbeat(change: Change, state_bucket: str, own_principals: Iterable[str]) -> bool:
    """Whether a change event is tlsguard's own heartbeat: PutBucketHttpsConfig on the state bucket by its role."""
    from tlsguard.functions.events import trigger_from_trail
    from tlsguard.model import TargetKind

    if not state_bucket or change.event_name != HEARTBEAT_EVENT or len(change.targets) != 1:
        return False
    target = change.targets[0]
    if target.kind is not TargetKind.OSS_BUCKET or target.name != state_bucket:
        return False
    return trigger_from_trail(change.record, own_principals).own
