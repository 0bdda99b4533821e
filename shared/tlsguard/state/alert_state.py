"""Alert state: which problems are open, since when, and which reminders went out.

``alerts/open/<kind>/<name>/<check>/<state>/lock.json``           created with forbid-overwrite when the problem
                                                                    is first alerted: the first writer alerts;
``alerts/open/<kind>/<name>/<check>/<state>/opened.<epoch>.<SEVERITY>.json``  when, and how severe (in the name);
``alerts/open/<kind>/<name>/<check>/<state>/reminder.<step>.json``  one per reminder step sent;
``alerts/closed/<kind>/<name>/<check>/<state>.<epoch>.json``        written when the problem resolved; the open
                                                                    objects are then deleted.
Everything a run needs is in the key names, so one listing of ``alerts/open/`` (or one target's part of it)
tells it every open problem without reading a single object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tlsguard.model import utc_now_iso

if TYPE_CHECKING:
    from tlsguard.model import TargetRef
    from tlsguard.state.store import StateBucket

_OPEN = re.compile(r"^(?P<target>[^/]+/[^/]+)/(?P<check>[^/]+)/(?P<state>[^/]+)/"
                   r"(?:opened\.(?P<opened>\d+)(?:\.(?P<severity>[A-Z]+))?|reminder\.(?P<step>[^/]+)|(?P<lock>lock))\.json$")
_SAFE = re.compile(r"[^A-Za-z0-9._:-]")


def safe_part(text: str) -> str:
    """A key segment: anything outside ``[A-Za-z0-9._:-]`` becomes ``_``."""
    return _SAFE.sub("_", text) or "_"


@dataclass
class OpenAlert:
    """One open problem of one target's check."""

    target_key: str
    check: str
    state: str
    opened_at: float = 0.0
    severity: str = ""  # as first alerted (routes select by it, "resolved" included)
    reminders: set[str] = field(default_factory=set)
    keys: list[str] = field(default_factory=list)


class AlertStateStore:
    """The ``alerts/`` records in the state bucket."""

    def __init__(self, bucket: StateBucket) -> None:
        self.bucket = bucket

    def _dir(self, target_key: str, check: str, state: str) -> str:
        return self.bucket.key("alerts", "open", target_key, safe_part(check), safe_part(state)) + "/"

    def open_alerts(self, target: TargetRef | None = None) -> dict[tuple[str, str], list[OpenAlert]]:
        """Open problems by ``(target key, check)`` (of one target, or of all)."""
        base = self.bucket.key("alerts", "open") + "/"
        prefix = base + (target.key + "/" if target is not None else "")
        found: dict[tuple[str, str, str], OpenAlert] = {}
        for key in self.bucket.keys(prefix):
            match = _OPEN.match(key[len(base):])
            if match is None:
                continue
            ident = (match["target"], match["check"], match["state"])
            alert = found.setdefault(ident, OpenAlert(*ident))
            alert.keys.append(key)
            if match["opened"] is not None:
                alert.opened_at = float(match["opened"])
                alert.severity = match["severity"] or ""
            elif match["step"] is not None:
                alert.reminders.add(match["step"])
        grouped: dict[tuple[str, str], list[OpenAlert]] = {}
        for alert in found.values():
            grouped.setdefault((alert.target_key, alert.check), []).append(alert)
        return grouped

    def open(self, target_key: str, check: str, state: str, now: float, details: dict[str, Any], *,
             severity: str = "") -> bool:
        """Record a newly alerted problem; True when this caller recorded it first (so it alerts)."""
        directory = self._dir(target_key, check, state)
        if not self.bucket.create_json(f"{directory}lock.json", {"check": check, "state": state}):
            return False  # a concurrent run opened it first
        suffix = f".{severity.upper()}" if severity.isalpha() else ""
        self.bucket.create_json(f"{directory}opened.{int(now)}{suffix}.json",
                                {"check": check, "state": state, "time": utc_now_iso(now), **details})
        return True

    def remind(self, alert: OpenAlert, step: str, now: float) -> bool:
        """Record a reminder step; True when this caller recorded it first (so it sends the reminder)."""
        key = f"{self._dir(alert.target_key, alert.check, alert.state)}reminder.{safe_part(step)}.json"
        created = self.bucket.create(key, f'{{"step": "{safe_part(step)}", "time": "{utc_now_iso(now)}"}}'.encode())
        if created:
            alert.reminders.add(step)
            alert.keys.append(key)
        return created

    def close(self, alert: OpenAlert, now: float, reason: str) -> None:
        """The problem is gone: keep a closed record, delete the open objects."""
        self.bucket.create_json(self.bucket.key("alerts", "closed", alert.target_key, safe_part(alert.check),
                                                f"{safe_part(alert.state)}.{int(now)}.json"),
                                {"check": alert.check, "state": alert.state, "opened_at": alert.opened_at,
                                 "closed": utc_now_iso(now), "reason": reason})
        for key in alert.keys:
            self.bucket.delete(key)

    def withdraw(self, target_key: str, check: str, state: str) -> None:
        """Forget an alert opened by a digest that was never delivered, so the next run alerts it again."""
        directory = self._dir(target_key, check, state)
        for key in list(self.bucket.keys(directory)):
            self.bucket.delete(key)
