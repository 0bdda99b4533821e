"""A fleet sweep sharded over worker processes: the CLI's way to use more than one core.

One Python process runs one target check at a time on the CPU (the GIL): at fleet scale the SDK's per-call CPU
and the TLS handshake per bucket host, not the API latency, set the pace. The functions scale by fanning batches
out to FC instances; the CLI does the same on one machine: the parent streams the discovered targets into a
queue, each of ``processes`` workers runs the ordinary :func:`tlsguard.runs.sweep` over what it pulls with its own
bounded thread pool (``concurrency`` split between the workers) and its share of every rate limit (each limit
divided by ``processes``, so the fleet-wide rate is unchanged), and sends its results back; the parent yields
them as they arrive, for one report. Workers are started with ``spawn`` (no fork of a threaded process) and build
their engine from the same policy file and endpoints as the parent would.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from tlsguard.errors import CloudError, TlsguardError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from tlsguard.model import Mode, TargetRef, TargetResult

T = TypeVar("T")
_DONE = "done"
_ERROR = "error"
_RESULT = "result"


def _worker(policy_path: str, localcloud: str | None, mode: Mode | None, apply: bool, concurrency: int,
            rate_share: float, refs: Any, results: Any) -> None:
    """One worker process: a lifecycle over the targets it pulls, every result put on ``results``, then ``_DONE``."""
    try:
        from tlsguard.lifecycle import Lifecycle
        from tlsguard.model import Trigger
        from tlsguard.policy.loader import load_policy
        from tlsguard.runs import sweep
        from tlsguard.wiring import build, context

        wiring = build(load_policy(policy_path), localcloud=localcloud, concurrency=concurrency,
                       rate_share=rate_share)
        lifecycle = Lifecycle(context(wiring, apply=apply, mode=mode))
        lifecycle.ctx.open_targets = set()  # the parent reconciled open intents before it started the workers
        # Pending live verifications are listed once per worker (as start_run lists them for a one-process run),
        # so a target whose write is still propagating is reported pending here too, not compliant.
        state = lifecycle.ctx.state
        lifecycle.ctx.pending_targets = {p.target.key for p in state.pending.all()} if state is not None else set()

        def pulled() -> Iterator[tuple[TargetRef, dict[str, Any]]]:
            while (item := refs.get()) is not None:
                yield item

        for result in sweep(lifecycle, pulled(), concurrency=concurrency, trigger=Trigger("cli", actor="tlsguard cli")):
            results.put((_RESULT, result))
    except BaseException as exc:  # reported to the parent, which fails the run with it
        results.put((_ERROR, f"{type(exc).__name__}: {exc}"))
    finally:
        results.put((_DONE, None))


def split_concurrency(concurrency: int, processes: int) -> int:
    """Threads per worker so that all workers together keep at most ``concurrency`` buckets in flight."""
    return max(1, concurrency // max(1, processes))


def sweep_processes(policy_path: str, listing: Iterable[tuple[TargetRef, dict[str, Any]]], *, processes: int,
                    concurrency: int, apply: bool, localcloud: str | None = None,
                    mode: Mode | None = None) -> Iterator[TargetResult]:
    """Check every target of ``listing`` in ``processes`` worker processes; yields results as they arrive.

    A listing failure stops the listing and is raised after the workers finish what they were given, as in
    :func:`tlsguard.runs.sweep`; a worker that dies raises :class:`TlsguardError` once the others are done.
    """
    context = multiprocessing.get_context("spawn")
    refs: Any = context.Queue(maxsize=4 * concurrency)  # bounded: the listing never runs far ahead
    results: Any = context.Queue()
    per_worker = split_concurrency(concurrency, processes)
    workers = [context.Process(target=_worker, name=f"tlsguard-sweep-{i}", daemon=True,
                               args=(policy_path, localcloud, mode, apply, per_worker, 1.0 / processes, refs, results))
               for i in range(processes)]
    for worker in workers:
        worker.start()
    listing_error: list[BaseException] = []
    stop = threading.Event()

    def feed() -> None:
        try:
            for ref in listing:
                while not stop.is_set():
                    try:
                        refs.put(ref, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except CloudError as exc:
            listing_error.append(exc)
        finally:
            sentinels = len(workers)
            while sentinels and not stop.is_set():
                try:
                    refs.put(None, timeout=0.5)
                    sentinels -= 1
                except queue.Full:
                    continue

    feeder = threading.Thread(target=feed, name="tlsguard-listing", daemon=True)
    feeder.start()
    errors: list[str] = []
    running = len(workers)
    try:
        while running:
            try:
                kind, payload = results.get(timeout=1.0)
            except queue.Empty:
                if not any(w.is_alive() for w in workers):  # died without saying so (killed, crashed)
                    errors.append("a sweep worker process exited unexpectedly")
                    break
                continue
            if kind == _RESULT:
                yield payload
            elif kind == _ERROR:
                errors.append(str(payload))
            else:
                running -= 1
    finally:
        stop.set()
        for worker in workers:
            if running:  # abandoned early (consumer stopped, a worker died): nothing left worth waiting for
                worker.terminate()
            worker.join(timeout=30)
        feeder.join(timeout=5)
    if errors:
        raise TlsguardError(f"sweep worker failed: {'; '.join(errors)}")
    if listing_error:
        raise listing_error[0]


_io_pool: ThreadPoolExecutor | None = None
_io_pool_lock = threading.Lock()


def io_pool() -> ThreadPoolExecutor:
    """One process-wide pool for independent round trips of a single target (its facet reads, its state reads).

    A sweep reads each target's facets one after the other on its own worker thread (the sweep is already
    concurrent across targets); a single-target run (an event, a webhook) overlaps them here.
    """
    global _io_pool
    with _io_pool_lock:
        if _io_pool is None:
            _io_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="tlsguard-io")
        return _io_pool


_nested: ThreadPoolExecutor | None = None


def _nested_pool() -> ThreadPoolExecutor:
    global _nested
    with _io_pool_lock:
        if _nested is None:
            _nested = ThreadPoolExecutor(max_workers=8, thread_name_prefix="tlsguard-nested")
        return _nested


def overlapped(calls: list[Callable[[], T]]) -> list[T]:
    """Run independent round trips at once: all but the first on :func:`io_pool`, the first on this thread.

    Returns their results in order; the first error is raised once all have finished. Uses shared pools rather
    than a pool per call (starting and joining threads cost more CPU than the calls themselves). A task of
    :func:`io_pool` (a state read overlapped with a target's facet reads) overlaps its own calls on a second pool
    whose tasks never wait for anything pooled, so no task ever waits for tasks queued behind it.
    """
    name = threading.current_thread().name
    if len(calls) < 2 or name.startswith("tlsguard-nested"):
        return [call() for call in calls]
    pool = _nested_pool() if name.startswith("tlsguard-io") else io_pool()
    futures = [pool.submit(call) for call in calls[1:]]
    results: list[Any] = []
    error: BaseException | None = None
    try:
        results.append(calls[0]())
    except BaseException as exc:  # still wait for the others: none is left running unobserved
        error = exc
    for future in futures:
        try:
            results.append(future.result())
        except BaseException as exc:
            error = error or exc
    if error is not None:
        raise error
    return results
