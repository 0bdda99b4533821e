"""The certificate view of a run's report: a text table sorted by days left and a self-contained HTML page.

Both render the report's own target items (``RunReport.targets``: each domain's ``observed`` certificate facts and
its findings), so there is one report and these are views of it. The HTML page has one inline SVG timeline of
upcoming expiries (no script, no external asset), coloured by urgency, then the table with every finding.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from tlsguard.model import Severity


def _days_left(item: dict[str, Any]) -> float | None:
    value = (item.get("observed") or {}).get("days_left")
    return float(value) if isinstance(value, (int, float)) else None


def _expires(item: dict[str, Any]) -> dt.datetime | None:
    value = (item.get("observed") or {}).get("expires_at")
    return dt.datetime.fromisoformat(value) if isinstance(value, str) and value else None


def sort_by_days_left(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Soonest expiry first; domains with unknown expiry last, then by name."""
    return sorted(items, key=lambda i: (_days_left(i) is None, _days_left(i) or 0.0, i["target"]["name"],
                                        i["target"]["kind"]))


def _worst(item: dict[str, Any]) -> str:
    ranks = [Severity(f["severity"]) for f in item["findings"] if not f["waived"]]
    return min(ranks, key=lambda s: s.rank).value if ranks else "OK"


def _days(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f}"


def render_table(items: list[dict[str, Any]]) -> str:
    """A fixed-width text table, soonest expiry first."""
    rows = [("DAYS", "EXPIRES (UTC)", "DOMAIN", "WHERE", "CERT", "WORST", "OUTCOME", "FINDINGS")]
    for item in sort_by_days_left(items):
        target, observed = item["target"], item.get("observed") or {}
        expires = _expires(item)
        where = target["kind"] + (f"/{target['bucket']}" if target.get("bucket") else "")
        rows.append((_days(_days_left(item)), f"{expires:%Y-%m-%d %H:%M}" if expires else "-", target["name"], where,
                     str(observed.get("cert_id") or "-"), _worst(item), item["outcome"],
                     ", ".join(sorted({f["check"] for f in item["findings"] if not f["waived"]})) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [row[i].rjust(widths[i]) if i == 0 else row[i].ljust(widths[i]) for i in range(len(widths))]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


_COLOURS = {"expired": "#b91c1c", "urgent": "#ea580c", "soon": "#ca8a04", "ok": "#15803d", "unknown": "#6b7280"}


def _urgency(days_left: float | None) -> str:
    if days_left is None:
        return "unknown"
    if days_left <= 0:
        return "expired"
    if days_left <= 7:
        return "urgent"
    if days_left <= 30:
        return "soon"
    return "ok"


def timeline_svg(items: list[dict[str, Any]], now: dt.datetime, horizon_days: int = 120) -> str:
    """An inline SVG: one row per domain, a bar from today to its expiry on a 0..horizon-day axis, weekly ticks,
    a red band for expired certificates and a dashed line at 30 days. Beyond the horizon the bar is clipped
    with an arrow; every bar carries a <title> tooltip."""
    ordered = [i for i in sort_by_days_left(items) if _days_left(i) is not None]
    label_width, plot_width, row_height, top = 260, 720, 22, 34
    expired_width = 60
    height = top + row_height * max(1, len(ordered)) + 16
    width = label_width + expired_width + plot_width + 20
    x0 = label_width + expired_width

    def x_of(days: float) -> float:
        return x0 + max(0.0, min(days, float(horizon_days))) / horizon_days * plot_width

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="Certificate expiry timeline" font-family="system-ui, sans-serif" font-size="12">',
             f'<rect x="{label_width}" y="{top - 6}" width="{expired_width - 4}" height="{height - top - 4}" '
             f'fill="#fee2e2"/>',
             f'<text x="{label_width + 4}" y="{top - 12}" fill="#b91c1c">expired</text>']
    for day in range(0, horizon_days + 1, 7):
        x = x_of(day)
        parts.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 10}" stroke="#e5e7eb"/>')
        if day % 14 == 0:
            date = (now + dt.timedelta(days=day)).strftime("%m-%d")
            parts.append(f'<text x="{x:.1f}" y="{top - 12}" text-anchor="middle" fill="#374151">'
                         f'{"today" if day == 0 else date}</text>')
    x30 = x_of(30)
    parts.append(f'<line x1="{x30:.1f}" y1="{top - 6}" x2="{x30:.1f}" y2="{height - 10}" stroke="#ca8a04" '
                 f'stroke-dasharray="4 3"/>')
    for index, item in enumerate(ordered):
        days_left = _days_left(item)
        assert days_left is not None
        expires = _expires(item)
        name = item["target"]["name"]
        y = top + index * row_height
        urgency = _urgency(days_left)
        colour = _COLOURS[urgency]
        label = html.escape(f"{name} ({item['target']['kind']})")
        tooltip = html.escape(f"{name}: {days_left:.1f} days left, expires {expires:%Y-%m-%d %H:%M} UTC"
                              if expires else "")
        parts.append(f'<text x="{label_width - 8}" y="{y + 14}" text-anchor="end" fill="#111827">{label}</text>')
        if days_left <= 0:
            parts.append(f'<g><title>{tooltip}</title><circle cx="{label_width + expired_width / 2 - 2:.1f}" '
                         f'cy="{y + 10}" r="6" fill="{colour}"/></g>')
            continue
        end = x_of(days_left)
        parts.append(f'<g><title>{tooltip}</title><rect x="{x0}" y="{y + 4}" width="{max(end - x0, 2):.1f}" '
                     f'height="12" rx="3" fill="{colour}"/>')
        if days_left > horizon_days:
            parts.append(f'<path d="M{end:.1f},{y + 2} l8,8 l-8,8 z" fill="{colour}"/>')
        parts.append(f'<text x="{min(end + 10, width - 60):.1f}" y="{y + 14}" fill="{colour}">'
                     f'{days_left:.0f} d</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(items: list[dict[str, Any]], now: dt.datetime, title: str = "tlsguard certificate report") -> str:
    """A self-contained HTML page: summary counts, the SVG timeline and the findings table."""
    ordered = sort_by_days_left(items)
    counts = {u: sum(1 for i in ordered if _urgency(_days_left(i)) == u) for u in _COLOURS}
    summary = " · ".join(f'<span style="color:{_COLOURS[u]}"><b>{n}</b> {u}</span>' for u, n in counts.items() if n)
    rows = []
    for item in ordered:
        urgency = _urgency(_days_left(item))
        findings = "<br>".join(
            f'<span class="sev {f["severity"].lower()}">{f["severity"]}</span> '
            f'<code>{html.escape(f["check"])}</code> {html.escape(f["message"])}' for f in item["findings"]) or "OK"
        expires = _expires(item)
        target = item["target"]
        where = html.escape(target["kind"]) + ("/" + html.escape(target["bucket"]) if target.get("bucket") else "")
        actions = "".join(f"<br><i>{html.escape(a['summary'] or a['call'])}</i>" for a in item["actions"])
        rows.append(f'<tr><td class="num" style="color:{_COLOURS[urgency]}">{_days(_days_left(item))}</td>'
                    f'<td>{f"{expires:%Y-%m-%d %H:%M}" if expires else "-"}</td><td>{html.escape(target["name"])}</td>'
                    f'<td>{where}</td><td>{html.escape(str((item.get("observed") or {}).get("cert_id") or "-"))}</td>'
                    f'<td>{html.escape(item["outcome"])}</td><td>{findings}{actions}</td></tr>')
    severity_css = "".join(f".sev.{s.value.lower()}{{background:{c}}}" for s, c in (
        (Severity.CRITICAL, "#b91c1c"), (Severity.HIGH, "#ea580c"), (Severity.MEDIUM, "#ca8a04"),
        (Severity.LOW, "#2563eb"), (Severity.INFO, "#6b7280")))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:24px;color:#111827}}
table{{border-collapse:collapse;margin-top:12px}}
td,th{{border-bottom:1px solid #e5e7eb;padding:4px 10px;text-align:left;vertical-align:top;font-size:13px}}
td.num{{text-align:right;font-weight:bold}}
.sev{{color:#fff;border-radius:3px;padding:0 4px;font-size:11px}}{severity_css}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Generated {now:%Y-%m-%d %H:%M} UTC · {len(ordered)} domains · {summary}</p>
<h2>Upcoming expiries</h2>
{timeline_svg(ordered, now)}
<h2>Domains (soonest expiry first)</h2>
<table><tr><th>Days left</th><th>Expires (UTC)</th><th>Domain</th><th>Where</th><th>Certificate</th>
<th>Outcome</th><th>Findings and planned writes</th></tr>
{"".join(rows)}
</table>
</body></html>
"""
