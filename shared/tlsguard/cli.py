"""The ``tlsguard`` command: one click group over the one lifecycle.

``plan`` / ``apply`` (every kind of target, or ``--kind`` / ``--target``), ``verify`` (due live verifications),
``doctor`` (is the deployment able to do its job),
``journal list`` / ``journal show``, ``undo JOURNAL_ID``, ``certs`` (the certificate view of the same run), and the
lazily loaded ``probe``. Every command takes ``--localcloud ENDPOINTS_FILE`` (or TLSGUARD_LOCALCLOUD) to target
localcloud; without it, real endpoints and the standard Alibaba Cloud credential sources are used.
Exit codes: 0 compliant, pending or remediated; 2 drift left, or the run's alert digest reached no channel (it
waits in the outbox); 1 error. No command prints a traceback.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sys
from typing import TYPE_CHECKING, Any

import click

from tlsguard import settings
from tlsguard.errors import ConfigError, TlsguardError
from tlsguard.log import get_logger, mask_secrets
from tlsguard.report import EXIT_ERROR, EXIT_OK, RunReport

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from tlsguard.model import TargetResult
    from tlsguard.wiring import Wiring

MODES = ["enforce", "alert", "dry-run"]
KINDS = ["oss-bucket", "oss-cname", "cdn-domain"]


def _policy_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--localcloud", envvar=settings.LOCALCLOUD, type=click.Path(dir_okay=False), default=None,
                      help="localcloud endpoints JSON: run against localcloud. Env: TLSGUARD_LOCALCLOUD.")(fn)
    return click.option("--policy", "policy_path", envvar=settings.POLICY, required=True,
                        type=click.Path(dir_okay=False), help="Policy file (tlsguard.yaml). Env: TLSGUARD_POLICY.")(fn)


def _run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--json", "as_json", is_flag=True, help="Print the versioned JSON report on stdout."),
        click.option("--concurrency", type=click.IntRange(1, 256), envvar=settings.CONCURRENCY,
                     default=settings.DEFAULT_CONCURRENCY, show_default=True, help="Targets checked in parallel."),
        click.option("--target", "names", multiple=True, metavar="NAME",
                     help="Only this target (repeatable): a bucket, a domain, or KIND:NAME."),
        click.option("--bucket", "buckets", multiple=True, help="Only this bucket (repeatable)."),
        click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS),
                     help="Only targets of this kind (repeatable; default: every kind)."),
        click.option("--processes", type=click.IntRange(1, 64), default=1, show_default=True,
                     help="Worker processes sharing the sweep (one core each); --concurrency and the rate "
                          "limits are split between them."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return _policy_option(fn)


def _emit(report: RunReport, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=False))
    else:
        click.echo(report.human())


def _wire(policy_path: str, localcloud: str | None, concurrency: int) -> Wiring:
    from tlsguard.policy.loader import load_policy
    from tlsguard.wiring import build

    return build(load_policy(policy_path), localcloud=localcloud, concurrency=concurrency)


def run_command(command: str, policy_path: str, localcloud: str | None, *, apply: bool, mode: str | None,
                names: Iterable[str] = (), kinds: Iterable[str] = (), concurrency: int = settings.DEFAULT_CONCURRENCY,
                processes: int = 1, keep_compliant: bool = True) -> RunReport:
    """plan / apply (and the certs view): discover or resolve targets, run the lifecycle, one digest, a report."""
    from tlsguard import runs, verify_live
    from tlsguard.lifecycle import Lifecycle
    from tlsguard.model import Mode, TargetKind, Trigger
    from tlsguard.wiring import alert_path, context

    wiring = _wire(policy_path, localcloud, concurrency)
    mode_override = Mode(mode) if mode else None
    effective_mode = (mode_override or wiring.policy.mode).value
    wanted = list(names)
    ctx = context(wiring, apply=apply, mode=mode_override, parallel_reads=0 < len(wanted) <= 4)
    lifecycle = Lifecycle(ctx)
    report = RunReport(command, effective_mode, policy_path, keep_compliant=keep_compliant)
    alerts = alert_path(wiring, ctx.clock) if apply else None
    if apply:
        for verification in verify_live.run_due(ctx):
            report.add_verification(verification)
            if alerts is not None:
                alerts.observe_verification(verification)
    runs.start_run(lifecycle)
    kind_set = frozenset(TargetKind(k) for k in kinds) or runs.ALL_KINDS
    discovery = runs.Discovery()
    if wanted:
        found, missing = runs.named_targets(ctx, wanted, report=discovery)
        targets: Iterable[Any] = [(t, p) for t, p in found if t.kind in kind_set]
        report.errors.extend(f"target {name} not found" for name in missing)
    else:
        targets = runs.discover(ctx, kinds=kind_set, concurrency=concurrency, report=discovery)
    progress = _progress(command) if sys.stderr.isatty() else None
    trigger = Trigger("cli", actor="tlsguard cli")
    if processes > 1:
        from tlsguard.parallel import sweep_processes

        results: Iterable[TargetResult] = sweep_processes(
            policy_path, targets, processes=processes, concurrency=concurrency, apply=apply, localcloud=localcloud,
            mode=mode_override)
    else:
        results = runs.sweep(lifecycle, targets, concurrency=concurrency, trigger=trigger)
    try:
        for result in results:
            report.add(result)
            if alerts is not None:
                alerts.observe(result)
            if progress is not None:
                progress.update(1)
    except TlsguardError as exc:
        report.errors.append(f"run aborted: {exc}")
    finally:
        if progress is not None:
            progress.close()
    report.errors.extend(discovery.errors)
    if alerts is not None:
        report.alerts = alerts.flush(command=command, mode=effective_mode).to_dict()
    report.finish()
    summary = report.to_dict()["summary"]
    get_logger("tlsguard.cli").info("run finished", extra={
        "command": command, "mode": effective_mode, **summary, "duration_s": round(report.duration_seconds, 3),
        "exit_code": report.exit_code})
    return report


def _progress(command: str) -> Any:
    from tqdm import tqdm

    return tqdm(desc=f"tlsguard {command}", unit="target", file=sys.stderr, leave=False)


#: Commands that live in their own packages, loaded only when used (cold start; an optional module that fails to
#: import must never break plan/apply).
_LAZY_COMMANDS = {"probe": "tlsguard.probe.cli", "certs": "tlsguard.certs.cli"}


class _Group(click.Group):
    """The command group; loads ``probe`` and ``certs`` lazily from their packages."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = _LAZY_COMMANDS.get(cmd_name)
        if module_name is not None and cmd_name not in self.commands:
            try:
                command = getattr(importlib.import_module(module_name), cmd_name)
            except Exception as exc:
                return _Unavailable(cmd_name, f"cannot import {module_name} ({type(exc).__name__}: {exc})")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


def guarded(run: Callable[[], int]) -> None:
    """Run a command body; a TlsguardError becomes a one-line message and exit 1 (never a traceback)."""
    try:
        code = run()
    except TlsguardError as exc:
        click.echo(f"tlsguard: error: {exc}", err=True)
        code = EXIT_ERROR
    except Exception as exc:  # a bug: one line, and the details in the debug log
        get_logger("tlsguard.cli").debug("unexpected error", exc_info=True)
        click.echo(mask_secrets(f"tlsguard: internal error: {type(exc).__name__}: {exc}"), err=True)
        code = EXIT_ERROR
    sys.exit(code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tlsguard", prog_name="tlsguard")
def cli() -> None:
    """Keep OSS buckets, custom domains and CDN domains on their declared TLS posture."""


def _run_command(name: str, *, apply: bool, summary: str, mode_help: str) -> click.Command:
    """``plan`` and ``apply``: the same options and the same run; only whether writes are allowed differs."""

    @_run_options
    @click.option("--mode", type=click.Choice(MODES), envvar=settings.MODE, default=None, help=mode_help)
    def command(policy_path: str, localcloud: str | None, as_json: bool, concurrency: int, names: tuple[str, ...],
                buckets: tuple[str, ...], kinds: tuple[str, ...], processes: int, mode: str | None) -> None:
        def run() -> int:
            report = run_command(name, policy_path, localcloud, apply=apply, mode=mode, names=[*names, *buckets],
                                 kinds=kinds, concurrency=concurrency, processes=processes)
            _emit(report, as_json)
            return report.exit_code

        guarded(run)

    command.__doc__ = summary
    return click.command(name)(command)


plan = _run_command("plan", apply=False, summary="Show every drift and the exact writes apply would make. Writes "
                    "nothing.", mode_help="Shown in the report; plan never writes whatever the mode.")
apply = _run_command("apply", apply=True, summary="Put drifted targets back on the policy (enforce mode), journaling "
                     "every write before it is made.",
                     mode_help="Override the policy's mode (enforce writes; alert and dry-run only report).")
cli.add_command(plan)
cli.add_command(apply)


@cli.command()
@_policy_option
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report.")
def verify(policy_path: str, localcloud: str | None, as_json: bool) -> None:
    """Probe every pending live verification whose propagation window has passed."""

    def run() -> int:
        from tlsguard import verify_live
        from tlsguard.wiring import alert_path, context

        wiring = _wire(policy_path, localcloud, 16)
        ctx = context(wiring, apply=True)
        report = RunReport("verify", wiring.policy.mode.value, policy_path)
        alerts = alert_path(wiring, ctx.clock)
        for verification in verify_live.run_due(ctx):
            report.add_verification(verification)
            alerts.observe_verification(verification)
        report.alerts = alerts.flush(command="verify", mode=wiring.policy.mode.value).to_dict()
        _emit(report.finish(), as_json)
        return report.exit_code

    guarded(run)


@cli.command()
@_policy_option
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("--region", envvar=settings.REGION, default=None, help="Region of the deployment (real cloud).")
@click.option("--lookback-days", type=click.IntRange(1, 30), default=7, show_default=True,
              help="How far back ActionTrail events are looked up.")
def doctor(policy_path: str, localcloud: str | None, as_json: bool, region: str | None, lookback_days: int) -> None:
    """Check the deployment: credentials, RAM actions, the state bucket, EventBridge rules, ActionTrail event
    names, the functions and the event-path heartbeat. One line per check; exit 1 when one fails."""

    def run() -> int:
        from tlsguard import doctor as doctor_module
        from tlsguard.policy.loader import load_policy

        policy = load_policy(policy_path)
        report = doctor_module.run(doctor_module.build_ports(policy, localcloud, region), policy,
                                   lookback_days=lookback_days)
        click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.human())
        return report.exit_code

    guarded(run)


@cli.command()
@click.argument("journal_id")
@_policy_option
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report.")
def undo(journal_id: str, policy_path: str, localcloud: str | None, as_json: bool) -> None:
    """Restore the before-state recorded in journal entry JOURNAL_ID (any kind of target), action by action."""

    def run() -> int:
        from tlsguard.lifecycle import Lifecycle
        from tlsguard.wiring import alert_path, context

        wiring = _wire(policy_path, localcloud, 1)
        ctx = context(wiring, apply=True, parallel_reads=True)
        report = RunReport("undo", wiring.policy.mode.value, policy_path)
        alerts = alert_path(wiring, ctx.clock)
        result = Lifecycle(ctx).undo(journal_id)
        report.add(result)
        alerts.observe(result)
        report.alerts = alerts.flush(command="undo", mode=wiring.policy.mode.value).to_dict()
        _emit(report.finish(), as_json)
        return report.exit_code

    guarded(run)


@cli.group()
def journal() -> None:
    """Read the journal: every write tlsguard made (or meant to make), with its before and after."""


def _since(value: str | None) -> float | None:
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--since wants a date or time (2026-12-01 or 2026-12-01T08:00), not {value!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)).timestamp()


@journal.command("list")
@_policy_option
@click.option("--target", "target_name", default="", help="Only entries of this target (a bucket or a domain).")
@click.option("--since", default=None, help="Only entries from this date or time (UTC unless it says).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def journal_list(policy_path: str, localcloud: str | None, target_name: str, since: str | None,
                 as_json: bool) -> None:
    """List journal entries, oldest first; an entry without an outcome is shown as incomplete."""

    def run() -> int:
        state = _state(policy_path, localcloud)
        entries = list(state.journal.iterate(target_name=target_name, since=_since(since)))
        if as_json:
            click.echo(json.dumps([_entry_summary(e) for e in entries], indent=2))
            return EXIT_OK
        for entry in entries:
            item = _entry_summary(entry)
            calls = ", ".join(item["calls"]) or "-"
            click.echo(f"{item['journal_id']}  {item['status']:<11} {item['kind']:<11} {calls}  {item['reason']}")
        click.echo(f"{len(entries)} entries; {sum(1 for e in entries if not e.complete)} incomplete")
        return EXIT_OK

    guarded(run)


@journal.command("show")
@click.argument("journal_id")
@_policy_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def journal_show(journal_id: str, policy_path: str, localcloud: str | None, as_json: bool) -> None:
    """Show one journal entry: its intent (every action with before and after) and its outcome."""

    def run() -> int:
        entry = _state(policy_path, localcloud).journal.read(journal_id)
        if entry is None:
            click.echo(f"tlsguard: error: journal entry {journal_id} not found", err=True)
            return EXIT_ERROR
        if as_json:
            click.echo(json.dumps(entry.to_dict(), indent=2, default=str))
            return EXIT_OK
        intent, outcome = entry.intent, entry.outcome or {}
        click.echo(f"{entry.journal_id}: {entry.status}")
        click.echo(f"  target:  {entry.target}")
        click.echo(f"  time:    {intent.get('time')}  ({intent.get('kind')}, mode {intent.get('mode')})")
        trigger = intent.get("trigger") or {}
        click.echo(f"  trigger: {trigger.get('kind')} by {trigger.get('actor') or 'unknown'}"
                   + (f", event {trigger['event_id']}" if trigger.get("event_id") else ""))
        click.echo(f"  reason:  {intent.get('reason')}")
        statuses = outcome.get("actions") or []
        for index, action in enumerate(intent.get("actions") or []):
            status = statuses[index]["status"] if index < len(statuses) else "no outcome"
            click.echo(f"  - {action['call']} [{status}] {action.get('summary') or ''}")
            click.echo(f"      before: {json.dumps(action.get('before'), sort_keys=True)[:300]}")
            click.echo(f"      after:  {json.dumps(action.get('after'), sort_keys=True)[:300]}")
        if outcome:
            click.echo(f"  outcome: {outcome.get('reason')} (verified: {outcome.get('verified')}, live: "
                       f"{outcome.get('live_verification')})")
        click.echo(f"  undo:    tlsguard undo {entry.journal_id}")
        return EXIT_OK

    guarded(run)


def _state(policy_path: str, localcloud: str | None) -> Any:
    wiring = _wire(policy_path, localcloud, 4)
    if wiring.state is None:
        raise ConfigError("the policy names no state bucket (state.bucket): there is no journal to read")
    return wiring.state


def _entry_summary(entry: Any) -> dict[str, Any]:
    intent = entry.intent
    return {"journal_id": entry.journal_id, "status": entry.status, "kind": intent.get("kind"),
            "target": intent.get("target"), "time": intent.get("time"), "reason": intent.get("reason"),
            "calls": [a.get("call") for a in intent.get("actions") or []],
            "actor": (intent.get("trigger") or {}).get("actor")}


class _Unavailable(click.Command):
    """Stands in for a lazily loaded command whose module cannot be imported, and says why."""

    def __init__(self, name: str, error: str) -> None:
        super().__init__(name, help=f"{name} (not available in this installation).",
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
        self.error = error

    def invoke(self, ctx: click.Context) -> None:
        click.echo(f"tlsguard {self.name} is not available: {self.error}", err=True)
        ctx.exit(EXIT_ERROR)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    cli.main(args=argv, prog_name="tlsguard")

