"""The failed path for a digest nobody heard: the invocation fails after its work, so FC retries it and finally hands
it to ``tlsguard-failed``; a retry never redoes the work.

When no channel took a run's digest (each one refused or could not be reached, after its own retries), the digest
already waits in the outbox (:mod:`tlsguard.alerts.outbox`), its entries marked as unheard. The sweep,
cert_renewal, check and on_change functions then keep the run's report in the state bucket and raise
:class:`~tlsguard.functions.service.RetryableFailure`. A retry does not redo the work: on_change's events are
leased (a retry finds them done: duplicates), and a sweep or a batch leaves a record that its work is done, which
its retry finds before anything else (:func:`drain_if_retry`). Every attempt's flush re-delivers the outbox first;
while the run's unheard entries still wait, the attempt fails again, until FC's last attempt hands the invocation to
``tlsguard-failed``, which alerts through the channels that work and re-delivers the outbox too. A digest that
reached some channel (a partial failure) does not raise: a person heard of the run there, with a
``delivery_failed`` notice, and the outbox delivers the rest with the next run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tlsguard.functions.service import RetryableFailure, safe_id
from tlsguard.log import get_logger, mask_secrets

if TYPE_CHECKING:
    from tlsguard.functions.service import Run

log = get_logger("tlsguard.functions")

#: Longest list of channel errors quoted in the exception FC records (and hands to tlsguard-failed).
MAX_REASONS_CHARS = 500


def invocation_keys(context: Any, run_id: str) -> list[str]:
    """What identifies an invocation across FC's retries: its request id (an async task keeps one request id over
    its retries, https://www.alibabacloud.com/help/en/functioncompute/api-fc-2023-03-30-struct-asynctask; that
    a retry's context carries the same id is UNCONFIRMED) and its run (the sweep's timer and trigger time, the
    batch's sweep and number), which its payload repeats on every retry."""
    request_id = safe_id(getattr(context, "request_id", ""))
    return [key for key in (f"request:{request_id}" if request_id else "", f"run:{run_id}" if run_id else "") if key]


def _reasons(run: Run) -> str:
    """Why: this attempt's failed channels, and its failed re-deliveries of the outbox."""
    delivery = run.delivery
    failed = [f"{c.name}: {c.error}" for c in (delivery.channels if delivery else []) if not c.sent]
    redelivered = ((delivery.outbox if delivery else None) or {}).get("redelivered") or []
    failed += [f"{r['name']} (outbox): {r['error']}" for r in redelivered if not r["sent"]]
    reasons = mask_secrets("; ".join(dict.fromkeys(failed))) or "waiting in the outbox"
    return reasons[:MAX_REASONS_CHARS] + ("..." if len(reasons) > MAX_REASONS_CHARS else "")


def raise_if_unheard(run: Run, context: Any, correlation: str, command: str, document: dict[str, Any], *,
                     resumable: bool = True, run_id: str = "") -> None:
    """After the run's work and its flush: raise while the run's digest, which no channel took, waits in the outbox
    (the report is kept in the state bucket first: FC records only the exception). ``resumable``: leave the record
    that lets a retry skip the work, under ``run_id`` (default the correlation); on_change needs none: its event
    leases make a retry a duplicate."""
    outbox = run.alerts.outbox
    waiting = run.alerts.waiting(correlation or command) if outbox is not None else []
    if outbox is None or not waiting:
        return
    channels = sorted({key.rsplit("/", 2)[-2] for key in waiting})
    report = outbox.save_report(correlation or command, {**document, "function": command})
    if resumable:
        outbox.mark_retry(invocation_keys(context, run_id or correlation), {
            "origin": correlation or command, "command": command, "channels": channels, "report": report,
            "epoch": run.lifecycle.ctx.clock()})
    first = bool(run.delivery and run.delivery.saved)
    log.error("alert not delivered: the invocation fails so that FC retries it and then calls tlsguard-failed",
              extra={"channels": channels, "report": report, "first_attempt": first})
    still = "" if first else "still "
    done = "" if first else " the run's work is done and was not repeated;"
    raise RetryableFailure(f"alert {still}not delivered to {', '.join(channels)} ({_reasons(run)}); saved in the "
                           f"outbox;{done} the run's report: {report}")


def drain_if_retry(run: Run, context: Any, correlation: str, command: str, *,
                   run_id: str = "") -> dict[str, Any] | None:
    """A retry of a sweep or batch whose work is done (its record is there, under ``run_id``, default the
    correlation): only re-deliver the outbox, and fail again while the run's unheard entries still wait. None on a
    first attempt (do the work)."""
    outbox = run.alerts.outbox
    if outbox is None:
        return None
    record = outbox.retry_record(invocation_keys(context, run_id or correlation))
    if record is None:
        return None
    run.delivery = run.alerts.drain(command=command, correlation_id=correlation)
    origin = str(record.get("origin") or correlation)
    log.info("retry of a finished run: outbox re-delivered", extra={"origin": origin})
    document = {"function": command, "retry": "outbox delivered", "correlation_id": correlation,
                "report": record.get("report"), "alerts": run.delivery.to_dict()}
    raise_if_unheard(run, context, origin, command, document, resumable=False)
    outbox.clear_retry(record)
    return document


def forget_retry(run: Run, request_id: str | None) -> None:
    """tlsguard-failed: the failed invocation will not be retried again; its record is no longer needed."""
    outbox = run.alerts.outbox
    if outbox is None or not request_id:
        return
    record = outbox.retry_record([f"request:{request_id}"])
    if record is not None:
        outbox.clear_retry(record)
