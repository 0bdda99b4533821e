"""The one alert path: every run's results become alert events, deduplicated against alert state, and one digest.

An event is ``(target, check, state)``: the first occurrence of a problem alerts; while it stays open, reminders
follow the ladder (certificate expiry: the policy's day steps; everything else: ``alerts.reminder_hours`` after it
opened); when a run that judged the check no longer finds it, a "resolved" line closes it. A run (a sweep, a
batch, an invocation's events, a CLI apply) sends one digest: counts by outcome, what needs a person, what was
remediated (with the journal id and the undo command), what resolved. Nothing else in tlsguard composes a message;
a failed delivery is reported in the run's result and never blocks a remediation: what a channel did not take waits
in the outbox (:mod:`tlsguard.alerts.outbox`), which every later flush re-delivers first.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tlsguard.log import get_logger, mask_secrets, scrub
from tlsguard.model import LiveVerification, Mode, Outcome, Severity, utc_now_iso

if TYPE_CHECKING:
    from collections.abc import Callable

    from tlsguard.alerts.channels import ChannelResult, Dispatcher
    from tlsguard.alerts.outbox import Entry, Outbox, Taken
    from tlsguard.model import TargetRef, TargetResult
    from tlsguard.policy.model import AlertSettings
    from tlsguard.ports import NotifierPort
    from tlsguard.state import AlertStateStore
    from tlsguard.state.alert_state import OpenAlert
    from tlsguard.verify_live import Verification

log = get_logger("tlsguard.alerts")

#: The pseudo-check a target-level failure (an unreadable target) is alerted under.
TARGET_CHECK = "target"
#: The pseudo-check a target's live verification problems are alerted under (whichever checks the write was for:
#: a later verification of the target, effective, resolves them).
LIVE_CHECK = "live"
#: Items a channel's digest lists per section, the worst first; the rest are counted in ``omitted`` ("N more items
#: are in the run's report", which lists every one). Applied per channel after routing
#: (:func:`tlsguard.alerts.channels.routed`), so a burst on one kind of target never crowds out another channel's items.
MAX_ITEMS_PER_SECTION = 50
#: Items a run's digest carries per section before routing (a bound on memory and on a fanned-out run's digest parts
#: in the state bucket); beyond it items are only counted in ``omitted``. The counts always cover everything.
MAX_DIGEST_ITEMS = 1000
#: Beyond this many targets in a run, the whole ``alerts/open/`` listing is read once instead of per target.
PER_TARGET_LISTING_LIMIT = 8


@dataclass(frozen=True)
class Problem:
    """One problem a run found on one target: what a person should see."""

    target: TargetRef
    check: str
    state: str
    severity: Severity
    message: str
    journal_id: str = ""
    actor: str = ""
    ladder: str = ""  # certificate expiry: the alert step reached ("7d"), which drives its reminders
    reason: str = ""  # what the run did about the target (the result's reason)

    def item(self, *, reminder: bool = False) -> dict[str, Any]:
        return {"target": self.target.to_dict(), "id": str(self.target), "check": self.check, "state": self.state,
                "severity": self.severity.value, "message": self.message, "reason": self.reason or None,
                "journal_id": self.journal_id or None, "actor": self.actor or None, "reminder": reminder}


@dataclass
class Delivery:
    """What the alert path did at the end of a run."""

    sent: bool = False
    error: str = ""
    message: dict[str, Any] | None = None
    channels: list[ChannelResult] = field(default_factory=list)
    #: What the outbox did, when it did anything: channels this digest was saved for, delayed digests re-delivered
    #: first, entries dropped as too old.
    outbox: dict[str, Any] | None = None

    @property
    def unheard(self) -> bool:
        """The digest was meant for some channel and no channel took it: nobody heard this run."""
        return not self.sent and any(not c.sent for c in self.channels)

    @property
    def saved(self) -> list[str]:
        """The channels whose part of this digest waits in the outbox."""
        return list((self.outbox or {}).get("saved") or [])

    def to_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "error": self.error or None,
                "new": len((self.message or {}).get("needs_attention") or []),
                "resolved": len((self.message or {}).get("resolved") or []),
                "remediated": len((self.message or {}).get("remediated") or []),
                "channels": [c.to_dict() for c in self.channels],
                **({"outbox": self.outbox} if self.outbox is not None else {})}


def problems_of(result: TargetResult) -> list[Problem]:
    """The problems a result leaves for a person (none for compliant, remediated, plan-only or own-change runs)."""
    target, trigger = result.target, result.trigger
    if result.error_code in ("DuplicateEvent", "TargetGone") or (trigger.own and result.outcome is Outcome.REFUSED):
        return []
    actor = trigger.actor
    if result.outcome is Outcome.FAILED and not result.findings:
        return [Problem(target, TARGET_CHECK, "failed", Severity.HIGH, result.reason, result.journal_id, actor)]
    found: list[Problem] = []
    for finding in result.active_findings:
        if finding.severity is Severity.INFO:
            if finding.alert_state.startswith("expiring"):  # a heads-up on the expiry ladder
                found.append(Problem(target, finding.check, finding.alert_state, Severity.LOW, finding.describe(),
                                     ladder=finding.details.get("ladder", "")))
            continue
        if result.outcome is Outcome.REMEDIATED or result.outcome is Outcome.COMPLIANT:
            continue
        if result.outcome is Outcome.DRIFTED and result.mode is Mode.DRY_RUN:
            continue
        state = finding.alert_state
        if result.outcome is Outcome.CONTESTED:
            state = "contested"
        elif result.outcome is Outcome.FAILED:
            state = "failed"
        found.append(Problem(target, finding.check, state, finding.severity, finding.describe(), result.journal_id,
                             actor, finding.details.get("ladder", ""), result.reason))
    return found


def verification_problem(verification: Verification, attempts_before_alert: int) -> Problem | None:
    """A live verification that disproved a write, or that could not be made after several tries."""
    checks = LIVE_CHECK
    if verification.verdict is LiveVerification.NOT_EFFECTIVE:
        return Problem(verification.target, checks, "not_effective", Severity.HIGH,
                       f"the change of {verification.journal_id} is configured but not effective: "
                       f"{verification.detail}", verification.journal_id)
    if verification.verdict is LiveVerification.PENDING and verification.attempts >= attempts_before_alert:
        return Problem(verification.target, checks, "cannot_verify", Severity.MEDIUM,
                       f"cannot verify the change of {verification.journal_id} after {verification.attempts} "
                       f"tries: {verification.detail}", verification.journal_id)
    return None


@dataclass
class AlertPath:
    """Collects a run's results (thread-safe) and, at the end, sends one deduplicated digest."""

    store: AlertStateStore | None
    notifier: Dispatcher | NotifierPort | None
    settings: AlertSettings
    clock: Callable[[], float]
    attempts_before_alert: int = 3
    #: Where a channel's undelivered part waits (the state bucket's ``alerts/outbox/``); None: the old behaviour,
    #: the problems a failed channel should have carried are withdrawn from alert state instead.
    outbox: Outbox | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _problems: dict[tuple[str, str, str], Problem] = field(default_factory=dict)
    #: target key -> the checks judged in this run (the result's own tuple: a 10,000-target sweep keeps no copies)
    _judged: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _targets: dict[str, TargetRef] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)
    _remediated: list[dict[str, Any]] = field(default_factory=list)
    _notices: list[dict[str, Any]] = field(default_factory=list)
    _verified: list[dict[str, Any]] = field(default_factory=list)
    #: What re-delivering the outbox did this run (it is drained once per run, before the run's own digest).
    _drained: dict[str, Any] | None = None
    _down: dict[str, str] = field(default_factory=dict)  # channel -> why its outbox could not be delivered now
    _waiting: list[str] = field(default_factory=list)  # outbox keys still waiting after this run (as far as it saw)

    def observe(self, result: TargetResult) -> None:
        problems = problems_of(result)
        with self._lock:
            self._counts[result.outcome.value] = self._counts.get(result.outcome.value, 0) + 1
            if result.error_code in ("DuplicateEvent",) or (result.trigger.own and result.outcome is Outcome.REFUSED):
                return
            key = result.target.key
            self._targets[key] = result.target
            if result.outcome is not Outcome.FAILED or result.findings:
                self._judged[key] = (*result.checks, TARGET_CHECK, *self._judged.get(key, ()))
            for problem in problems:
                self._problems[(key, problem.check, problem.state)] = problem
            if result.outcome is Outcome.REMEDIATED and result.applied:
                worst = min((f.severity for f in result.active_findings), key=lambda v: v.rank, default=Severity.INFO)
                self._remediated.append({
                    "target": result.target.to_dict(), "id": str(result.target), "severity": worst.value,
                    "checks": sorted({c for a in result.actions for c in a.checks}),
                    "actions": [a.summary or a.call for a in result.actions], "journal_id": result.journal_id,
                    "undo": f"tlsguard undo {result.journal_id}", "actor": result.trigger.actor or None,
                    "event_id": result.trigger.event_id or None, "reason": result.reason,
                    "live_verification": result.live_verification.value})

    def observe_verification(self, verification: Verification) -> None:
        problem = verification_problem(verification, self.attempts_before_alert)
        with self._lock:
            key = verification.target.key
            self._targets[key] = verification.target
            self._judged[key] = (*self._judged.get(key, ()), LIVE_CHECK)
            if verification.verdict is not LiveVerification.PENDING:
                severity = Severity.HIGH if verification.verdict is LiveVerification.NOT_EFFECTIVE else Severity.INFO
                self._verified.append({**verification.to_dict(), "severity": severity.value})
            if problem is not None:
                self._problems[(key, problem.check, problem.state)] = problem

    def observe_health(self, target: TargetRef, check: str, problems: list[Problem]) -> None:
        """A platform condition judged this run (the event-path heartbeat, on the state bucket): its problems alert
        and are deduplicated like a target's, and judging it without a problem resolves the ones left open."""
        with self._lock:
            key = target.key
            self._targets[key] = target
            self._judged[key] = (*self._judged.get(key, ()), check)
            for problem in problems:
                self._problems[(key, problem.check, problem.state)] = problem

    def notice(self, kind: str, message: str, **details: Any) -> None:
        """A run-level problem that belongs to no target (a listing that failed, a function out of retries)."""
        with self._lock:
            self._notices.append({"kind": kind, "message": message, **details})

    # -- the end of a run -------------------------------------------------------------------------------------
    def flush(self, *, command: str, correlation_id: str = "", mode: str = "", hold: bool = False) -> Delivery:
        """Decide against alert state what is new, due for a reminder or resolved; send one digest if any.

        ``hold``: do not send; return the digest (even an empty one) for a fanned-out run to combine
        (:mod:`tlsguard.alerts.digests`). Otherwise the outbox is re-delivered first (its notices join this digest).
        """
        if not hold:
            for notice in self._drain():
                self.notice(**notice)
        now = self.clock()
        new, reminders, resolved = self._decide(now)
        counts = dict(sorted(self._counts.items()))
        counts["targets"] = sum(self._counts.values())
        sections: dict[str, list[dict[str, Any]]] = {
            "needs_attention": [p.item() for p in _ordered(new)] + [p.item(reminder=True) for p in _ordered(reminders)],
            "resolved": resolved, "remediated": self._remediated, "verifications": self._verified}
        message: dict[str, Any] = {
            "version": 2, "kind": "digest", "time": utc_now_iso(now),
            "run": {"command": command, "correlation_id": correlation_id or None, "mode": mode or None},
            "counts": counts,
            **{name: items[:MAX_DIGEST_ITEMS] for name, items in sections.items()},
            "notices": self._notices[:MAX_ITEMS_PER_SECTION],
            "omitted": sum(max(0, len(items) - MAX_DIGEST_ITEMS) for items in sections.values()),
        }
        message = scrub(message)  # a problem's message or reason can quote a cloud error
        if hold:
            return Delivery(message=message)
        if not (new or reminders or resolved or self._remediated or self._notices or self._verified):
            return Delivery(outbox=self._outbox_summary([]))
        return self.send(message)

    def drain(self, *, command: str, correlation_id: str = "") -> Delivery:
        """Only re-deliver the outbox (a run with no digest of its own: a fanned-out sweep whose batches said
        nothing, the retry of an invocation whose work is done); the notices of dropped entries are sent."""
        notices = self._drain()
        if not notices:
            return Delivery(outbox=self._outbox_summary([]))
        now = self.clock()
        return self.send({"version": 2, "kind": "digest", "time": utc_now_iso(now),
                          "run": {"command": command, "correlation_id": correlation_id or None, "mode": None},
                          "counts": {}, "needs_attention": [], "resolved": [], "remediated": [], "verifications": [],
                          "notices": notices, "omitted": 0})

    def send(self, message: dict[str, Any]) -> Delivery:
        """Deliver one digest to every channel its items are routed to (after re-delivering the outbox); failures
        are returned (and logged), never raised. A failed channel's part waits in the outbox; without one, the
        problems it should have carried are withdrawn from alert state, so the next run alerts them again."""
        message = scrub(message)
        if self.notifier is None:
            return Delivery(message=message)
        from tlsguard.alerts.channels import ROUTED_SECTIONS, ChannelResult, has_items, routed

        notices = self._drain()
        if notices:
            message = {**message, "notices": [*notices, *(message.get("notices") or [])]}
        dispatcher = self._dispatcher()
        down = {c.name: c for c in dispatcher.channels if c.name in self._down}
        results = dispatcher.dispatch(message, only=[c.name for c in dispatcher.channels if c.name not in down])
        for name, channel in down.items():  # its outbox just failed: straight to the outbox, no second wait
            part = routed(message, dispatcher.routes, name)
            if has_items(part):
                results.append(ChannelResult(name, channel.type, error=f"not attempted: {self._down[name]}",
                                             items=sum(len(part.get(s) or []) for s in ROUTED_SECTIONS)))
        failed = [r for r in results if not r.sent]
        delivered = [r.name for r in results if r.sent]
        saved: list[str] = []
        for result in failed:
            log.warning("digest not delivered", extra={"channel": result.name, "type": result.type,
                                                       "error": result.error})
            if self._save(result, message, dispatcher, unheard=not delivered):
                saved.append(result.name)
            else:
                self._withdraw_items(routed(message, dispatcher.routes, result.name, limit=None))
        error = mask_secrets("; ".join(f"{r.name}: {r.error}" for r in failed))
        if failed and delivered:  # the channels that work hear that one did not
            later = "; it waits in the outbox and the next run delivers it"
            notice = {**message, **{section: [] for section in ROUTED_SECTIONS},
                      "notices": [{"kind": "delivery_failed", "channel": r.name, "type": r.type,
                                   "error": mask_secrets(r.error), "saved": r.name in saved,
                                   "message": mask_secrets(f"the digest could not be delivered to {r.name} "
                                                           f"({r.type}): {r.error}"
                                                           f"{later if r.name in saved else ''}")}
                                  for r in failed]}
            results.extend(dispatcher.dispatch(notice, only=delivered))
        return Delivery(sent=bool(delivered), error=error, message=message, channels=results,
                        outbox=self._outbox_summary(saved))

    def _dispatcher(self) -> Dispatcher:
        from tlsguard.alerts.channels import Dispatcher

        assert self.notifier is not None
        return self.notifier if isinstance(self.notifier, Dispatcher) else Dispatcher.single(self.notifier)

    # -- the outbox ------------------------------------------------------------------------------------------
    def waiting(self, origin: str) -> list[str]:
        """The outbox entries of the run ``origin`` whose digest no channel took, still waiting after this run's
        flush (what it listed before re-delivering, less what it delivered or dropped, plus what it saved)."""
        from tlsguard.alerts.outbox import origin_tag

        tag = f"-{origin_tag(origin, unheard=True)}-"
        return [key for key in self._waiting if tag in key.rsplit("/", 1)[-1]]

    def _save(self, result: ChannelResult, message: dict[str, Any], dispatcher: Dispatcher, *,
              unheard: bool = False) -> bool:
        """File the failed channel's part of ``message`` in the outbox; False when there is none or it failed."""
        if self.outbox is None:
            return False
        from tlsguard.alerts.channels import routed
        from tlsguard.errors import TlsguardError

        run = message.get("run") or {}
        origin = str(run.get("correlation_id") or run.get("command") or "run")
        try:
            key = self.outbox.save(result.name, result.type, routed(message, dispatcher.routes, result.name),
                                   error=result.error, origin=origin, now=self.clock(), unheard=unheard,
                                   withdraw=_withdraw_keys(routed(message, dispatcher.routes, result.name,
                                                                  limit=None)))
        except TlsguardError as exc:
            log.warning("digest not saved in the outbox", extra={"channel": result.name, "error": str(exc)})
            return False
        log.info("digest saved in the outbox", extra={"channel": result.name, "key": key})
        if key is not None:
            self._waiting.append(key)
        return key is not None

    def _drain(self) -> list[dict[str, Any]]:
        """Once per run: re-deliver each channel's outbox (oldest first, merged into one delayed digest), drop
        entries past the age bound and withdraw their alert state; returns the notices of what was dropped."""
        if self._drained is not None or self.outbox is None or self.notifier is None:
            return []
        from tlsguard.alerts.outbox import MAX_DROPS_PER_FLUSH, delayed_digest
        from tlsguard.errors import TlsguardError

        self._drained = {"redelivered": [], "dropped": 0}
        dispatcher = self._dispatcher()
        now = self.clock()
        notices: list[dict[str, Any]] = []
        try:
            listing = self.outbox.listing()
        except TlsguardError as exc:
            log.warning("alert outbox not read", extra={"error": str(exc)})
            return []
        self._waiting = [key for keys in listing.values() for key in keys]
        configured = {c.name for c in dispatcher.channels}
        drops_left = MAX_DROPS_PER_FLUSH
        for channel, keys in listing.items():
            try:
                taken = self.outbox.take(channel, keys, now, drops_left=drops_left)
                if taken.expired:
                    drops_left -= len(taken.expired)
                    notices.append(self._drop(taken))
                if taken.entries and channel not in configured:
                    self.outbox.release(taken.entries)  # a channel gone from the policy: its entries age out
                    continue
                if not taken.entries:
                    continue
                result = dispatcher.deliver_to(channel, delayed_digest(channel, taken.entries, now))
                assert result is not None  # configured
                self._drained["redelivered"].append({"name": channel, "entries": len(taken.entries),
                                                     "sent": result.sent, "error": result.error or None})
                if result.sent:
                    self.outbox.done(taken.entries)
                    self._forget(taken.entries)
                    log.info("outbox delivered", extra={"channel": channel, "entries": len(taken.entries)})
                else:
                    self.outbox.release(taken.entries)
                    self._down[channel] = f"its outbox could not be delivered either: {result.error}"
                    log.warning("outbox not delivered", extra={"channel": channel, "entries": len(taken.entries),
                                                               "error": result.error})
            except TlsguardError as exc:
                log.warning("alert outbox not drained", extra={"channel": channel, "error": str(exc)})
        return notices

    def _drop(self, taken: Taken) -> dict[str, Any]:
        """Entries too old to deliver: delete them, then withdraw their alert state (the next judgment of a problem
        that is still open alerts it again), and say so in this run's digest."""
        assert self.outbox is not None and self._drained is not None
        hours = self.outbox.max_age_seconds / 3600
        self.outbox.done(taken.expired)
        self._forget(taken.expired)
        items = 0
        for entry in taken.expired:
            withdraw = entry.withdraw
            items += len(withdraw)
            self._withdraw(withdraw)
        runs = list(dict.fromkeys(entry.origin for entry in taken.expired if entry.origin))
        self._drained["dropped"] += len(taken.expired)
        message = (f"{len(taken.expired)} undelivered alert digest{'s' if len(taken.expired) != 1 else ''} for "
                   f"{taken.channel} dropped after {hours:g} h ({items} problems will be alerted again when next "
                   f"judged); see the reports of runs {', '.join(runs[:5]) or 'unknown'}")
        log.warning("outbox entries dropped", extra={"channel": taken.channel, "entries": len(taken.expired),
                                                     "runs": runs[:5], "hours": hours})
        return {"kind": "outbox_dropped", "message": mask_secrets(message), "channel": taken.channel,
                "entries": len(taken.expired), "runs": runs[:5], "hours": f"{hours:g}", "items": items}

    def _forget(self, entries: list[Entry]) -> None:
        gone = {entry.key for entry in entries}
        self._waiting = [key for key in self._waiting if key not in gone]

    def _outbox_summary(self, saved: list[str]) -> dict[str, Any] | None:
        drained = self._drained or {"redelivered": [], "dropped": 0}
        if self.outbox is None or not (saved or drained["redelivered"] or drained["dropped"]):
            return None
        return {"saved": saved, "redelivered": list(drained["redelivered"]), "dropped": int(drained["dropped"])}

    def _withdraw_items(self, message: dict[str, Any]) -> None:
        self._withdraw(_withdraw_keys(message))

    def _withdraw(self, keys: list[tuple[str, str, str]]) -> None:
        if self.store is None:
            return
        from tlsguard.errors import TlsguardError

        for target_key, check, state in keys:
            try:
                self.store.withdraw(target_key, check, state)
            except TlsguardError as exc:
                log.warning("alert not withdrawn", extra={"error": str(exc)})

    def _decide(self, now: float) -> tuple[list[Problem], list[Problem], list[dict[str, Any]]]:
        if self.store is None:  # no state bucket: nothing to deduplicate against, every problem is news
            return list(self._problems.values()), [], []
        open_alerts = self._open_alerts()
        new: list[Problem] = []
        reminders: list[Problem] = []
        resolved: list[dict[str, Any]] = []
        for (key, check, state), problem in self._problems.items():
            # alert state keys hold the safe spelling (a verification's "check" joins its checks with commas)
            existing = {a.state: a for a in open_alerts.get((key, _safe(check)), [])}
            alert = existing.get(_safe(state))
            if alert is None:
                details = {"target": problem.target.to_dict(), "message": problem.message[:500]}
                if self.store.open(key, check, state, now, details, severity=problem.severity.value):
                    new.append(problem)
                    if problem.ladder:
                        self._remind(problem, now, mark_only=True)
                continue
            if self._reminder_due(problem, alert, now):
                reminders.append(problem)
        for (key, check), alerts in open_alerts.items():
            judged = self._judged.get(key)
            if judged is None or check not in {_safe(c) for c in judged}:
                continue  # this run did not judge it: leave it open
            current = {_safe(s) for (k, c, s) in self._problems if k == key and _safe(c) == check}
            for alert in alerts:
                if alert.state in current:
                    continue
                self.store.close(alert, now, "no longer found")
                if not current:
                    target = self._targets.get(key)
                    resolved.append({"target": target.to_dict() if target else {"key": key}, "id": str(target or key),
                                     "check": check, "state": alert.state, "severity": alert.severity or None,
                                     "message": f"{check} on {target.name if target else key}: resolved"})
        return new, reminders, resolved

    def _open_alerts(self) -> dict[tuple[str, str], list[OpenAlert]]:
        assert self.store is not None
        if len(self._targets) <= PER_TARGET_LISTING_LIMIT:
            found: dict[tuple[str, str], list[OpenAlert]] = {}
            for target in self._targets.values():
                found.update(self.store.open_alerts(target))
            return found
        return self.store.open_alerts()

    def _reminder_due(self, problem: Problem, alert: OpenAlert, now: float) -> bool:
        if problem.ladder:
            if problem.ladder in alert.reminders:
                return False
            return self._remind(problem, now, alert=alert)
        if not alert.opened_at:
            return False  # only the lock is there (its opener is still writing, or died): nothing is due yet
        due = [f"{hours:g}h" for hours in self.settings.reminder_hours if now - alert.opened_at >= hours * 3600]
        fresh = [step for step in due if step not in alert.reminders]
        if not fresh or self.store is None:
            return False
        sent = False
        for step in fresh:
            sent = self.store.remind(alert, step, now) or sent
        return sent

    def _remind(self, problem: Problem, now: float, *, alert: OpenAlert | None = None, mark_only: bool = False) -> bool:
        assert self.store is not None
        if alert is None:
            found = self.store.open_alerts(problem.target).get((problem.target.key, _safe(problem.check)), [])
            alert = next((a for a in found if a.state == _safe(problem.state)), None)
            if alert is None:
                return False
        sent = self.store.remind(alert, problem.ladder, now)
        return sent and not mark_only


def _withdraw_keys(message: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The alert-state keys of the new problems in a digest (reminders were alerted before: nothing to withdraw)."""
    from tlsguard.model import TargetRef

    keys = []
    for item in message.get("needs_attention") or []:
        if item.get("reminder"):
            continue
        try:
            keys.append((TargetRef.from_dict(item["target"]).key, str(item["check"]), str(item["state"])))
        except (KeyError, ValueError, TypeError):
            continue
    return keys[:MAX_DIGEST_ITEMS]


def _safe(state: str) -> str:
    from tlsguard.state.alert_state import safe_part

    return safe_part(state)


def _ordered(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.severity.rank, p.target.kind.value, p.target.name, p.check))
