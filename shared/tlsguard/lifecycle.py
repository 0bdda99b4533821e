"""The lifecycle every entry point shares, for every kind of target.

resolve the desired posture → read the facets the active checks need (independent reads in parallel) → evaluate
→ plan one action per facet → guard (mode, waivers, tlsguard's own change, the event lease, the breaker per target
and check) → journal the intent → write (a lost response is settled by re-reading before any retry) → verify by
re-reading → journal the outcome → record a pending live verification → hand the result to the alert path.

The CLI's plan and apply, the sweep, the check worker, on_change and the webhook differ only in how they find
targets and whether writes are allowed. Every target ends with exactly one :class:`~tlsguard.model.Outcome` and a
reason; no error in one target escapes to the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tlsguard.checks import PLAN_NEEDS, REGISTRY, Unfixable, evaluate, live_expectation, observe
from tlsguard.errors import CloudError, RemediationRefused, TlsguardError, Transient
from tlsguard.facets import CERTIFICATE_FACET, FACETS, Actual, TargetGone, describe_json, read_facets
from tlsguard.log import get_logger, mask_secrets
from tlsguard.model import (
    Action,
    LiveVerification,
    Mode,
    Outcome,
    Severity,
    TargetKind,
    TargetRef,
    TargetResult,
    Trigger,
)
from tlsguard.policy.bucket_policy import remove_added_statements
from tlsguard.policy.loader import resolve
from tlsguard.state import LeaseState, PendingVerification, new_journal_id

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future

    from tlsguard.model import Finding
    from tlsguard.policy.model import Desired, Policy
    from tlsguard.ports import Ports
    from tlsguard.state import JournalEntry, LeaseDecision, State

log = get_logger("tlsguard.lifecycle")

#: A journal intent younger than this may belong to a live process still writing: reconcile only older ones
#: (unless this run holds the event's lease, taken over from a claimant that died).
DEFAULT_RECONCILE_AFTER_SECONDS = 60.0


class Superseded(TlsguardError):
    """The facet changed to something else between tlsguard's read and its write: somebody else acted."""


@dataclass
class RunContext:
    """What one run (a sweep, a batch, an event, a CLI command) shares across its targets."""

    ports: Ports
    policy: Policy
    state: State | None = None
    clock: Callable[[], float] = time.time
    mode_override: Mode | None = None
    apply: bool = False  # False: plan (reads only, never writes anything, not even state)
    parallel_reads: bool = False  # overlap one target's round trips (single-target runs)
    #: Target keys with open journal markers, listed once for a whole run (None: look per target).
    open_targets: set[str] | None = None
    #: Target keys with pending live verifications, listed once for a whole run (None: look per target).
    pending_targets: set[str] | None = None
    write_attempts: int = 3
    write_backoff_seconds: float = 0.2
    reconcile_after_seconds: float = DEFAULT_RECONCILE_AFTER_SECONDS
    sleep: Callable[[float], None] = time.sleep
    #: Live verifications this run made, by target key: (verdict, detail), shown on the target's result.
    live_results: dict[str, tuple[LiveVerification, str]] = field(default_factory=dict)
    #: Per-run cache (the CAS candidate list, read once for every domain that needs it).
    cache: dict[str, Any] = field(default_factory=dict)

    def mode_for(self, desired: Desired) -> Mode:
        return self.mode_override or desired.mode


@dataclass
class _Work:
    """One target's progress through the lifecycle."""

    target: TargetRef
    trigger: Trigger
    now: float
    desired: Desired | None = None
    actual: Actual | None = None
    findings: list[Finding] = field(default_factory=list)
    recent_ids: Future[list[str]] | None = None
    open_ids: Future[list[str]] | None = None
    pending: Future[bool] | None = None


class Lifecycle:
    """Runs the lifecycle for one target at a time (thread-safe: a sweep calls :meth:`run` from many threads)."""

    def __init__(self, context: RunContext) -> None:
        self.ctx = context

    # -- the one entry point ---------------------------------------------------------------------------------
    def run(self, target: TargetRef, *, trigger: Trigger | None = None, prefetched: dict[str, Any] | None = None,
            lease: Callable[[], LeaseDecision] | None = None) -> TargetResult:
        """Check one target and, when the run applies and the mode is enforce, remediate it.

        ``lease`` (event runs) is called before the first write; a duplicate event is compared, never written.
        ``prefetched`` facet values (from discovery) are used to judge but re-read before any write.
        """
        trigger = trigger or Trigger()
        started = time.perf_counter()
        mode = self.ctx.mode_override or self.ctx.policy.mode
        base = TargetResult(target, Outcome.FAILED, "", mode, trigger=trigger)
        try:
            result = self._run(target, trigger, base, prefetched or {}, lease)
        except TargetGone as exc:
            result = replace(base, outcome=Outcome.COMPLIANT, reason=f"nothing to check: {exc}",
                             error_code="TargetGone")
        except CloudError as exc:
            result = replace(base, outcome=Outcome.FAILED, reason=exc.describe(), error_code=exc.code or
                             type(exc).__name__, retryable=exc.retryable)
        except TlsguardError as exc:
            result = replace(base, outcome=Outcome.FAILED, reason=str(exc), error_code=type(exc).__name__)
        except Exception as exc:  # a bug must not sink the run; it is reported as such
            log.exception("unexpected error", extra={"target": str(target)})
            reason = mask_secrets(f"BUG: {type(exc).__name__}: {exc}")  # a library's text may quote a credential
            result = replace(base, outcome=Outcome.FAILED, reason=reason, error_code="BUG")
        if log.isEnabledFor(logging.INFO):  # the fields cost more to build than the call: only when logged
            log.info("target checked", extra={
                "target": str(target), "outcome": result.outcome.value, "reason": result.reason,
                "mode": result.mode.value, "apply": self.ctx.apply,
                "checks": sorted({f.check for f in result.active_findings}), "event_id": trigger.event_id or None,
                "actor": trigger.actor or None, "journal_id": result.journal_id or None,
                "live_verification": result.live_verification.value,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
        return result

    # -- steps -----------------------------------------------------------------------------------------------
    def _run(self, target: TargetRef, trigger: Trigger, base: TargetResult, prefetched: dict[str, Any],
             lease: Callable[[], LeaseDecision] | None) -> TargetResult:
        ctx = self.ctx
        work = _Work(target, trigger, ctx.clock())
        today = dt.datetime.fromtimestamp(work.now, dt.timezone.utc).date()
        tags = None
        if target.kind is TargetKind.OSS_BUCKET and ctx.policy.needs_tags:
            tags = FACETS["tags"].read(ctx.ports, target)
        desired = work.desired = resolve(ctx.policy, target, tags, today, ctx.mode_override)
        checks = [c for c in REGISTRY.for_kind(target.kind) if c.applies(desired)]
        facets = list(dict.fromkeys(name for c in checks for name in c.facets_for(target.kind)))
        self._start_state_reads(work)
        claim_early = getattr(lease, "claim_early", None)
        if claim_early is not None and ctx.parallel_reads and ctx.apply and ctx.state is not None \
                and not trigger.own and ctx.mode_for(desired) is Mode.ENFORCE:
            # An event run that may write claims the event's lease while it reads (one round trip for both); the
            # claim is used only if there is something to write, and completed with the event either way.
            from tlsguard.parallel import io_pool

            io_pool().submit(claim_early)
        actual = work.actual = read_facets(ctx.ports, target, facets, parallel=ctx.parallel_reads,
                                           prefetched=prefetched)
        if actual.errors:
            first = next(iter(actual.errors.values()))
            raise first
        left_open = self._reconcile(work, lease_taken_over=False)
        now_dt = dt.datetime.fromtimestamp(work.now, dt.timezone.utc)
        findings = evaluate(desired, actual, now_dt)
        live, live_detail = self._live_state(work)
        # One replace for all that was learned (a dataclass replace costs ~6 us: this runs for every target).
        base = replace(base, mode=ctx.mode_for(desired), rules=desired.rules, expired_waivers=desired.expired_waivers,
                       checks=tuple(c.id for c in checks), findings=tuple(findings), live_verification=live,
                       live_detail=live_detail, observed=observe(desired, actual, now_dt))
        drifted = [f for f in findings if not f.waived and f.severity is not Severity.INFO]
        if not drifted:
            if left_open and lease is not None and not trigger.own:
                # A retry of an event whose claimant died after writing (nothing left to write): take its lease
                # over (waiting out a live claimant) and finish its journal now rather than at a later sweep.
                decision = lease()
                if decision.lease is not None and decision.lease.taken_over:
                    self._reconcile(work, lease_taken_over=True)
            return self._settled(base, findings)
        summary = ", ".join(sorted({f.check for f in drifted}))
        actions, unfixable = self._plan(work, drifted, now_dt)
        base = replace(base, actions=tuple(actions))
        mode = ctx.mode_for(desired)
        cannot = "; ".join(u.reason for u in unfixable)
        if desired.refusal:
            return replace(base, outcome=Outcome.REFUSED, reason=desired.refusal)
        if not ctx.apply:
            return replace(base, outcome=Outcome.DRIFTED,
                           reason=f"drift in {summary} (plan only, nothing written)" + _also(cannot))
        if mode is Mode.DRY_RUN:
            return replace(base, outcome=Outcome.DRIFTED, reason=f"drift in {summary} (dry-run, nothing written)")
        if mode is Mode.ALERT:
            return replace(base, outcome=Outcome.DRIFTED,
                           reason=f"drift in {summary} (alert mode, nothing written)" + _also(cannot))
        if trigger.own:
            return replace(base, outcome=Outcome.REFUSED,
                           reason=f"drift in {summary} after tlsguard's own change: compared, not written twice")
        if not actions:
            return replace(base, outcome=Outcome.DRIFTED, reason=f"drift in {summary}: {cannot or 'no fix planned'}",
                           error_code="Unfixable" if cannot else "")
        if ctx.state is None:
            raise RemediationRefused("no state bucket configured: refusing to write without a journal")
        if lease is not None:
            decision = lease()
            if decision.state is LeaseState.DUPLICATE:
                return replace(base, outcome=Outcome.COMPLIANT, actions=(), error_code="DuplicateEvent",
                               reason=f"duplicate event {trigger.event_id}: already processed, not acted on again")
            if decision.lease is not None and decision.lease.taken_over:
                self._reconcile(work, lease_taken_over=True)
        actions, contested = self._breaker(work, actions)
        if not actions:
            return replace(base, outcome=Outcome.CONTESTED, error_code="Contested", reason=contested)
        result = self._write(work, base, actions, f"drift in {summary}", refresh=True)
        if contested:
            result = replace(result, reason=f"{result.reason}; {contested}")
        if cannot:
            result = replace(result, reason=f"{result.reason}; {cannot}")
        return result

    def _start_state_reads(self, work: _Work) -> None:
        """The state reads a single-target run overlaps with its facet reads (one round trip for all)."""
        ctx, state, target = self.ctx, self.ctx.state, work.target
        if state is None or not ctx.parallel_reads:
            return
        from tlsguard.parallel import io_pool

        pool = io_pool()
        if ctx.apply and ctx.open_targets is None:
            work.open_ids = pool.submit(state.journal.open_ids, target)
        if ctx.apply and not work.trigger.own and work.desired is not None \
                and ctx.mode_for(work.desired) is Mode.ENFORCE:  # the breaker's listing: only a run that may write
            since = work.now - ctx.policy.guard.window_minutes * 60
            # The open intents come from the open_ids listing made anyway (the same prefix: listed once).
            work.recent_ids = pool.submit(state.journal.ids, target, since,
                                          opened=work.open_ids.result if work.open_ids is not None else None)
        if ctx.pending_targets is None:
            work.pending = pool.submit(state.pending.exists, target)

    def _settled(self, base: TargetResult, findings: list[Finding]) -> TargetResult:
        waived = sorted({f.waived for f in findings if f.waived})
        notices = [f for f in findings if not f.waived and f.severity is Severity.INFO]
        propagating = [f for f in notices if f.alert_state == "propagating"]
        if propagating or base.live_verification is LiveVerification.PENDING:
            why = propagating[0].describe() if propagating else "a change is still reaching the endpoint"
            return replace(base, outcome=Outcome.PENDING, reason=f"matches the policy; {why}")
        reason = "matches the policy" + (f" (waived: {'; '.join(waived)})" if waived else "")
        if notices:
            reason += "; " + "; ".join(f.describe() for f in notices)
        return replace(base, outcome=Outcome.COMPLIANT, reason=reason)

    def _live_state(self, work: _Work) -> tuple[LiveVerification, str]:
        """The verdict this run's probe just gave; else pending while a verification of the target waits."""
        ctx, key = self.ctx, work.target.key
        if key in ctx.live_results:
            return ctx.live_results[key]
        pending = False
        if ctx.pending_targets is not None:
            pending = key in ctx.pending_targets
        elif work.pending is not None:
            try:
                pending = bool(work.pending.result())
            except CloudError:
                pending = False
        return (LiveVerification.PENDING, "") if pending else (LiveVerification.NOT_APPLICABLE, "")

    def _plan(self, work: _Work, drifted: list[Finding], now: dt.datetime) -> tuple[list[Action], list[Unfixable]]:
        """One action per facet the drifted checks fix (in a safe order), or why nothing can fix them."""
        assert work.desired is not None and work.actual is not None
        by_facet: dict[str, set[str]] = {}
        for finding in drifted:
            facet = REGISTRY.get(finding.check).fix_facet(work.target.kind)
            if facet is not None:
                by_facet.setdefault(facet, set()).add(finding.check)
        actions: list[Action] = []
        unfixable: list[Unfixable] = []
        for facet in sorted(by_facet, key=_write_order):
            needs = [name for name in PLAN_NEEDS.get(facet, ()) if name not in work.actual]
            for name in needs:
                work.actual.values[name] = self._cached_read(name, work.target)
            planned = REGISTRY.planners[facet](work.desired, work.actual, frozenset(by_facet[facet]), now)
            if isinstance(planned, Unfixable):
                unfixable.append(planned)
            elif planned is not None:
                actions.append(planned)
        return actions, unfixable

    def _cached_read(self, facet: str, target: TargetRef) -> Any:
        """Facets a planner needs (the CAS candidates): read on demand; the account-wide list once per run."""
        if facet == "cas_candidates":
            from tlsguard.certs.checks import hostname_covered

            key = "cas_candidates"
            if key not in self.ctx.cache:
                if self.ctx.ports.cas is None:
                    raise CloudError("no CAS adapter configured", service="cas", operation="ListUserCertificateOrder")
                self.ctx.cache[key] = self.ctx.ports.cas.candidates()
            covering = [c for c in self.ctx.cache[key] if hostname_covered(target.name, c.sans, c.common_name)]
            return [replace(c, chain_pem=self._chain_of(c.cert_id)) for c in covering]
        return FACETS[facet].read(self.ctx.ports, target)

    def _chain_of(self, cert_id: int) -> tuple[str, ...]:
        key = f"cas_chain:{cert_id}"
        if key not in self.ctx.cache:
            assert self.ctx.ports.cas is not None
            try:
                self.ctx.cache[key] = self.ctx.ports.cas.certificate_chain(cert_id)
            except CloudError:
                self.ctx.cache[key] = ()
        chain: tuple[str, ...] = self.ctx.cache[key]
        return chain

    def _breaker(self, work: _Work, actions: list[Action]) -> tuple[list[Action], str]:
        """Drop the actions of checks remediated ``max_remediations`` times within the window: those are contested."""
        ctx, guard = self.ctx, self.ctx.policy.guard
        assert ctx.state is not None
        since = work.now - guard.window_minutes * 60
        ids = work.recent_ids.result() if work.recent_ids is not None else ctx.state.journal.ids(work.target, since)
        if len(ids) < guard.max_remediations or not ids:  # fewer entries than the limit: nothing can be contested,
            return actions, ""                           # so the entries are not read (two GETs each)
        counts: dict[str, int] = {}
        actors: set[str] = set()
        for entry in ctx.state.journal.entries(ids):
            if entry.intent.get("kind") != "remediation" or entry.status == "not_applied":
                continue
            actor = str((entry.intent.get("trigger") or {}).get("actor") or "unknown")
            for check in {c for a in entry.actions for c in a.checks}:
                counts[check] = counts.get(check, 0) + 1
                actors.add(actor)
        contested = {check for check, n in counts.items() if n >= guard.max_remediations}
        if not contested:
            return actions, ""
        kept = [a for a in actions if not set(a.checks) <= contested]
        worst = max(counts[c] for c in contested)
        everyone = sorted(actors | ({work.trigger.actor} - {""}))
        reason = (f"contested: {', '.join(sorted(contested))} remediated {worst} times in the last "
                  f"{guard.window_minutes} min; tlsguard stops writing them. Actors: {', '.join(everyone)}")
        return kept, reason

    def _refresh(self, work: _Work, actions: list[Action]) -> list[Action]:
        """Compare before write: re-read each facet about to be written; drop an action whose drift is gone and
        replan one whose facet changed since it was judged (a policy statement added meanwhile is kept)."""
        ctx = self.ctx
        assert work.desired is not None and work.actual is not None
        fresh: list[Action] = []
        now_dt = dt.datetime.fromtimestamp(work.now, dt.timezone.utc)
        for action in actions:
            facet = FACETS[action.facet]
            current = facet.read(ctx.ports, work.target)
            if facet.same(facet.to_json(current), action.before):
                fresh.append(action)
                continue
            work.actual.values[action.facet] = current
            for name in [n for n in work.actual.values if FACETS[n].live]:  # judge the change on what is served now
                work.actual.values[name] = FACETS[name].read(ctx.ports, work.target)
            work.actual._memo.clear()
            still = [f for f in evaluate(work.desired, work.actual, now_dt)
                     if not f.waived and f.severity is not Severity.INFO and f.check in action.checks]
            if still:
                replanned = REGISTRY.planners[action.facet](work.desired, work.actual,
                                                           frozenset(f.check for f in still), now_dt)
                if isinstance(replanned, Action):
                    fresh.append(replanned)
        return fresh

    # -- writing ---------------------------------------------------------------------------------------------
    def _write(self, work: _Work, base: TargetResult, actions: list[Action], summary: str, *,
               refresh: bool, kind: str = "remediation", undo_of: str | None = None) -> TargetResult:
        """Journal the intent, write every action (settling lost responses), re-read, journal the outcome."""
        ctx = self.ctx
        assert ctx.state is not None and work.desired is not None
        journal = ctx.state.journal
        mode = ctx.mode_for(work.desired).value

        def intent_for(planned: list[Action]) -> dict[str, Any]:
            return journal.intent_document(new_journal_id(work.target, ctx.clock()), work.target, planned,
                                           now=ctx.clock(), trigger=work.trigger.to_dict(), reason=summary,
                                           mode=mode, kind=kind, undo_of=undo_of)

        if refresh and ctx.parallel_reads:
            # The intent is filed while the facets are re-read (one round trip for both); a facet that changed
            # meanwhile gets a fresh intent and the first is filed as not applied.
            from tlsguard.parallel import io_pool

            intent = intent_for(actions)
            filing = io_pool().submit(journal.write_intent, intent)
            fresh = self._refresh(work, actions)
            filing.result()
            if fresh != actions:
                journal.write_outcome(intent, now=ctx.clock(), status="not_applied", actions=[], verified=False,
                                      reason="superseded before writing: a facet changed since it was read")
                intent = intent_for(fresh)
                if fresh:
                    journal.write_intent(intent)
        else:
            fresh = self._refresh(work, actions) if refresh else actions
            intent = intent_for(fresh)
            if fresh:
                journal.write_intent(intent)
        if not fresh:
            return replace(base, outcome=Outcome.COMPLIANT, actions=(),
                           reason=f"{summary} was corrected by someone else before tlsguard wrote")
        actions = fresh
        journal_id = str(intent["journal_id"])
        statuses: list[dict[str, Any]] = []
        failure: tuple[str, str] | None = None
        retryable = False
        written: list[Action] = []
        for action in actions:
            if failure is not None:
                statuses.append({"call": action.call, "status": "not_attempted", "detail": failure[0]})
                continue
            try:
                detail = self._write_settled(action)
            except Superseded as exc:
                failure = (f"{action.call}: {exc}", "Superseded")
                statuses.append({"call": action.call, "status": "superseded", "detail": str(exc)})
                continue
            except CloudError as exc:
                failure = (f"{action.call}: {exc.describe()}", exc.code or type(exc).__name__)
                retryable = exc.retryable
                statuses.append({"call": action.call, "status": "failed", "detail": exc.describe()})
                continue
            except RemediationRefused as exc:
                failure = (f"{action.call}: {exc}", "Refused")
                statuses.append({"call": action.call, "status": "refused", "detail": str(exc)})
                continue
            statuses.append({"call": action.call, "status": "written", "detail": detail})
            written.append(action)
        verified, mismatches = self._verify_written(work.target, written, statuses)
        verified_at = time.time()
        # An undo restores a before-state the policy does not describe: only a certificate's expectation (the
        # fingerprint of the certificate the action binds) comes from the action itself.
        provable = [a for a in written if kind != "undo" or a.facet in CERTIFICATE_FACET.values()]
        expectations = [(a, e) for a in provable if (e := live_expectation(work.desired, a)) is not None]
        live = LiveVerification.PENDING if expectations else LiveVerification.NOT_APPLICABLE
        ok = failure is None and verified
        status = "applied" if ok else ("partial" if written else "failed")
        if ok:
            reason = f"{summary} rolled back; re-read confirms it" + \
                ("; live verification pending" if expectations else "")
        else:
            reason = failure[0] if failure else f"did not verify after write: {'; '.join(mismatches)}"
        # The pending verification goes first: a process dying between the two must not lose the live proof
        # (the reconciliation of an unfiled outcome records it again, idempotently).
        self._record_pending(work, journal_id, expectations)
        journal.write_outcome(intent, now=ctx.clock(), status=status, actions=statuses, verified=verified,
                              reason=reason, live_verification=live.value)
        if ok:
            return replace(base, outcome=Outcome.REMEDIATED, actions=tuple(actions), applied=True,
                           journal_id=journal_id, live_verification=live, reason=reason, verified_at=verified_at)
        code = failure[1] if failure else "VerifyFailed"
        return replace(base, outcome=Outcome.FAILED, actions=tuple(actions), applied=bool(written),
                       journal_id=journal_id, live_verification=live if written else base.live_verification,
                       reason=reason, error_code=code, retryable=retryable)

    def _write_settled(self, action: Action) -> str:
        """Write once; on a lost or failed response re-read first and write again only while the facet still
        holds the before-state. Returns how the write landed."""
        ctx, facet = self.ctx, FACETS[action.facet]
        last: Transient | None = None
        for attempt in range(max(1, ctx.write_attempts)):
            if attempt:
                ctx.sleep(ctx.write_backoff_seconds * (2 ** (attempt - 1)))
            try:
                facet.write(ctx.ports, action.target, action.after, action.before)
                return "written" if attempt == 0 else f"written on attempt {attempt + 1}"
            except Transient as exc:
                last = exc
            current = facet.to_json(facet.read(ctx.ports, action.target))
            if facet.same(current, action.after):
                return f"the response was lost ({last.code or 'transient'}); the re-read shows it landed"
            if not facet.same(current, action.before):
                raise Superseded(f"changed by someone else meanwhile (now {describe_json(current)[:160]})")
        assert last is not None
        raise last

    def _verify_written(self, target: TargetRef, written: list[Action],
                        statuses: list[dict[str, Any]]) -> tuple[bool, list[str]]:
        """Re-read every written facet and compare it with what was written."""
        mismatches = []
        for action in written:
            facet = FACETS[action.facet]
            reread = facet.to_json(facet.read(self.ctx.ports, target))
            if not facet.same(reread, action.after):
                mismatches.append(f"{action.facet} reads back {describe_json(reread)[:200]}")
                for status in statuses:
                    if status["call"] == action.call:
                        status["status"] = "not_verified"
        return not mismatches, mismatches

    def _record_pending(self, work: _Work, journal_id: str, expectations: list[tuple[Action, dict[str, Any]]]) -> None:
        ctx = self.ctx
        if not expectations or ctx.state is None or work.desired is None:
            return
        expect: dict[str, Any] = {}
        for _, item in expectations:
            expect.update(item)
        checks = tuple(sorted({c for action, _ in expectations for c in action.checks if REGISTRY.get(c).live}))
        created = ctx.clock()
        ctx.state.pending.add(PendingVerification(journal_id, work.target, checks, expect,
                                                  created + work.desired.propagation_seconds, created))

    # -- reconciliation ---------------------------------------------------------------------------------------
    def _reconcile(self, work: _Work, *, lease_taken_over: bool) -> int:
        """Finish the journal of a run that died: an intent without an outcome is re-read and recorded as applied,
        not applied or superseded (only when old enough that no live process can still be writing it).
        Returns how many open intents were left for later."""
        ctx = self.ctx
        if ctx.state is None or not ctx.apply:
            return 0
        if ctx.open_targets is not None and work.target.key not in ctx.open_targets and not lease_taken_over:
            return 0
        if work.open_ids is not None and not lease_taken_over:
            ids = work.open_ids.result()
        else:
            ids = ctx.state.journal.open_ids(work.target)
        return sum(1 for journal_id in ids if not self.reconcile_one(journal_id, force=lease_taken_over))

    def reconcile_one(self, journal_id: str, *, force: bool = False) -> str:
        """Reconcile one open journal entry; returns what was recorded ("" when it was left for later)."""
        ctx = self.ctx
        assert ctx.state is not None
        journal = ctx.state.journal
        entry = journal.read(journal_id)
        now = ctx.clock()
        if entry is None:
            return ""
        if entry.complete:
            journal.close_open(journal_id)  # filed, but the open intent outlived the run that filed it
            return entry.status
        if not force and now - entry.epoch < ctx.reconcile_after_seconds:
            return ""
        statuses = []
        for action in entry.actions:
            facet = FACETS[action.facet]
            current = facet.to_json(facet.read(ctx.ports, action.target))
            if facet.same(current, action.after):
                state = "written"
            elif facet.same(current, action.before):
                state = "not_applied"
            else:
                state = "superseded"
            statuses.append({"call": action.call, "status": state, "detail": "reconciled by re-reading"})
        kinds = {s["status"] for s in statuses}
        status = "applied" if kinds == {"written"} else "not_applied" if kinds <= {"not_applied"} else "partial"
        landed = [a for a, s in zip(entry.actions, statuses, strict=True) if s["status"] == "written"]
        self._record_reconciled_pending(entry, landed)
        journal.write_outcome(entry.intent, now=now, status=status, actions=statuses, verified=status == "applied",
                              reason=f"the run that wrote this intent stopped before its outcome; a re-read shows "
                                     f"{status.replace('_', ' ')}", reconciled=True)
        log.warning("journal entry reconciled", extra={"journal_id": journal_id, "status": status})
        return status

    def _record_reconciled_pending(self, entry: JournalEntry, written: list[Action]) -> None:
        """The live verification the dead run would have recorded for the writes that landed."""
        ctx = self.ctx
        if not written:
            return
        target = entry.target
        work = _Work(target, Trigger(), ctx.clock())
        tags = FACETS["tags"].read(ctx.ports, target) if target.kind is TargetKind.OSS_BUCKET and \
            ctx.policy.needs_tags else None
        today = dt.datetime.fromtimestamp(work.now, dt.timezone.utc).date()
        work.desired = resolve(ctx.policy, target, tags, today, ctx.mode_override)
        provable = [a for a in written if entry.intent.get("kind") != "undo" or a.facet in CERTIFICATE_FACET.values()]
        expectations = [(a, e) for a in provable if (e := live_expectation(work.desired, a)) is not None]
        self._record_pending(work, entry.journal_id, expectations)

    # -- undo ------------------------------------------------------------------------------------------------
    def undo(self, journal_id: str, *, trigger: Trigger | None = None) -> TargetResult:
        """Restore the before-state of every action of a journal entry that still holds what tlsguard wrote.

        Compare before write: an action whose facet changed since is left alone (a bucket policy changed since
        keeps every statement but those tlsguard added); what cannot be restored is reported action by action.
        """
        ctx = self.ctx
        trigger = trigger or Trigger("undo", actor="tlsguard undo")
        mode = ctx.mode_override or ctx.policy.mode
        if ctx.state is None:
            raise RemediationRefused("no state bucket configured: nothing to undo from")
        entry = ctx.state.journal.read(journal_id)
        if entry is None:
            from tlsguard.state import JournalId

            parsed = JournalId.parse(journal_id)
            return TargetResult(TargetRef(parsed.kind, parsed.name), Outcome.FAILED,
                                f"journal entry {journal_id} not found", mode, trigger=trigger,
                                error_code="NoSuchJournal")
        target = entry.target
        base = TargetResult(target, Outcome.FAILED, "", mode, trigger=trigger)
        plan, notes = self._undo_plan(entry)
        if not plan:
            return replace(base, outcome=Outcome.REFUSED, reason="; ".join(notes) or "nothing to undo")
        work = _Work(target, trigger, ctx.clock())
        work.desired = resolve(ctx.policy, target, None, dt.date.today(), ctx.mode_override)
        result = self._write(work, base, plan, f"undo of {journal_id}", refresh=False, kind="undo",
                             undo_of=journal_id)
        if result.outcome is Outcome.REMEDIATED:
            # The undone write's pending live verification would now only disprove it: withdraw it (recorded).
            for pending in ctx.state.pending.all(target):
                if pending.journal_id == journal_id:
                    ctx.state.pending.record_result(pending, "undone", f"undone by {result.journal_id}", ctx.clock())
            restored = ", ".join(a.call for a in plan)
            reason = f"restored the before-state of {journal_id} ({restored})"
            if notes:
                result = replace(result, error_code="PartialUndo", reason=f"{reason}; not restored: {'; '.join(notes)}")
            else:
                result = replace(result, reason=reason)
        return result

    def _undo_plan(self, entry: JournalEntry) -> tuple[list[Action], list[str]]:
        ctx = self.ctx
        plan: list[Action] = []
        notes: list[str] = []
        statuses = {i: s for i, s in enumerate((entry.outcome or {}).get("actions") or [])}
        for index, action in reversed(list(enumerate(entry.actions))):
            done = str((statuses.get(index) or {}).get("status", "written"))
            if entry.outcome is not None and done not in ("written", "not_verified"):
                notes.append(f"{action.call} was not written ({done})")
                continue
            facet = FACETS[action.facet]
            current = facet.to_json(facet.read(ctx.ports, action.target))
            restore: Any = action.before
            if not facet.same(current, action.after):
                if action.facet != "bucket_policy":
                    notes.append(f"{action.call}: already in its before-state" if facet.same(current, action.before)
                                 else f"{action.call}: the {action.facet} changed after tlsguard wrote it; the newer "
                                 "state is kept")
                    continue
                restore = remove_added_statements(current, action.before, action.after)
                if facet.same(current, restore):
                    notes.append(f"{action.call}: what tlsguard added is already gone")
                    continue
            if facet.same(current, restore):
                notes.append(f"{action.call}: already in its before-state")
                continue
            why = _unrestorable(action, restore)
            if why:
                notes.append(f"{action.call}: {why}")
                continue
            plan.append(Action(action.target, action.facet, facet.call_for(restore),
                               {"restore": restore}, current, restore, action.checks,
                               f"restore the {action.facet} recorded before {entry.journal_id}"))
        return plan, notes


def _unrestorable(action: Action, restore: Any) -> str:
    if action.facet == "encryption" and restore is None:
        return "the before-state had no default encryption and tlsguard never deletes encryption"
    if action.facet in ("cname_certificate", "cdn_certificate"):
        before = restore if isinstance(restore, dict) else {}
        if not before.get("cert_id"):
            return "no certificate was bound before: nothing to restore (tlsguard never unbinds one)"
        if before.get("https_enabled") is False:
            return "HTTPS was off before; tlsguard never turns HTTPS off"
    return ""


def _write_order(facet: str) -> int:
    """HTTPS document first, encryption next; the HTTPS-only Deny last (once in place, plain HTTP is refused)."""
    order = ["https_config", "encryption", "cdn_configs", "cname_certificate", "cdn_certificate", "bucket_policy"]
    return order.index(facet) if facet in order else len(order)


def _also(text: str) -> str:
    return f"; {text}" if text else ""
