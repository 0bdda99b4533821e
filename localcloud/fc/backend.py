"""Function Compute's state and behaviour: registered functions, invocations (Sync and Async), retries, timers.

Functions are registered by module path and run in-process on a bounded worker pool. Sync invocations wait for
the handler; Async ones are queued and retried on failure up to ``max_async_retry_attempts`` with a short
exponential backoff, then recorded as failed and, if configured, handed to an on-failure destination function.
Every invocation is kept for :meth:`FcBackend.invocations` (control API ``GET /invocations``).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
import traceback
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from localcloud.errors import ServiceError
from localcloud.fc.runtime import (
    CREDENTIAL_SECONDS,
    DEFAULT_ASYNC_RETRIES,
    DEFAULT_MEMORY,
    DEFAULT_TIMEOUT,
    RUNTIMES,
    Credentials,
    EnvironmentLease,
    FunctionSpec,
    Handler,
    InvocationLog,
    TimerTrigger,
    build_context,
    handler_environment,
    load_handler,
)
from localcloud.fc.timers import Schedule, parse_schedule, timer_event
from localcloud.fc.workers import WorkPool

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud

INVOCATION_TYPES = ("Sync", "Async")
#: Handler threads (instances) across all functions; ``LOCALCLOUD_FC_WORKERS`` overrides it.
FC_WORKERS = 16
#: The STS session name python3.12 functions sharing a role use (see ``FcBackend._credentials_for``).
SHARED_SESSION = "fc-shared"
#: Seconds a Sync caller waits beyond the function timeout for a busy pool before answering a timeout.
SYNC_GRACE_SECONDS = 5.0


def new_fc_request_id() -> str:
    """A request id shaped like FC 3.0's: ``1-<8 hex seconds>-<24 hex>``."""
    return f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"


def function_not_found(name: str) -> ServiceError:
    # https://help.aliyun.com/zh/functioncompute/api-fc-2023-03-30-errorcodes (404 FunctionNotFound)
    return ServiceError(404, "FunctionNotFound", f"function '{name}' does not exist.")


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_result(value: Any) -> bytes:
    """What FC sends back for a handler's return value: bytes as they are, str as UTF-8, None as empty."""
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value, default=str).encode("utf-8")


_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))


def error_body(exc: BaseException) -> dict[str, Any]:
    """FC's Python error payload: errorMessage, errorType and a stack of [file, line, function, code] frames.

    https://www.alibabacloud.com/help/en/functioncompute/fc/error-handling-1-1
    """
    frames = [
        [f'File "{frame.filename}"', f"line {frame.lineno}", f"in {frame.name}", frame.line or ""]
        for frame in traceback.extract_tb(exc.__traceback__)
        if os.path.dirname(os.path.abspath(frame.filename)) != _RUNTIME_DIR
    ]
    return {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": frames}


@dataclass
class Invocation:
    """One invocation and its outcome."""

    id: str
    function: str
    account_id: str
    type: str
    source: str
    payload: bytes
    generation: int
    qualifier: str = "LATEST"
    async_task_id: str | None = None
    status: str = "queued"  # queued | running | succeeded | failed
    attempts: int = 0
    result: bytes | None = None
    error: dict[str, Any] | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    log_tail: bytes = b""
    destination: str | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "request_id": self.id,
            "function": self.function,
            "account_id": self.account_id,
            "type": self.type,
            "source": self.source,
            "qualifier": self.qualifier,
            "async_task_id": self.async_task_id,
            "status": self.status,
            "attempts": self.attempts,
            "payload": self.payload.decode("utf-8", "replace"),
            "result": None if self.result is None else self.result.decode("utf-8", "replace"),
            "error": self.error,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "destination": self.destination,
        }


@dataclass
class _TimerState:
    function: str
    trigger: TimerTrigger
    schedule: Schedule
    next_fire: datetime


class FcBackend:
    """Functions, invocations and timers for every account in the cloud."""

    def __init__(self, cloud: LocalCloud, max_workers: int | None = None) -> None:
        self.cloud = cloud
        #: First retry delay of a failed Async invocation (doubles per attempt, capped); FC waits far longer.
        self.async_retry_base_seconds = 0.05
        self.async_retry_max_seconds = 1.0
        #: How long past the function timeout a Sync caller waits (queueing included) before FunctionTimeout.
        self.sync_grace_seconds = SYNC_GRACE_SECONDS
        #: Whether enabled timer triggers fire on their schedule (``fire_timer`` always works).
        self.timers_enabled = True
        self._lock = threading.RLock()
        self._functions: dict[str, FunctionSpec] = {}
        self._handlers: dict[str, Handler] = {}
        self._credentials: dict[str, tuple[Credentials, float]] = {}
        self._invocations: list[Invocation] = []
        self._by_id: dict[str, Invocation] = {}
        workers = max_workers or int(os.environ.get("LOCALCLOUD_FC_WORKERS") or FC_WORKERS)
        self._pool = WorkPool("localcloud-fc", workers)
        self._environment = EnvironmentLease()
        #: When True, handlers share the process only with handlers whose variables are exactly the same
        #: (no function ever sees another's variables, at the price of serialising different functions).
        self.isolate_environment = False
        self._timers: dict[tuple[str, str], _TimerState] = {}
        #: Triggers other than timers (EventBridge, HTTP), as ListTriggers shows them: function -> name -> trigger.
        self._other_triggers: dict[str, dict[str, dict[str, Any]]] = {}
        self._timer_wake = threading.Condition()
        self._timer_thread: threading.Thread | None = None
        self._timer_stop = False

    # -- lifecycle ------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget functions and invocations and drop queued work (handlers already running finish unseen)."""
        self._stop_timer_thread()
        self._pool.clear()
        self._pool.reopen()
        with self._lock:
            self._functions.clear()
            self._handlers.clear()
            self._credentials.clear()
            self._invocations.clear()
            self._by_id.clear()
            self._timers.clear()
            self._other_triggers.clear()

    def stop(self) -> None:
        """Join every thread this backend started."""
        self._stop_timer_thread()
        self._pool.stop()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no invocation is queued, delayed or running (tests and the demo)."""
        return self._pool.wait_idle(timeout)

    # -- functions ------------------------------------------------------------------------------------------
    def seed(self, items: list[dict[str, Any]]) -> None:
        """Register the seed's ``functions:`` section (format in ``docs/emulated/fc.md``)."""
        from localcloud.seed import SeedError

        specs = []
        for item in items:
            try:
                specs.append(self._spec_from_seed(item))
            except (KeyError, TypeError, ValueError) as exc:
                raise SeedError(f"functions[{item.get('name', '?') if isinstance(item, dict) else item!r}]: "
                                f"{exc}") from None
        for spec in specs:
            self.register(spec)

    def _spec_from_seed(self, item: dict[str, Any]) -> FunctionSpec:
        if not isinstance(item, dict):
            raise TypeError("each function is a mapping")
        name = str(item["name"])
        handler = str(item["handler"])
        module, _, attribute = handler.rpartition(".")
        if not module or not attribute:
            raise ValueError(f"handler {handler!r} must be a dotted module path plus function name")
        runtime = str(item.get("runtime", "python3.10"))
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
        async_config: dict[str, Any] = item.get("async_config") or {}
        retries = int(str(async_config.get("max_async_retry_attempts",
                                            item.get("max_async_retry_attempts", DEFAULT_ASYNC_RETRIES))))
        if not 0 <= retries <= 8:
            # localcloud bound (UNCONFIRMED against FC's PutAsyncInvokeConfig range): 0..8 retries.
            raise ValueError("max_async_retry_attempts must be between 0 and 8")
        triggers = []
        for trigger in item.get("triggers") or []:
            kind = str(trigger.get("type", "timer"))
            if kind != "timer":
                raise ValueError(f"trigger type {kind!r} is not emulated (timer only; EventBridge rules are "
                                 "seeded under event_rules)")
            spec = TimerTrigger(str(trigger["name"]), str(trigger["cron"]), str(trigger.get("payload", "")),
                                bool(trigger.get("enable", trigger.get("enabled", True))))
            parse_schedule(spec.cron)
            triggers.append(spec)
        environment = item.get("environment") or {}
        if not isinstance(environment, dict):
            raise TypeError("environment is a mapping of names to strings")
        return FunctionSpec(
            name=name,
            handler=handler,
            runtime=runtime,
            account_id=str(item.get("account") or self.cloud.default_account_id),
            region=str(item.get("region") or self.cloud.region),
            role=str(item["role"]) if item.get("role") else None,
            environment={str(k): str(v) for k, v in environment.items()},
            timeout=float(item.get("timeout", DEFAULT_TIMEOUT)),
            memory=int(item.get("memory", DEFAULT_MEMORY)),
            max_async_retry_attempts=retries,
            on_failure=str(async_config["on_failure"]) if async_config.get("on_failure") else None,
            on_success=str(async_config["on_success"]) if async_config.get("on_success") else None,
            triggers=tuple(triggers),
            description=str(item.get("description", "")),
        )

    def register(self, spec: FunctionSpec) -> None:
        """Create or replace a function (its cached handler and credentials are dropped)."""
        spec = replace(spec, created_at=spec.created_at or self.cloud.clock.time())
        with self._lock:
            self._functions[spec.name] = spec
            self._handlers.pop(spec.name, None)
            self._credentials.pop(f"function:{spec.name}", None)
            for key in [key for key in self._timers if key[0] == spec.name]:
                del self._timers[key]
            now = self.cloud.clock.now()
            for trigger in spec.triggers:
                if trigger.enabled:
                    schedule = parse_schedule(trigger.cron)
                    self._timers[(spec.name, trigger.name)] = _TimerState(spec.name, trigger, schedule,
                                                                          schedule.next_after(now))
            has_timers = bool(self._timers)
        if has_timers and self.timers_enabled:
            self._start_timer_thread()
        with self._timer_wake:
            self._timer_wake.notify_all()

    def remove_function(self, name: str) -> bool:
        """Delete a function with its triggers (FC 3.0 DeleteFunction's effect); False when there was none."""
        with self._lock:
            spec = self._functions.pop(name, None)
            self._handlers.pop(name, None)
            self._other_triggers.pop(name, None)
            for key in [key for key in self._timers if key[0] == name]:
                del self._timers[key]
        return spec is not None

    def add_trigger(self, function: str, name: str, trigger_type: str, config: dict[str, Any],
                    description: str = "") -> None:
        """Record a non-timer trigger (``eventbridge``, ``http``) for ListTriggers; what it does is wired
        elsewhere (an EventBridge rule on ``cloud.events``, the HTTP trigger front of :mod:`localcloud.sdeploy`)."""
        spec = self.function(function)
        with self._lock:
            self._other_triggers.setdefault(spec.name, {})[name] = {
                "triggerName": name, "triggerType": trigger_type, "config": dict(config),
                "description": description, "createdTime": self.cloud.clock.time()}

    def remove_trigger(self, function: str, name: str) -> bool:
        with self._lock:
            return self._other_triggers.get(function, {}).pop(name, None) is not None

    def triggers(self, function: str) -> list[dict[str, Any]]:
        """Every trigger of ``function``: its timers, then the others, as ``{triggerName, triggerType, config,
        description, createdTime}``."""
        spec = self.function(function)
        found: list[dict[str, Any]] = [
            {"triggerName": t.name, "triggerType": "timer", "description": "", "createdTime": spec.created_at,
             "config": {"cronExpression": t.cron, "enable": t.enabled, "payload": t.payload}}
            for t in spec.triggers]
        with self._lock:
            found.extend(dict(t) for t in self._other_triggers.get(spec.name, {}).values())
        return found

    def function(self, name: str, account_id: str | None = None) -> FunctionSpec:
        """The function ``name`` (as seen from ``account_id`` when given); FunctionNotFound otherwise."""
        with self._lock:
            spec = self._functions.get(name)
        if spec is None or (account_id is not None and spec.account_id != account_id):
            raise function_not_found(name)
        return spec

    def functions(self, account_id: str | None = None) -> list[FunctionSpec]:
        with self._lock:
            specs = list(self._functions.values())
        return sorted((s for s in specs if account_id is None or s.account_id == account_id), key=lambda s: s.name)

    def snapshot(self) -> dict[str, Any]:
        return {
            "functions": [
                {"name": s.name, "handler": s.handler, "runtime": s.runtime, "account_id": s.account_id,
                 "role": s.role, "timeout": s.timeout, "memory": s.memory,
                 "max_async_retry_attempts": s.max_async_retry_attempts, "on_failure": s.on_failure,
                 "triggers": [{"name": t.name, "cron": t.cron, "enabled": t.enabled} for t in s.triggers]}
                for s in self.functions()
            ],
            "invocations": len(self._invocations),
            "pending": self._pool.pending(),
        }

    # -- invoking -------------------------------------------------------------------------------------------
    def invocations(self) -> list[dict[str, Any]]:
        """Every invocation so far, oldest first, with its status, attempts and result or error."""
        with self._lock:
            return [invocation.as_dict() for invocation in self._invocations]

    def invocation(self, invocation_id: str) -> Invocation | None:
        with self._lock:
            return self._by_id.get(invocation_id)

    def invoke(self, function_name: str, payload: bytes, *, invocation_type: str = "Sync", source: str = "api",
               qualifier: str = "LATEST", async_task_id: str | None = None, account_id: str | None = None,
               request_id: str | None = None) -> dict[str, Any]:
        """Invoke a function in-process (the event bus, timers, the control API); returns the invocation record.

        Sync waits for the handler; Async returns at once with status ``queued``.
        """
        return self.start_invocation(function_name, payload, invocation_type=invocation_type, source=source,
                                     qualifier=qualifier, async_task_id=async_task_id, account_id=account_id,
                                     request_id=request_id).as_dict()

    def start_invocation(self, function_name: str, payload: bytes, *, invocation_type: str = "Sync",
                         source: str = "api", qualifier: str = "LATEST", async_task_id: str | None = None,
                         account_id: str | None = None, request_id: str | None = None) -> Invocation:
        """Like :meth:`invoke` but returns the live :class:`Invocation` (the HTTP service reads its result)."""
        if invocation_type not in INVOCATION_TYPES:
            raise ServiceError(400, "InvalidArgument",
                               f"invalid invocation type '{invocation_type}', expected Sync or Async")
        spec = self.function(function_name, account_id)
        if qualifier not in ("LATEST", ""):
            raise ServiceError(404, "VersionNotFound",
                               f"version or alias '{qualifier}' of function '{function_name}' does not exist")
        invocation = Invocation(
            id=request_id or new_fc_request_id(),
            function=spec.name,
            account_id=spec.account_id,
            type=invocation_type,
            source=source,
            payload=bytes(payload),
            generation=self._pool.generation,
            qualifier=qualifier or "LATEST",
            async_task_id=async_task_id,
            created_at=self.cloud.clock.time(),
        )
        with self._lock:
            self._invocations.append(invocation)
            self._by_id[invocation.id] = invocation
        if invocation_type == "Async":
            self._pool.submit(lambda: self._run_async(invocation))
            return invocation
        future = self._pool.submit(lambda: self._attempt(invocation))
        try:
            future.result(timeout=spec.timeout + self.sync_grace_seconds)
        except FutureTimeout:
            future.cancel()  # still queued behind busy workers: never run it after answering the caller
            self._finish(invocation, "failed", error={
                "errorMessage": f"Function timed out after {spec.timeout:g} seconds",
                "errorType": "FunctionTimeout", "stackTrace": []})
        except Exception as exc:  # the pool was cleared or stopped under the caller
            self._finish(invocation, "failed", error=error_body(exc))
        return invocation

    def _attempt(self, invocation: Invocation) -> bool:
        """Run the handler once; records the outcome; True when it returned normally."""
        if invocation.generation != self._pool.generation:
            return False
        try:
            spec = self.function(invocation.function)
        except ServiceError as exc:
            self._finish(invocation, "failed", error={"errorMessage": exc.message, "errorType": exc.code,
                                                      "stackTrace": []})
            return False
        with self._lock:
            invocation.attempts += 1
        log = InvocationLog(invocation.id)
        credentials = self._credentials_for(spec)
        context = build_context(spec, invocation.id, credentials, log)
        ok = True
        result: bytes | None = None
        error: dict[str, Any] | None = None
        try:
            with self._environment.hold(handler_environment(spec, credentials), timeout=spec.timeout + 5,
                                        exact=self.isolate_environment):
                with self._lock:
                    invocation.status = "running"
                    invocation.started_at = self.cloud.clock.time()
                handler = self._handler(spec)
                result = encode_result(handler(invocation.payload, context))
        except (Exception, SystemExit) as exc:  # a handler's failure is the invocation's outcome
            ok = False
            error = error_body(exc)
        finally:
            context.close()
        invocation.log_tail = log.tail()
        if invocation.type == "Sync" or ok:
            self._finish(invocation, "succeeded" if ok else "failed", result=result, error=error)
        else:
            with self._lock:
                invocation.error = error
                invocation.finished_at = self.cloud.clock.time()
        return ok

    def _run_async(self, invocation: Invocation) -> None:
        """One Async attempt; on failure schedule the next one or give up and call the on-failure destination."""
        if invocation.generation != self._pool.generation:
            return
        ok = self._attempt(invocation)
        try:
            spec = self.function(invocation.function)
        except ServiceError:
            return
        if ok:
            if spec.on_success:
                self._send_to_destination(spec, spec.on_success, invocation, "Success")
            return
        if invocation.generation != self._pool.generation:
            return
        if invocation.attempts <= spec.max_async_retry_attempts:
            delay = min(self.async_retry_base_seconds * 2 ** (invocation.attempts - 1), self.async_retry_max_seconds)
            with self._lock:
                invocation.status = "queued"
            self._pool.submit(lambda: self._run_async(invocation), delay=delay)
            return
        self._finish(invocation, "failed", error=invocation.error)
        if spec.on_failure:
            self._send_to_destination(spec, spec.on_failure, invocation, "UnhandledInvocationError")

    def _send_to_destination(self, spec: FunctionSpec, target: str, invocation: Invocation, condition: str) -> None:
        """Deliver an Async outcome to a destination function (FC "result callback").

        The fields are those of https://help.aliyun.com/zh/functioncompute/user-guide/result-callback ("异步调用目标的
        事件内容"); the page gives ``condition`` only as "the invocation error code", so its value is localcloud's.
        """
        event = {
            "timestamp": int(self.cloud.clock.time() * 1000),
            "requestContext": {
                "requestId": invocation.id,
                "functionArn": spec.arn,
                "condition": condition,
                "approximateInvokeCount": invocation.attempts,
            },
            "requestPayload": invocation.payload.decode("utf-8", "replace"),
            "responseContext": {"statusCode": 200,
                                "functionError": "" if condition == "Success" else "UnhandledInvocationError"},
            "responsePayload": (invocation.result or b"").decode("utf-8", "replace") if condition == "Success"
            else json.dumps(invocation.error),
        }
        try:
            record = self.start_invocation(target, json.dumps(event).encode(), invocation_type="Async",
                                           source=f"destination:{spec.name}", account_id=spec.account_id)
        except ServiceError as exc:
            with self._lock:
                invocation.destination = f"{target}: {exc.code}"
            return
        with self._lock:
            invocation.destination = record.id

    def _finish(self, invocation: Invocation, status: str, *, result: bytes | None = None,
                error: dict[str, Any] | None = None) -> None:
        with self._lock:
            if invocation.done.is_set():
                return
            invocation.status = status
            invocation.result = result
            invocation.error = error
            invocation.finished_at = self.cloud.clock.time()
            invocation.done.set()

    def _handler(self, spec: FunctionSpec) -> Handler:
        with self._lock:
            handler = self._handlers.get(spec.name)
        if handler is None:
            handler = load_handler(spec)
            with self._lock:
                self._handlers[spec.name] = handler
        return handler

    def _credentials_for(self, spec: FunctionSpec) -> Credentials:
        """The role's STS credentials, minted once and renewed when they near expiry.

        python3.10 gets a session per function (``<role>:<function>`` in ActionTrail). python3.12 reads them from
        the process-wide environment, so every python3.12 function of an account sharing a role shares one
        session (``<role>:fc-shared``): that keeps their environments identical, so they can run concurrently.
        """
        if not spec.role:
            return Credentials(None, None, None)
        shared = spec.runtime == "python3.12"
        cache_key = f"role:{spec.account_id}:{spec.role}" if shared else f"function:{spec.name}"
        session = SHARED_SESSION if shared else spec.name
        now = self.cloud.clock.time()
        with self._lock:
            cached = self._credentials.get(cache_key)
            if cached is not None and cached[1] - now > 300:
                return cached[0]
            principal = self.cloud.iam.assume_role(spec.account_id, spec.role, session, now, CREDENTIAL_SECONDS)
            credentials = Credentials(principal.access_key_id, principal.access_key_secret,
                                      principal.security_token)
            self._credentials[cache_key] = (credentials, principal.expires_at or now + CREDENTIAL_SECONDS)
            return credentials

    # -- timers ---------------------------------------------------------------------------------------------
    def fire_timer(self, function: str, trigger: str) -> dict[str, Any]:
        """Fire a timer trigger now (control API ``POST /timers/fire``); returns the Async invocation record."""
        spec = self.function(function)
        for candidate in spec.triggers:
            if candidate.name == trigger:
                return self._fire(spec.name, candidate, self.cloud.clock.now()).as_dict()
        raise ServiceError(404, "TriggerNotFound", f"trigger '{trigger}' of function '{function}' does not exist.")

    def _fire(self, function: str, trigger: TimerTrigger, moment: datetime) -> Invocation:
        payload = timer_event(trigger.name, trigger.payload, moment)
        return self.start_invocation(function, payload, invocation_type="Async", source=f"timer:{trigger.name}")

    def _start_timer_thread(self) -> None:
        with self._timer_wake:
            if self._timer_thread is not None and self._timer_thread.is_alive():
                return
            self._timer_stop = False
            self._timer_thread = threading.Thread(target=self._timer_loop, name="localcloud-fc-timers", daemon=True)
            self._timer_thread.start()

    def _stop_timer_thread(self) -> None:
        with self._timer_wake:
            thread, self._timer_thread = self._timer_thread, None
            self._timer_stop = True
            self._timer_wake.notify_all()
        if thread is not None:
            thread.join(5.0)

    def _timer_loop(self) -> None:
        """Fire due timers; re-check at least every second so clock moves are noticed."""
        while not self._timer_stopping():
            now = self.cloud.clock.now()
            due: list[_TimerState] = []
            with self._lock:
                states = list(self._timers.values())
            for state in states if self.timers_enabled else []:
                if state.next_fire <= now:
                    due.append(state)
                    state.next_fire = state.schedule.next_after(now)
            for state in due:
                try:
                    self._fire(state.function, state.trigger, now)
                except (ServiceError, RuntimeError):
                    continue
            wait = min((s.next_fire for s in states), default=None)
            seconds = 1.0 if wait is None else min(max((wait - self.cloud.clock.now()).total_seconds(), 0.01), 1.0)
            with self._timer_wake:
                if not self._timer_stop:
                    self._timer_wake.wait(seconds)

    def _timer_stopping(self) -> bool:
        with self._timer_wake:
            return self._timer_stop
