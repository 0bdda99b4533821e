"""The function set's use cases, one per handler: each wires a run, calls the shared lifecycle through
:mod:`tlsguard.runs`, sends the run's one digest, and returns a JSON summary. The handlers only parse and call.

A transient cloud error that survived the adapters' own retries raises :class:`RetryableFailure`, so FC's async
retry applies; everything else is acknowledged with its reason (FC must not retry a poison event forever).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tlsguard import runs, settings, verify_live
from tlsguard.alerts.path import Delivery
from tlsguard.errors import CloudError, ConfigError, EventError, TlsguardError
from tlsguard.functions import events as ev
from tlsguard.functions import runtime
from tlsguard.lifecycle import Lifecycle
from tlsguard.log import bind, get_logger
from tlsguard.model import Outcome, TargetKind, TargetRef, Trigger
from tlsguard.report import RunReport

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tlsguard.alerts.digests import DigestParts
    from tlsguard.alerts.path import AlertPath
    from tlsguard.model import TargetResult
    from tlsguard.wiring import Wiring

log = get_logger("tlsguard.functions")

#: Most targets one webhook request may name (it runs synchronously behind an HTTP trigger).
WEBHOOK_MAX_TARGETS = 100
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

    def add(self, result: TargetResult) -> None:
        self.report.add(result)
        self.alerts.observe(result)

    def finish(self, command: str, correlation: str, *, batch: int | None = None) -> dict[str, Any]:
        """Send the run's digest (a fanned-out batch files its part instead; the last one sends them all)."""
        mode = self.report.mode
        parts = digest_parts(self.wiring) if batch is not None else None
        delivery = self.alerts.flush(command=command, correlation_id=correlation, mode=mode, hold=parts is not None)
        if parts is not None and delivery.message is not None:
            parts.save_part(correlation, batch or 0, delivery.message)
            combined = parts.claim(correlation, now=self.lifecycle.ctx.clock())
            delivery = self.alerts.send(combined) if combined else Delivery()
        self.report.alerts = delivery.to_dict()
        document = self.report.finish().to_dict()
        return {key: document[key] for key in ("command", "mode", "summary", "exit_code", "targets", "verifications",
                                               "alerts", "errors")}


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


def timer_options(timer: ev.TimerEvent) -> tuple[int, int, bool]:
    """(inline threshold, batch size, verify only) from the timer payload and settings; EventError when bad."""
    try:
        threshold = int(timer.options.get("threshold") or runtime.int_setting(settings.FANOUT_THRESHOLD,
                                                                              runtime.DEFAULT_FANOUT_THRESHOLD))
        batch_size = int(timer.options.get("batch_size") or runtime.int_setting(settings.BATCH_SIZE,
                                                                               runtime.DEFAULT_BATCH_SIZE))
    except (TypeError, ValueError):
        raise EventError("threshold and batch_size must be integers") from None
    if threshold < 1 or batch_size < 1:
        raise EventError("threshold and batch_size must be positive")
    if timer.options.get("inline"):
        threshold = 1 << 62
    return threshold, batch_size, bool(timer.options.get("verify_only"))


# -- sweep (hourly timer), certificates (daily timer), verify (frequent timer) -----------------------------------
def sweep(context: Any, timer: ev.TimerEvent, *, kinds: frozenset[TargetKind] = runs.ALL_KINDS,
          rediscover: bool | None = None, command: str = "sweep") -> dict[str, Any]:
    """Every target of ``kinds``: due live verifications first, then check inline up to the threshold, or stream
    the targets into batches of ``batch_size`` for ``TLSGUARD_CHECK_FUNCTION`` (FC 3.0 InvokeFunction, Async)."""
    threshold, batch_size, verify_only = timer_options(timer)
    correlation = f"{command}:{timer.trigger_name or 'manual'}:{timer.trigger_time or int(time.time())}"
    bind_ids(context, correlation)
    run = start(context, command)
    ctx = run.lifecycle.ctx
    for verification in verify_live.run_due(ctx):
        run.report.add_verification(verification)
        run.alerts.observe_verification(verification)
    reconciled = runs.start_run(run.lifecycle)
    if verify_only:
        return {"function": command, "verify_only": True, "correlation_id": correlation,
                **run.finish(command, correlation)}
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
            parts.expect(correlation, summary["batches"], ctx.clock())
            combined = parts.claim(correlation, now=ctx.clock())  # the batches may all have reported already
            if combined:
                run.alerts.send(combined)
        if discovery.transient and not summary["targets"]:
            raise RetryableFailure(f"discovery failed: {'; '.join(discovery.errors[:3])}")
        return {"function": command, "fanout": True, "correlation_id": correlation, "reconciled": reconciled,
                "errors": discovery.errors, **summary}
    results = list(runs.sweep(run.lifecycle, head, trigger=Trigger("sweep"), on_result=run.add))
    run.report.errors.extend(discovery.errors)
    document = run.finish(command, correlation)
    log.info(f"{command} done inline", extra={"targets": len(results), "counts": document["summary"]})
    raise_if_transient(results)
    if discovery.transient and not results:
        raise RetryableFailure(f"discovery failed: {'; '.join(discovery.errors[:3])}")
    return {"function": command, "fanout": False, "correlation_id": correlation, "reconciled": reconciled,
            **document}


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
    targets = []
    for item in items:
        if isinstance(item, str) and item:
            targets.append(TargetRef(TargetKind.OSS_BUCKET, item))
        elif isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]:
            try:
                targets.append(TargetRef.from_dict({"kind": "oss-bucket", **item}))
            except ValueError:
                raise EventError(f"bad target kind in {item!r:.80}") from None
        else:
            raise EventError(f"bad target entry {item!r:.60}")
    return targets


def check(context: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """One batch from the sweep's fan-out (or a manual invocation): check and remediate each target."""
    targets = batch_targets(payload)
    correlation = str(payload.get("correlation_id") or "") or f"check:{getattr(context, 'request_id', '')}"
    bind_ids(context, correlation)
    run = start(context, "check")
    runs.start_run(run.lifecycle)
    if any(not t.region for t in targets if t.kind is TargetKind.OSS_BUCKET):
        regions = {ref.name: ref.region for ref in run.wiring.ports.oss.list_buckets()}
        targets = [TargetRef(t.kind, t.name, t.region or regions.get(t.name, ""), t.account, t.bucket)
                   for t in targets]
    results = list(runs.sweep(run.lifecycle, targets, trigger=Trigger("sweep"), on_result=run.add))
    batch = payload.get("batch")
    document = run.finish("check", correlation, batch=batch if isinstance(batch, int) and batch > 0 else None)
    raise_if_transient(results)
    log.info("batch checked", extra={"batch": payload.get("batch"), "counts": document["summary"]})
    return {"function": "check", "correlation_id": correlation, "batch": payload.get("batch"), **document}


# -- on_change (EventBridge) -------------------------------------------------------------------------------------
def on_change(context: Any, items: list[Any]) -> dict[str, Any]:
    """ActionTrail events: re-read and remediate only the targets each one names, within the event's lease.

    tlsguard's own writes come back as events too: they are compared with live state, never written again and
    raise no alert (the invocation that made the change reports it).
    """
    decisions = [ev.classify(item) for item in items]
    skipped = [d for d in decisions if isinstance(d, ev.Skip)]
    changes = [d for d in decisions if isinstance(d, ev.Change)]
    correlation = ",".join(d.event_id for d in decisions if d.event_id)[:200]
    bind_ids(context, correlation)
    for skip in skipped:
        log.info("event skipped", extra={"event_id": skip.event_id, "event_name": skip.event_name,
                                         "reason": skip.reason})
    handled: list[dict[str, Any]] = []
    results: list[TargetResult] = []
    document: dict[str, Any] = {}
    if changes:
        run = start(context, "on_change", single=True, keep_compliant=True, concurrency=1)
        own = run.wiring.policy.guard.own_principals
        for change in changes:
            bind(correlation_id=change.event_id)
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
    return {"function": "on_change", "handled": handled, "alerts": document.get("alerts"),
            "skipped": [{"event_id": s.event_id or None, "event_name": s.event_name or None, "reason": s.reason}
                        for s in skipped]}


# -- webhook (HTTP) ----------------------------------------------------------------------------------------------
def http_response(status: int, document: dict[str, Any]) -> dict[str, Any]:
    """FC 3.0 HTTP-trigger response for built-in runtimes: statusCode, headers, body (a string)."""
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "isBase64Encoded": False,
            "body": json.dumps(document, sort_keys=False)}


def webhook_http(context: Any, request: ev.HttpRequest) -> dict[str, Any]:
    """Authenticate (HMAC over the raw body, inside the replay window), parse, run; 4xx for bad input, never 5xx
    with a trace."""
    from tlsguard.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

    if request.method != "POST":
        return http_response(405, {"error": "use POST"})
    secret = settings.env(settings.INBOUND_SECRET)
    if not secret:
        log.error("webhook refused: inbound secret not configured", extra={"variable": settings.INBOUND_SECRET})
        return http_response(503, {"error": "webhook is not configured"})
    window = float(settings.env(settings.REPLAY_WINDOW) or runtime.DEFAULT_REPLAY_WINDOW)
    timestamp, signature = request.header(TIMESTAMP_HEADER), request.header(SIGNATURE_HEADER)
    if not timestamp or not signature or not verify(secret, timestamp, request.body, signature,
                                                    tolerance_seconds=window):
        log.warning("webhook refused: bad signature or stale timestamp")
        return http_response(401, {"error": "invalid signature or timestamp outside the replay window"})
    try:
        names, apply = webhook_request(request.body)
    except EventError as exc:
        return http_response(400, {"error": str(exc)})
    try:
        return http_response(200, webhook(context, names, apply))
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
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise EventError("body is not JSON") from None
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


def webhook(context: Any, names: list[str], apply: bool) -> dict[str, Any]:
    """An on-demand check of named targets of any kind (plan unless ``apply``); returns the report."""
    command = "webhook-apply" if apply else "webhook-plan"
    run = start(context, command, apply=apply, single=len(names) <= 4, keep_compliant=True)
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
    """An invocation that exhausted its async retries: log it and alert through the one alert path."""
    request = document["requestContext"]
    function_arn = str(request.get("functionArn") or "")
    function = function_arn.rsplit("/", 1)[-1] or None
    bind_ids(context, f"failed:{request.get('requestId', '')}")
    log.error("function invocation failed after retries", extra={"function": function,
                                                                 "request_id": request.get("requestId"),
                                                                 "attempts": request.get("approximateInvokeCount")})
    run = start(context, "failed", concurrency=1)
    run.alerts.notice("function-failed", f"{function or 'a function'} failed after "
                                         f"{request.get('approximateInvokeCount')} attempts: "
                                         f"{str(document.get('responsePayload') or '')[:500]}",
                      function=function, function_arn=function_arn or None, request_id=request.get("requestId"),
                      condition=request.get("condition"), payload=str(document.get("requestPayload") or "")[:2000])
    delivery = run.alerts.flush(command="failed", correlation_id=str(request.get("requestId") or ""))
    if delivery.error:
        raise RetryableFailure(f"alert not delivered: {delivery.error}")
    return {"function": "failed", "alerted": delivery.sent, "failed_function": function,
            "request_id": request.get("requestId")}
