"""The function set's use cases, one per handler: each wires a run, calls the shared lifecycle through
:mod:`tlsguard.runs`, sends the run's one digest, and returns a JSON summary. The handlers only parse and call.

A transient cloud error that survived the adapters' own retries raises :class:`RetryableFailure`, so FC's async
retry applies; everything else is acknowledged with its reason (FC must not retry a poison event forever).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from tlsguard import runs, settings, verify_live
from tlsguard.alerts.path import Delivery
from tlsguard.errors import CloudError, ConfigError, EventError, EventTooLarge, TlsguardError
from tlsguard.functions import events as ev
from tlsguard.functions import runtime
from tlsguard.lifecycle import Lifecycle
from tlsguard.log import bind, get_logger, scrub
from tlsguard.model import Outcome, TargetKind, TargetRef, Trigger
from tlsguard.report import RunReport

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from tlsguard.alerts.digests import DigestParts
    from tlsguard.alerts.path import AlertPath
    from tlsguard.model import TargetResult
    from tlsguard.wiring import Wiring

log = get_logger("tlsguard.functions")

#: Most targets one webhook request may name (it runs synchronously behind an HTTP trigger).
WEBHOOK_MAX_TARGETS = 100
#: Largest batch a timer may ask the fan-out for, and most targets one check batch may name: a batch is one Async
#: InvokeFunction whose payload FC caps at 128 KB (https://www.alibabacloud.com/help/doc-detail/2527064.html).
MAX_BATCH_SIZE = 500
MAX_CHECK_TARGETS = 1000
#: Longest target name taken from an event or request (a DNS name has at most 253 characters).
MAX_NAME_CHARS = 255
#: Most targets one change event may name: BatchSetCdnDomainConfig takes at most 50 domains per call
#: (https://alibabacloud.com/help/en/doc-detail/90915.htm); an event naming more is skipped as malformed.
MAX_EVENT_TARGETS = 50
#: What a region id and a correlation or request id taken from an event may look like: they end up in endpoint
#: host names and state-bucket keys.
_REGION = re.compile(r"[a-z0-9-]{1,40}")
#: A target name as tlsguard can name one: a bucket (letters, digits, hyphens), a domain (and dots, a leading
#: wildcard), optionally ``kind:`` in front (the webhook's form); nothing that could be a path or a control sequence.
_TARGET_NAME = re.compile(r"[A-Za-z0-9*][A-Za-z0-9*._:-]*", re.ASCII)
_SAFE_ID = re.compile(r"[\w.:+,=@-]{1,200}", re.ASCII)
#: The options a timer payload may set (validated with jsonschema); anything else is reported and ignored.
TIMER_OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "threshold": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
        "batch_size": {"type": "integer", "minimum": 1, "maximum": MAX_BATCH_SIZE},
        "inline": {"type": "boolean"},
        "verify_only": {"type": "boolean"},
    },
}
DOMAIN_KINDS = frozenset({TargetKind.OSS_CNAME, TargetKind.CDN_DOMAIN})


class RetryableFailure(TlsguardError):
    """Raised out of a handler so that FC retries the invocation (a transient cloud error remained)."""


@dataclass
class Run:
    """One invocation's run: wiring, lifecycle, alert path and report."""

    wiring: Wiring
    lifecycle: Lifecycle
    alerts: AlertPath
    report: RunReport
    #: Called just before the run's digest is decided (the sweep judges the event path there).
    before_flush: Callable[[], None] | None = None
    #: What the run's digest did (:mod:`tlsguard.functions.failed_path` raises when it reached no channel).
    delivery: Delivery | None = None

    def add(self, result: TargetResult) -> None:
        self.report.add(result)
        self.alerts.observe(result)

    def finish(self, command: str, correlation: str, *, batch: int | None = None) -> dict[str, Any]:
        """Send the run's digest (a fanned-out batch files its part instead; the last one sends them all)."""
        if self.before_flush is not None:
            self.before_flush()
        mode = self.report.mode
        parts = digest_parts(self.wiring) if batch is not None else None
        delivery = self.alerts.flush(command=command, correlation_id=correlation, mode=mode, hold=parts is not None)
        if parts is not None and delivery.message is not None:
            parts.save_part(correlation, batch or 0, delivery.message)
            combined = parts.claim(correlation, now=self.lifecycle.ctx.clock())
            delivery = self.alerts.send(combined) if combined else Delivery()
        self.delivery = delivery
        self.report.alerts = delivery.to_dict()
        document = self.report.finish().to_dict()
        return {key: document[key] for key in ("command", "mode", "summary", "exit_code", "targets", "verifications",
                                               "alerts", "errors", "event_path") if key in document}


def digest_parts(wiring: Wiring) -> DigestParts | None:
    from tlsguard.alerts.digests import DigestParts

    return DigestParts(wiring.state.bucket) if wiring.state is not None else None


def send_stale_digests(run: Run) -> None:
    """Digests of fanned-out runs whose batches never all reported: sent as they stand."""
    parts = digest_parts(run.wiring)
    if parts is None:
        return
    now = run.lifecycle.ctx.clock()
    for key in parts.stale_runs(now):
        combined = parts.claim(key, now=now, force=True)
        if combined:
            run.alerts.send(combined)


def start(context: Any, command: str, *, apply: bool = True, single: bool = False, keep_compliant: bool = False,
          concurrency: int | None = None) -> Run:
    from tlsguard.wiring import alert_path
    from tlsguard.wiring import context as run_context

    wiring = runtime.wire(context, concurrency=concurrency)
    ctx = run_context(wiring, apply=apply, mode=runtime.mode_override(), parallel_reads=single)
    mode = (ctx.mode_override or wiring.policy.mode).value
    return Run(wiring, Lifecycle(ctx), alert_path(wiring, ctx.clock),
               RunReport(command, mode, runtime.policy_source(), keep_compliant=keep_compliant))


def bind_ids(context: Any, correlation: str) -> None:
    bind(request_id=str(getattr(context, "request_id", "") or ""), correlation_id=correlation)


def raise_if_transient(results: Iterable[TargetResult], what: str = "") -> None:
    failed = [r for r in results if r.outcome is Outcome.FAILED and r.retryable]
    if failed:
        details = "; ".join(f"{r.target.name}: {r.reason}" for r in failed[:3])
        raise RetryableFailure(f"transient cloud errors{what} on {len(failed)} targets: {details}")


class TimerOptions(NamedTuple):
    threshold: int
    batch_size: int
    verify_only: bool
    problems: tuple[str, ...]  # what the timer event got wrong: ignored, the defaults applied


def timer_options(timer: ev.TimerEvent) -> TimerOptions:
    """The sweep's options from the timer payload over the settings. Never refuses: an unknown or invalid option is
    listed in ``problems`` and its default applies (a timer that fires every hour must check every hour)."""
    from jsonschema import Draft202012Validator

    problems = list(timer.problems)
    options = dict(timer.options)
    unknown = sorted(set(options) - set(TIMER_OPTIONS_SCHEMA["properties"]))
    problems.extend(f"unknown option {name[:40]!r} ignored" for name in unknown[:10])
    if len(unknown) > 10:
        problems.append(f"{len(unknown) - 10} more unknown options ignored")
    invalid: dict[str, str] = {}
    for error in Draft202012Validator(TIMER_OPTIONS_SCHEMA).iter_errors(options):
        if error.path:
            invalid.setdefault(str(error.path[0]), error.message[:120])
    for name, message in invalid.items():
        options.pop(name, None)
        problems.append(f"option {name!r} ignored ({message}): the default applies")
    threshold = int(options.get("threshold") or runtime.int_setting(settings.FANOUT_THRESHOLD,
                                                                    runtime.DEFAULT_FANOUT_THRESHOLD))
    batch_size = int(options.get("batch_size") or runtime.int_setting(settings.BATCH_SIZE, runtime.DEFAULT_BATCH_SIZE))
    if options.get("inline") is True:
        threshold = 1 << 62
    return TimerOptions(threshold, batch_size, options.get("verify_only") is True, tuple(problems))


# -- sweep (hourly timer), certificates (daily timer), verify (frequent timer) -----------------------------------
def sweep(context: Any, timer: ev.TimerEvent, *, kinds: frozenset[TargetKind] = runs.ALL_KINDS,
          rediscover: bool | None = None, command: str = "sweep") -> dict[str, Any]:
    """The timer's run (see :func:`run_sweep`); what the timer event got wrong is logged and reported in
    ``payload_problems`` while the sweep runs with the default options."""
    options = timer_options(timer)
    for problem in options.problems:
        log.warning("timer payload problem: the sweep runs with the default options",
                    extra={"function": command, "trigger": timer.trigger_name, "problem": problem})
    result = run_sweep(context, timer, options, kinds=kinds, rediscover=rediscover, command=command)
    return {**result, "payload_problems": list(options.problems)} if options.problems else result


def run_sweep(context: Any, timer: ev.TimerEvent, options: TimerOptions, *, kinds: frozenset[TargetKind],
              rediscover: bool | None, command: str) -> dict[str, Any]:
    """Every target of ``kinds``: due live verifications first, then check inline up to the threshold, or stream
    the targets into batches of ``batch_size`` for ``TLSGUARD_CHECK_FUNCTION`` (FC 3.0 InvokeFunction, Async)."""
    threshold, batch_size, verify_only, _ = options
    correlation = f"{command}:{timer.trigger_name or 'manual'}:{timer.trigger_time or int(time.time())}"
    bind_ids(context, correlation)
    run = start(context, command)
    ctx = run.lifecycle.ctx
    from tlsguard.functions import failed_path

    drained = failed_path.drain_if_retry(run, context, correlation, command)
    if drained is not None:  # a retry of a sweep whose work is done: never sweep again
        return drained
    if command == "sweep":
        run.before_flush = event_path_heartbeat(run, timer)
    for verification in verify_live.run_due(ctx):
        run.report.add_verification(verification)
        run.alerts.observe_verification(verification)
    reconciled = runs.start_run(run.lifecycle)
    if verify_only:
        verified = {"function": command, "verify_only": True, "correlation_id": correlation,
                    **run.finish(command, correlation)}
        failed_path.raise_if_unheard(run, context, correlation, command, verified)
        return verified
    discovery = runs.Discovery()
    stream = runs.discover(ctx, kinds=kinds, rediscover=rediscover, report=discovery)
    head: list[runs.Discovered] = []
    for item in stream:
        head.append(item)
        if len(head) > threshold:
            break
    send_stale_digests(run)
    if len(head) > threshold:
        summary = fan_out(context, correlation, head, stream, batch_size)
        parts = digest_parts(run.wiring)
        if parts is not None and summary["batches"]:
            # The sweep's own part (verifications, the event-path heartbeat) joins the batches' as part 0.
            if run.before_flush is not None:
                run.before_flush()
            own = run.alerts.flush(command=command, correlation_id=correlation, mode=run.report.mode, hold=True)
            has_own = own.message is not None and any(own.message.get(section) for section in (
                "needs_attention", "resolved", "remediated", "verifications", "notices"))
            if has_own and own.message is not None:
                parts.save_part(correlation, 0, own.message)
            parts.expect(correlation, summary["batches"] + int(has_own), ctx.clock())
            combined = parts.claim(correlation, now=ctx.clock())  # the batches may all have reported already
            if combined:
                run.delivery = run.alerts.send(combined)
        if run.delivery is None:
            run.alerts.drain(command=command, correlation_id=correlation)  # the outbox, even when nothing is said
        if discovery.transient and not summary["targets"]:
            raise RetryableFailure(f"discovery failed: {'; '.join(discovery.errors[:3])}")
        fanned = {"function": command, "fanout": True, "correlation_id": correlation, "reconciled": reconciled,
                  "errors": discovery.errors, **summary,
                  **({"event_path": run.report.event_path} if run.report.event_path is not None else {})}
        if run.delivery is not None:  # the sweep sent the combined digest (else the batch that did answers for it)
            failed_path.raise_if_unheard(run, context, correlation, command, fanned)
        return fanned
    results = list(runs.sweep(run.lifecycle, head, trigger=Trigger("sweep"), on_result=run.add))
    run.report.errors.extend(discovery.errors)
    document = run.finish(command, correlation)
    log.info(f"{command} done inline", extra={"targets": len(results), "counts": document["summary"]})
    raise_if_transient(results)
    if discovery.transient and not results:
        raise RetryableFailure(f"discovery failed: {'; '.join(discovery.errors[:3])}")
    swept = {"function": command, "fanout": False, "correlation_id": correlation, "reconciled": reconciled,
             **document}
    failed_path.raise_if_unheard(run, context, correlation, command, swept)
    return swept


def event_path_heartbeat(run: Run, timer: ev.TimerEvent) -> Callable[[], None]:
    """Write the next heartbeat now; return what judges the event path at the run's end (just before its digest,
    so an arrival meanwhile counts) and hands the verdict to the report and the alert path. Never raises: the
    sweep runs whatever the event path does."""
    from tlsguard import heartbeat
    from tlsguard.alerts.path import Problem
    from tlsguard.model import Severity

    policy, state, ctx = run.wiring.policy, run.wiring.state, run.lifecycle.ctx
    limit = policy.heartbeat.max_lag_seconds
    if state is None or not policy.heartbeat.enabled or not ctx.apply:
        reason = "no state bucket" if state is None else "heartbeat.enabled is false" if ctx.apply else "plan only"
        disabled = heartbeat.EventPath(heartbeat.DISABLED, limit, ctx.clock(), error=f"heartbeat disabled: {reason}")

        def report_disabled() -> None:
            run.report.event_path = disabled.to_dict()

        return report_disabled
    store = heartbeat.HeartbeatStore(state.bucket)
    written, error = heartbeat.beat(run.wiring.ports.oss, store, policy.state_bucket,
                                    heartbeat.heartbeat_clock(ctx.clock(), timer.trigger_time))

    def judge() -> None:
        now = heartbeat.heartbeat_clock(ctx.clock(), timer.trigger_time)
        path = heartbeat.judge(store, now, limit, written=written, error=error)
        run.report.event_path = path.to_dict()
        target = TargetRef(TargetKind.OSS_BUCKET, policy.state_bucket, account=run.wiring.ports.account)
        problems = []
        if path.status == heartbeat.BROKEN:
            problems.append(Problem(target, heartbeat.EVENT_PATH_CHECK, "broken", Severity.HIGH, path.message()))
        if error:
            problems.append(Problem(target, heartbeat.EVENT_PATH_CHECK, "heartbeat_not_written", Severity.MEDIUM,
                                    f"{error}; the event path is not being tested"))
        if path.status in (heartbeat.OK, heartbeat.BROKEN, heartbeat.WAITING) or problems:
            run.alerts.observe_health(target, heartbeat.EVENT_PATH_CHECK, problems)
        log.info("event path", extra={"status": path.status, "lag_seconds": path.lag_seconds, "written": written})

    return judge


def heartbeat_arrival(run: Run, change: ev.Change) -> dict[str, Any]:
    """on_change's side of the heartbeat: record that the event arrived (the next sweep judges the path, and
    resolves an open "event path broken")."""
    from tlsguard import heartbeat

    state, ctx = run.wiring.state, run.lifecycle.ctx
    assert state is not None  # is_heartbeat needs the state bucket's name
    event_time = str(change.record.get("eventTime") or "")
    now = heartbeat.heartbeat_clock(ctx.clock(), event_time)
    arrival = heartbeat.HeartbeatStore(state.bucket).record_arrival(now, change.event_id, event_time)
    log.info("heartbeat arrived", extra={"event_id": change.event_id, "lag_seconds": arrival.lag_seconds})
    return {"event_id": change.event_id, "event_name": change.event_name, "lag_seconds": arrival.lag_seconds}


def fan_out(context: Any, correlation: str, head: list[runs.Discovered], rest: Iterable[runs.Discovered],
            batch_size: int) -> dict[str, Any]:
    """Stream targets into Async InvokeFunction batches; FC's own queue and scaling do the fan-out."""
    function = settings.env(settings.CHECK_FUNCTION) or runtime.DEFAULT_CHECK_FUNCTION
    invoker = runtime.FcInvoker(context, runtime.credentials_from(context))
    batches, count = 0, 0
    request_ids: list[str] = []
    batch: list[TargetRef] = []

    def flush() -> None:
        nonlocal batches, count
        payload = json.dumps({"correlation_id": correlation, "batch": batches + 1,
                              "targets": [t.to_dict() for t in batch]}).encode()
        request_ids.append(invoker.invoke_async(function, payload))
        batches += 1
        count += len(batch)
        batch.clear()

    try:
        for target, _ in [*head, *rest]:
            batch.append(target)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    except CloudError as exc:
        # Batches already queued stay queued; retrying the whole sweep re-checks them, which is harmless.
        if exc.retryable:
            raise RetryableFailure(f"fan-out stopped after {batches} batches: {exc.describe()}") from exc
        raise
    log.info("sweep fanned out", extra={"batches": batches, "targets": count, "function": function})
    return {"target": function, "batches": batches, "targets": count, "buckets": count, "request_ids": request_ids}


# -- check (one batch) -----------------------------------------------------------------------------------------
def batch_targets(payload: Any) -> list[TargetRef]:
    """The targets of a batch: ``{"targets": [{kind, name, region, bucket}, ...]}`` (or bucket names)."""
    if not isinstance(payload, dict):
        raise EventError("check payload must be a JSON object")
    items = payload.get("targets", payload.get("buckets"))
    if not isinstance(items, list) or not items:
        raise EventError("check payload needs a non-empty targets list")
    if len(items) > MAX_CHECK_TARGETS:
        raise EventError(f"check payload names {len(items)} targets (at most {MAX_CHECK_TARGETS})")
    targets = []
    for item in items:
        if isinstance(item, str) and item:
            _check_name(item)
            targets.append(TargetRef(TargetKind.OSS_BUCKET, item))
        elif isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]:
            for key in ("kind", "region", "account", "bucket"):
                if item.get(key) is not None and not isinstance(item[key], str):
                    raise EventError(f"target {key} must be a string")
            _check_name(item["name"])
            if item.get("bucket"):
                _check_name(item["bucket"])
            if item.get("region") and not _REGION.fullmatch(item["region"]):
                raise EventError(f"bad target region {item['region'][:40]!r}")
            if item.get("account") and not safe_id(item["account"]):
                raise EventError(f"bad target account {item['account'][:40]!r}")
            try:
                targets.append(TargetRef.from_dict({"kind": "oss-bucket", **item}))
            except ValueError:
                raise EventError(f"bad target kind in {item!r:.80}") from None
        else:
            raise EventError(f"bad target entry {item!r:.60}")
    return targets


def name_problem(name: str) -> str:
    """Why ``name`` cannot be a target name (too long, not a bucket or domain name), or ""."""
    if len(name) > MAX_NAME_CHARS:
        return f"target name of {len(name)} characters (at most {MAX_NAME_CHARS})"
    if not _TARGET_NAME.fullmatch(name) or ".." in name:
        return f"target name {name[:40]!r} is not a bucket or domain name"
    return ""


def _check_name(name: str) -> None:
    problem = name_problem(name)
    if problem:
        raise EventError(problem)


def safe_id(value: Any) -> str:
    """An id from an event (correlation, request) when it is short plain text, else ""."""
    return value if isinstance(value, str) and _SAFE_ID.fullmatch(value) and ".." not in value else ""


def check(context: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """One batch from the sweep's fan-out (or a manual invocation): check and remediate each target."""
    targets = batch_targets(payload)
    correlation = safe_id(payload.get("correlation_id")) or f"check:{getattr(context, 'request_id', '')}"
    bind_ids(context, correlation)
    run = start(context, "check")
    from tlsguard.functions import failed_path

    batch_id = f"{correlation}:batch-{payload.get('batch')}"  # the batches of one sweep share its correlation
    drained = failed_path.drain_if_retry(run, context, correlation, "check", run_id=batch_id)
    if drained is not None:  # a retry of a batch whose work is done: never check it again
        return drained
    runs.start_run(run.lifecycle)
    if any(not t.region for t in targets if t.kind is TargetKind.OSS_BUCKET):
        regions = {ref.name: ref.region for ref in run.wiring.ports.oss.list_buckets()}
        targets = [TargetRef(t.kind, t.name, t.region or regions.get(t.name, ""), t.account, t.bucket)
                   for t in targets]
    results = list(runs.sweep(run.lifecycle, targets, trigger=Trigger("sweep"), on_result=run.add))
    batch = payload.get("batch")
    batch = batch if type(batch) is int and 0 < batch <= 1_000_000 else None
    document = run.finish("check", correlation, batch=batch)
    raise_if_transient(results)
    log.info("batch checked", extra={"batch": batch, "counts": document["summary"]})
    checked = {"function": "check", "correlation_id": correlation, "batch": batch, **document}
    failed_path.raise_if_unheard(run, context, correlation, "check", checked, run_id=batch_id)
    return checked


# -- on_change (EventBridge) -------------------------------------------------------------------------------------
def screen_change(decision: ev.Change | ev.Skip) -> ev.Change | ev.Skip:
    """A change whose names or regions could not be used (too long, not a bucket or domain name, too many, not a
    region id) becomes a skip with the reason, before anything is read or leased."""
    if not isinstance(decision, ev.Change):
        return decision
    names = [t.name for t in decision.targets] + ([decision.cname_bucket] if decision.cname_bucket else [])
    problem = f"names {len(names)} targets (at most {MAX_EVENT_TARGETS})" if len(names) > MAX_EVENT_TARGETS else ""
    problem = problem or next((p for p in map(name_problem, names) if p), "")
    regions = {decision.region, *(t.region for t in decision.targets)} - {""}
    if not problem and any(not _REGION.fullmatch(region) for region in regions):
        problem = "region is not a region id"
    return ev.Skip(decision.event_id, f"malformed event: {problem}", decision.event_name) if problem else decision


def on_change(context: Any, items: list[Any]) -> dict[str, Any]:
    """ActionTrail events: re-read and remediate only the targets each one names, within the event's lease.

    tlsguard's own writes come back as events too: they are compared with live state, never written again and
    raise no alert (the invocation that made the change reports it).
    """
    decisions = [screen_change(ev.classify(item)) for item in items]
    skipped = [d for d in decisions if isinstance(d, ev.Skip)]
    changes = [d for d in decisions if isinstance(d, ev.Change)]
    correlation = ",".join(d.event_id for d in decisions if d.event_id)[:200]
    bind_ids(context, correlation)
    for skip in skipped:
        log.info("event skipped", extra={"event_id": skip.event_id, "event_name": skip.event_name,
                                         "reason": skip.reason})
    handled: list[dict[str, Any]] = []
    heartbeats: list[dict[str, Any]] = []
    results: list[TargetResult] = []
    document: dict[str, Any] = {}
    if changes:
        from tlsguard.heartbeat import is_heartbeat

        run = start(context, "on_change", single=True, keep_compliant=True, concurrency=1)
        own = run.wiring.policy.guard.own_principals
        for change in changes:
            bind(correlation_id=change.event_id)
            if run.wiring.state is not None and is_heartbeat(change, run.wiring.policy.state_bucket, own):
                try:
                    heartbeats.append(heartbeat_arrival(run, change))
                except CloudError as exc:
                    if exc.retryable:
                        raise RetryableFailure(f"heartbeat arrival not recorded: {exc.describe()}") from exc
                    log.warning("heartbeat arrival not recorded", extra={"error": exc.describe()})
                continue
            for result in runs.handle_change(run.lifecycle, change, own):
                run.add(result)
                results.append(result)
                handled.append({**result.to_dict(), "event_id": change.event_id, "event_name": change.event_name,
                                "verified_at": result.verified_at or None})
                log.info("event handled", extra={"event_id": change.event_id, "event_name": change.event_name,
                                                 "target": str(result.target), "outcome": result.outcome.value,
                                                 "reason": result.reason, "journal_id": result.journal_id or None})
        document = run.finish("on_change", correlation)
    raise_if_transient(results)
    answer = {"function": "on_change", "handled": handled, "alerts": document.get("alerts"),
              "skipped": [{"event_id": s.event_id or None, "event_name": s.event_name or None, "reason": s.reason}
                          for s in skipped],
              **({"heartbeats": heartbeats} if heartbeats else {})}
    if changes:
        from tlsguard.functions import failed_path

        # A retry finds its events done (duplicates: nothing redone) and only re-delivers the outbox.
        failed_path.raise_if_unheard(run, context, correlation, "on_change", answer, resumable=False)
    return answer


# -- webhook (HTTP) ----------------------------------------------------------------------------------------------
def http_response(status: int, document: dict[str, Any]) -> dict[str, Any]:
    """FC 3.0 HTTP-trigger response for built-in runtimes: statusCode, headers, body (a string, redacted)."""
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "isBase64Encoded": False,
            "body": json.dumps(scrub(document), sort_keys=False)}


def http_refusal(exc: EventError) -> dict[str, Any]:
    """The answer to an HTTP-trigger event that cannot be read: 413 when over a size limit, else 400."""
    status = 413 if isinstance(exc, EventTooLarge) else 400
    log.warning("webhook refused: unreadable request", extra={"status": status, "reason": str(exc)})
    return http_response(status, {"error": str(exc)})


def webhook_http(context: Any, request: ev.HttpRequest) -> dict[str, Any]:
    """Authenticate (HMAC over the raw body, inside the replay window), parse, refuse a replay, run; 4xx for bad
    input (401 signature, 400 body, 409 replay), never 5xx with a trace."""
    from tlsguard.functions import replay
    from tlsguard.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify

    if request.method != "POST":
        return http_response(405, {"error": "use POST"})
    secret = settings.env(settings.INBOUND_SECRET)
    if not secret:
        log.error("webhook refused: inbound secret not configured", extra={"variable": settings.INBOUND_SECRET})
        return http_response(503, {"error": "webhook is not configured"})
    try:
        window = settings.number(settings.REPLAY_WINDOW, runtime.DEFAULT_REPLAY_WINDOW, minimum=1.0, maximum=3600.0)
    except ConfigError as exc:
        log.error("webhook refused: replay window misconfigured", extra={"reason": str(exc)})
        return http_response(503, {"error": "webhook is not configured"})
    timestamp, signature = request.header(TIMESTAMP_HEADER), request.header(SIGNATURE_HEADER)
    if not timestamp or not signature or not verify(secret, timestamp, request.body, signature,
                                                    tolerance_seconds=window):
        log.warning("webhook refused: bad signature or stale timestamp")
        return http_response(401, {"error": "invalid signature or timestamp outside the replay window"})
    try:
        names, apply = webhook_request(request.body)
    except EventError as exc:
        log.warning("webhook refused: bad body", extra={"reason": str(exc)})
        return http_response(400, {"error": str(exc)})
    try:
        run = start(context, "webhook-apply" if apply else "webhook-plan", apply=apply, single=len(names) <= 4,
                    keep_compliant=True)
        state = run.wiring.state.bucket if run.wiring.state is not None else None
        now = run.lifecycle.ctx.clock()
        seen = replay.remember(replay.request_key(sign(secret, timestamp, request.body)), timestamp=float(timestamp),
                               now=now, window_seconds=window, bucket=state)
        if seen is not replay.Seen.FIRST:
            log.warning("webhook refused: replay", extra={"seen": seen.value, "apply": apply})
            return http_response(409, {"error": "this signed request was already received (a replay); sign each "
                                                "request with a fresh timestamp" if seen is replay.Seen.REPLAY else
                                                "too many requests within the replay window; retry later"})
        return http_response(200, webhook(run, names, apply))
    except CloudError as exc:
        log.error("webhook failed: cloud error", extra={"error": exc.describe()})
        return http_response(503, {"error": "tlsguard could not reach its state; retry later",
                                   "request_id": getattr(context, "request_id", "")})
    except ConfigError as exc:
        log.error("webhook failed: configuration", extra={"error": str(exc)})
        return http_response(500, {"error": "tlsguard is misconfigured; see the function log",
                                   "request_id": getattr(context, "request_id", "")})
    except Exception as exc:
        log.error("webhook failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        return http_response(500, {"error": "internal error; see the function log",
                                   "request_id": getattr(context, "request_id", "")})


def webhook_request(body: bytes) -> tuple[list[str], bool]:
    """(target names, apply) from a webhook body; EventError says what is wrong."""
    try:
        document = ev.loads_bounded(body.decode("utf-8"), "body")
    except UnicodeDecodeError:
        raise EventError("body is not UTF-8") from None
    if not isinstance(document, dict):
        raise EventError("body must be a JSON object")
    unknown = sorted(set(document) - {"targets", "buckets", "domains", "apply"})
    if unknown:
        raise EventError(f"unknown fields: {', '.join(unknown)} (expected targets, buckets, domains, apply)")
    names: list[str] = []
    for key in ("targets", "buckets", "domains"):
        values = document.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise EventError(f"{key} must be a list of names")
        if len(values) > WEBHOOK_MAX_TARGETS:
            raise EventError(f"at most {WEBHOOK_MAX_TARGETS} targets per request")
        for value in values:
            _check_name(value)
        names.extend(v.lower() if key == "domains" else v for v in values)
    names = list(dict.fromkeys(names))
    if not names:
        raise EventError("name at least one target (targets, buckets or domains)")
    if len(names) > WEBHOOK_MAX_TARGETS:
        raise EventError(f"at most {WEBHOOK_MAX_TARGETS} targets per request")
    apply = document.get("apply", False)
    if not isinstance(apply, bool):
        raise EventError("apply must be true or false")
    return names, apply


def webhook(run: Run, names: list[str], apply: bool) -> dict[str, Any]:
    """An on-demand check of named targets of any kind (plan unless ``apply``) in ``run``; returns the report."""
    command = run.report.command
    runs.start_run(run.lifecycle)
    found, missing = runs.named_targets(run.lifecycle.ctx, names)
    for _ in runs.sweep(run.lifecycle, found, trigger=Trigger("webhook", actor="tlsguard-webhook"), on_result=run.add):
        pass
    run.report.errors.extend(f"target {name} not found" for name in missing)
    if apply:  # a plan only reports: it sends no alert
        run.report.alerts = run.alerts.flush(command=command, mode=run.report.mode).to_dict()
    return run.report.finish().to_dict()


# -- failed (on-failure destination) ----------------------------------------------------------------------------
def failed(context: Any, document: dict[str, Any]) -> dict[str, Any]:
    """An invocation that exhausted its async retries: log it and alert through the one alert path.

    The record's fields are used only when they have the documented types (ids and ARNs as short text, the attempt
    count as a number); anything else is left out rather than echoed into logs, keys and alerts.
    """
    request = document["requestContext"]
    arn = request.get("functionArn")
    function_arn = arn[:512] if isinstance(arn, str) else ""
    function = function_arn.rsplit("/", 1)[-1][:128] or None
    request_id = safe_id(request.get("requestId")) or None
    count = request.get("approximateInvokeCount")
    attempts = count if type(count) is int and 0 <= count <= 1000 else None
    condition = safe_id(request.get("condition")) or None
    bind_ids(context, f"failed:{request_id or ''}")
    log.error("function invocation failed after retries", extra={"function": function, "request_id": request_id,
                                                                 "attempts": attempts})
    run = start(context, "failed", concurrency=1)
    run.alerts.notice("function-failed", f"{function or 'a function'} failed after "
                                         f"{attempts if attempts is not None else 'several'} attempts: "
                                         f"{str(document.get('responsePayload') or '')[:500]}",
                      function=function, function_arn=function_arn or None, request_id=request_id,
                      attempts=attempts, response=str(document.get("responsePayload") or "")[:500],
                      condition=condition, payload=str(document.get("requestPayload") or "")[:2000])
    delivery = run.alerts.flush(command="failed", correlation_id=request_id or "")
    from tlsguard.functions import failed_path

    failed_path.forget_retry(run, request_id)  # FC retries the failed invocation no more
    if delivery.error:  # no retries and no destination of its own: the record FC keeps says so, loudly
        saved = f"; saved in the outbox for {', '.join(delivery.saved)}" if delivery.saved else ""
        raise RetryableFailure(f"alert not delivered: {delivery.error}{saved}")
    return {"function": "failed", "alerted": delivery.sent, "failed_function": function, "request_id": request_id}
