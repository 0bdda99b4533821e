"""``tlsguard certs``: the certificate view of a plan over every custom domain and CDN domain.

The same run as ``tlsguard plan --kind oss-cname --kind cdn-domain`` (same lifecycle, same report), rendered as a
table soonest expiry first, ``--json`` (the run report) or ``--html`` (with an expiry timeline). Registered lazily by
the ``tlsguard`` group as ``tlsguard.certs.cli:certs``. To renew from CAS: ``tlsguard apply --kind oss-cname
--kind cdn-domain``. Exit status as every run: 0 compliant or pending, 2 drift left, 1 error.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from tlsguard import settings


@click.command("certs")
@click.option("--policy", "policy_path", envvar=settings.POLICY, required=True, type=click.Path(dir_okay=False),
              help="Policy file (its certificates: section). Env: TLSGUARD_POLICY.")
@click.option("--localcloud", envvar=settings.LOCALCLOUD, default=None, type=click.Path(dir_okay=False),
              help="localcloud endpoints file (JSON). Env: TLSGUARD_LOCALCLOUD.")
@click.option("--json", "as_json", is_flag=True, help="Print the run report (JSON) on stdout.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Also write a self-contained HTML report (with an expiry timeline) to this file.")
@click.option("--target", "names", multiple=True, metavar="DOMAIN", help="Only this domain (repeatable).")
@click.option("--concurrency", type=click.IntRange(1, 256), default=settings.DEFAULT_CONCURRENCY, show_default=True)
def certs(policy_path: str, localcloud: str | None, as_json: bool, html_path: str | None, names: tuple[str, ...],
          concurrency: int) -> None:
    """Certificate health: expiry, renewal, chain, hostname, key, and what is really served."""
    from tlsguard.certs.report import render_html, render_table
    from tlsguard.cli import guarded, run_command

    def run() -> int:
        report = run_command("certs", policy_path, localcloud, apply=False, mode=None, names=names,
                             kinds=("oss-cname", "cdn-domain"), concurrency=concurrency)
        if as_json:
            click.echo(json.dumps(report.to_dict(), indent=2))
        else:
            click.echo(render_table(report.targets), nl=False)
            click.echo(report.human().splitlines()[-1])
            for error in report.errors:
                click.echo(f"error: {error}", err=True)
        if html_path:
            Path(html_path).write_text(render_html(report.targets, dt.datetime.now(dt.timezone.utc)))
            if not as_json:
                click.echo(f"HTML report written to {html_path}")
        return report.exit_code

    guarded(run)
