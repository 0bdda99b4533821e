"""The use cases every entry point calls: find targets, run the lifecycle over them, finish the run.

* :func:`discover` streams every target of the requested kinds: buckets (ListBuckets), custom domains (the
  inventory, or a full ListCname pass when it is older than ``certificates.discovery_hours``) and CDN domains
  (DescribeUserDomains), each domain within ``certificates.include`` / ``exclude``;
* :func:`sweep` runs the lifecycle over a stream with at most ``concurrency`` targets in flight (memory stays
  flat in fleet size);
* :func:`start_run` reconciles journal intents that a dead run left open and lists pending verifications once;
* :func:`named_targets` resolves names given by a person or a CI job (the CLI's ``--target``, the webhook).
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tlsguard.errors import CloudError, TlsguardError
from tlsguard.log import get_logger
from tlsguard.model import TargetKind, TargetRef

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from tlsguard.functions.events import Change
    from tlsguard.lifecycle import Lifecycle, RunContext
    from tlsguard.model import TargetResult, Trigger
    from tlsguard.ports import BucketRef
    from tlsguard.state import LeaseDecision

log = get_logger("tlsguard.runs")

#: CDN domains in these states serve nothing and are not judged.
INACTIVE_CDN_STATUSES = frozenset({"offline", "stopping", "deleting", "check_failed", "checking"})
ALL_KINDS = frozenset(TargetKind)

Discovered = tuple[TargetRef, dict[str, Any]]


@dataclass
class Discovery:
    """Where the targets of a run came from, and what could not be listed (errors are data, never an abort)."""

    errors: list[str] = field(default_factory=list)
    rediscovered: bool = False
    transient: bool = False

    def fail(self, what: str, exc: CloudError) -> None:
        self.errors.append(f"{what}: {exc.describe()}")
        self.transient = self.transient or exc.retryable


def discover(ctx: RunContext, *, kinds: frozenset[TargetKind] = ALL_KINDS, rediscover: bool | None = None,
             concurrency: int = 16, report: Discovery | None = None) -> Iterator[Discovered]:
    """Every target of ``kinds``; ``rediscover`` forces (True) or forbids (False) a full custom-domain pass."""
    report = report or Discovery()
    state_bucket = ctx.policy.state_bucket
    if TargetKind.OSS_BUCKET in kinds:
        try:
            for ref in ctx.ports.oss.list_buckets():
                if ref.name != state_bucket:
                    yield TargetRef(TargetKind.OSS_BUCKET, ref.name, ref.region, ctx.ports.account), {}
        except CloudError as exc:
            report.fail("ListBuckets", exc)
    if TargetKind.CDN_DOMAIN in kinds and ctx.ports.cdn is not None:
        try:
            for summary in ctx.ports.cdn.list_domains():
                if summary.status in INACTIVE_CDN_STATUSES or not ctx.policy.certificates.in_scope(summary.name):
                    continue
                yield TargetRef(TargetKind.CDN_DOMAIN, summary.name, "", ctx.ports.account), {}
        except CloudError as exc:
            report.fail("DescribeUserDomains", exc)
    if TargetKind.OSS_CNAME in kinds and ctx.ports.cname is not None:
        yield from _custom_domains(ctx, rediscover, concurrency, report)


def _custom_domains(ctx: RunContext, rediscover: bool | None, concurrency: int,
                    report: Discovery) -> Iterator[Discovered]:
    now = ctx.clock()
    latest = ctx.state.inventory.latest() if ctx.state is not None else None
    interval = ctx.policy.certificates.discovery_interval.total_seconds()
    stale = latest is None or now - latest[0] >= interval
    if rediscover is False or (rediscover is None and not stale):
        for domain in latest[1] if latest else []:
            if ctx.policy.certificates.in_scope(domain.name):
                yield domain, {}
        return
    report.rediscovered = True
    found: list[TargetRef] = []
    for target, prefetched in full_cname_pass(ctx, concurrency, report):
        found.append(target)
        if ctx.policy.certificates.in_scope(target.name):
            yield target, prefetched
    complete = not any(e.startswith(("ListBuckets", "ListCname")) for e in report.errors)
    if complete and ctx.state is not None and ctx.apply:
        ctx.state.inventory.store(found, now)


def full_cname_pass(ctx: RunContext, concurrency: int, report: Discovery) -> Iterator[Discovered]:
    """ListCname of every bucket (concurrently); each bound domain with the certificate view just read."""
    cname = ctx.ports.cname
    assert cname is not None
    state_bucket = ctx.policy.state_bucket

    def one(ref: BucketRef) -> list[Discovered]:
        try:
            bindings = cname.list_cnames(ref)
        except CloudError as exc:
            report.fail(f"ListCname {ref.name}", exc)
            return []
        return [(TargetRef(TargetKind.OSS_CNAME, b.domain, ref.region, ctx.ports.account, ref.name),
                 {"cname_certificate": b.api}) for b in bindings if b.domain]

    try:
        buckets = (ref for ref in ctx.ports.oss.list_buckets() if ref.name != state_bucket)
        yield from _bounded(buckets, one, concurrency)
    except CloudError as exc:
        report.fail("ListBuckets", exc)


def _bounded(items: Iterable[Any], fn: Callable[[Any], list[Discovered]], concurrency: int) -> Iterator[Discovered]:
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="tlsguard-discover") as pool:
        pending: set[Future[list[Discovered]]] = set()
        source = iter(items)
        exhausted = False
        while True:
            while not exhausted and len(pending) < 2 * concurrency:
                try:
                    pending.add(pool.submit(fn, next(source)))
                except StopIteration:
                    exhausted = True
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield from future.result()


def sweep(lifecycle: Lifecycle, targets: Iterable[Discovered | TargetRef], *, concurrency: int = 16,
          trigger: Trigger | None = None,
          on_result: Callable[[TargetResult], None] | None = None) -> Iterator[TargetResult]:
    """Run the lifecycle on every target with at most ``concurrency`` in flight; yield results as they complete.

    Holds at most ``2 * concurrency`` targets at once. A listing failure inside ``targets`` (a CloudError) ends
    the stream and is raised after the targets in flight finish.
    """
    source = iter(targets)
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="tlsguard") as pool:
        pending: set[Future[TargetResult]] = set()
        exhausted = False
        listing_error: BaseException | None = None
        while True:
            while not exhausted and len(pending) < 2 * concurrency:
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                except CloudError as exc:
                    listing_error = exc
                    exhausted = True
                    break
                target, prefetched = item if isinstance(item, tuple) else (item, {})
                pending.add(pool.submit(lifecycle.run, target, trigger=trigger, prefetched=prefetched))
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                result = future.result()
                if on_result is not None:
                    on_result(result)
                yield result
        if listing_error is not None:
            raise listing_error


def start_run(lifecycle: Lifecycle) -> list[str]:
    """Before a sweep: reconcile every open journal intent a dead run left (old enough that no live process can
    still be writing it) and list the pending live verifications once. Returns what was reconciled."""
    ctx = lifecycle.ctx
    if ctx.state is None:
        return []
    reconciled = []
    still_open: set[str] = set()
    if ctx.apply:
        for journal_id in ctx.state.journal.open_ids():
            try:
                status = lifecycle.reconcile_one(journal_id)
            except (CloudError, TlsguardError) as exc:
                log.warning("reconcile failed", extra={"journal_id": journal_id, "error": str(exc)})
                status = ""
            if status:
                reconciled.append(f"{journal_id}: {status}")
            else:
                still_open.add(journal_id.rsplit("/", 1)[0])
    ctx.open_targets = still_open
    ctx.pending_targets = {p.target.key for p in ctx.state.pending.all()}
    return reconciled


def named_targets(ctx: RunContext, names: Iterable[str], *, report: Discovery | None = None
                  ) -> tuple[list[Discovered], list[str]]:
    """Resolve names to targets: ``kind:name`` explicitly, else a bucket name or a domain (a CDN domain first,
    then a custom domain). Returns the targets found and the names that match nothing."""
    report = report or Discovery()
    kinds_by_value = {k.value: k for k in TargetKind}
    wanted: list[tuple[TargetKind | None, str, str]] = []
    for raw in dict.fromkeys(n.strip() for n in names if n.strip()):
        prefix, sep, rest = raw.partition(":")
        kind = kinds_by_value.get(prefix) if sep else None
        wanted.append((kind, (rest if kind else raw).lower(), raw))
    needed: set[TargetKind] = set()
    for kind, name, _ in wanted:
        needed |= {kind} if kind else ({TargetKind.OSS_BUCKET} if "." not in name else
                                       {TargetKind.CDN_DOMAIN, TargetKind.OSS_CNAME})
    found: list[Discovered] = []
    matched: set[int] = set()

    def take(stream: Iterable[Discovered]) -> None:
        for target, prefetched in stream:
            for index, (kind, name, _) in enumerate(wanted):
                if index in matched or target.name.lower() != name or (kind is not None and kind is not target.kind):
                    continue
                found.append((target, prefetched))
                matched.add(index)
                break

    take(discover(ctx, kinds=frozenset(needed), rediscover=False, report=report))
    unmatched_domains = any(i not in matched and (k is TargetKind.OSS_CNAME or (k is None and "." in n))
                            for i, (k, n, _) in enumerate(wanted))
    if unmatched_domains and ctx.ports.cname is not None:
        take(full_cname_pass(ctx, 16, report))  # a custom domain bound since the last inventory
    return found, [raw for i, (_, _, raw) in enumerate(wanted) if i not in matched]


class EventGate:
    """The lease on one event id, taken just before the first write and released or completed after.

    A live claimant holding the lease is waited for (polling for its "done" marker) until its lease expires; then
    this delivery takes the event over. The decision is memoized: every target of the event shares it.
    :meth:`claim_early` lets the lifecycle make the claim while it reads the target (one round trip for both).
    """

    def __init__(self, ctx: RunContext, event_id: str, details: dict[str, Any]) -> None:
        import threading

        self.ctx = ctx
        self.event_id = event_id
        self.details = details
        self.decision: LeaseDecision | None = None
        self._lock = threading.Lock()

    def __call__(self) -> LeaseDecision:
        from tlsguard.state import LeaseState

        with self._lock:
            if self.decision is not None:
                return self.decision
            assert self.ctx.state is not None
            leases = self.ctx.state.leases
            deadline = self.ctx.clock() + leases.ttl_seconds + 5.0
            while True:
                decision = leases.acquire(self.event_id, now=self.ctx.clock(), details=self.details)
                if decision.state is not LeaseState.BUSY or self.ctx.clock() >= deadline:
                    break
                wait_for = min(max(0.05, decision.holder_expires_at - self.ctx.clock()), 0.5)
                self.ctx.sleep(wait_for)
            self.decision = decision
            return decision

    def claim_early(self) -> None:
        """One claim attempt, overlapped with the target's reads: an acquired (or duplicate) decision is kept for
        :meth:`__call__`; a live claimant is left for it to wait for, only if there is something to write."""
        from tlsguard.state import LeaseState

        with self._lock:
            if self.decision is not None or self.ctx.state is None:
                return
            decision = self.ctx.state.leases.acquire(self.event_id, now=self.ctx.clock(), details=self.details)
            if decision.state is not LeaseState.BUSY:
                self.decision = decision

    def finish(self, *, retry: bool) -> None:
        """Mark the event handled (or give it back so FC's retry may take it at once)."""
        with self._lock:  # an early claim still in flight decides first
            decision = self.decision
        if decision is None or decision.lease is None or self.ctx.state is None:
            return
        if retry:
            self.ctx.state.leases.release(decision.lease)
        else:
            self.ctx.state.leases.complete(decision.lease)


def handle_change(lifecycle: Lifecycle, change: Change, own_principals: Iterable[str]) -> list[TargetResult]:
    """Re-read and, when allowed, remediate every target one change event names (within the event's lease)."""
    from tlsguard.functions.events import trigger_from_trail
    from tlsguard.model import Outcome

    ctx = lifecycle.ctx
    trigger = trigger_from_trail(change.record, own_principals)
    targets: list[Discovered] = [(TargetRef(t.kind, t.name, t.region, ctx.ports.account, t.bucket), {})
                                 for t in change.targets]
    if change.cname_bucket:
        from tlsguard.ports import BucketRef

        if ctx.ports.cname is None:
            return []
        bucket = BucketRef(change.cname_bucket, change.region)
        try:
            bindings = ctx.ports.cname.list_cnames(bucket)
        except CloudError:
            bindings = []
        targets = [(TargetRef(TargetKind.OSS_CNAME, b.domain, change.region, ctx.ports.account, bucket.name),
                    {"cname_certificate": b.api}) for b in bindings
                   if b.domain and ctx.policy.certificates.in_scope(b.domain)]
    gate = EventGate(ctx, change.event_id, {"event_name": change.event_name, "actor": trigger.actor}) \
        if ctx.apply and ctx.state is not None and not trigger.own else None
    results = [lifecycle.run(target, trigger=trigger, prefetched=prefetched, lease=gate)
               for target, prefetched in targets]
    if gate is not None:
        gate.finish(retry=any(r.outcome is Outcome.FAILED and r.retryable for r in results))
    return results
