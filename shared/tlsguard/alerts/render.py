"""What a person reads: a run's digest as a language-neutral view, then Markdown, plain text or HTML (Jinja2
templates in ``templates/``), in English or Simplified Chinese (``alerts.language``).

Every item says what is wrong or what was done, on which target, who changed it (from ActionTrail), what tlsguard
did, the journal id with the exact ``tlsguard undo`` command, and a link to the target's console page. Channels take
the view (:func:`view`) and render it within their own limits: :func:`render` renders any selection of items, so a
channel that must split a digest renders the parts it can send.

``markdown.j2`` options: ``flavor`` (``dingtalk | wecom | lark | slack``: the chat service's dialect, escaping
included), ``detail`` (``full``; ``compact`` drops the detail text and the console link; ``minimal`` keeps severity,
target and headline: what a channel uses when a digest would otherwise take more messages than its rate budget) and
``show_title`` (False where the service shows the title itself: a Lark card header, a Slack header block).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    import jinja2

LANGUAGES = ("en", "zh-CN")
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "tlsguard: {summary}",
        "needs_attention": "Needs a person", "reminder": "Still open (reminder)", "resolved": "Resolved",
        "remediated": "Put back by tlsguard", "verifications": "Live verification", "notices": "Run notices",
        "oss-bucket": "bucket", "oss-cname": "custom domain", "cdn-domain": "CDN domain",
        "changed_by": "changed by", "undo": "undo", "journal": "journal", "console": "console", "run": "run",
        "targets": "targets", "target": "target", "omitted": "{n} more items are in the run's report",
        "compliant": "compliant", "drifted": "drifted", "pending": "pending", "remediated_count": "remediated",
        "refused": "refused", "contested": "contested", "failed": "failed",
        "effective": "effective", "not_effective": "not effective", "nothing": "nothing to report",
        "part": "part {i} of {n}", "did": "tlsguard did",
        "mention": "{n} CRITICAL items need a person now: see the tlsguard digest",
        "state.drifted": "drifted", "state.contested": "contested (others keep changing it back)",
        "state.failed": "failed", "state.expired": "expired", "state.not_yet_valid": "not yet valid",
        "state.renewal_due": "renewal due", "state.expiring": "expiring soon",
        "state.not_effective": "configured but not effective", "state.cannot_verify": "cannot be verified",
        "notice.delayed": "Delayed alerts delivered now", "notice.delivery_failed": "An alert channel failed",
        "notice.outbox_dropped": "Undelivered alerts dropped", "notice.function-failed": "A function failed",
    },
    "zh-CN": {
        "title": "tlsguard：{summary}",
        "needs_attention": "需要人工处理", "reminder": "仍未解决（提醒）", "resolved": "已恢复",
        "remediated": "tlsguard 已自动回滚", "verifications": "线上验证", "notices": "运行通知",
        "oss-bucket": "存储空间", "oss-cname": "自定义域名", "cdn-domain": "CDN 域名",
        "changed_by": "变更人", "undo": "撤销", "journal": "日志", "console": "控制台", "run": "运行",
        "targets": "个目标", "target": "个目标", "omitted": "另有 {n} 项见本次运行报告",
        "compliant": "合规", "drifted": "偏离", "pending": "生效中", "remediated_count": "已修复",
        "refused": "已拒绝", "contested": "有争议", "failed": "失败",
        "effective": "已生效", "not_effective": "未生效", "nothing": "无需报告",
        "part": "第 {i}/{n} 部分", "did": "tlsguard 的处理",
        "mention": "有 {n} 个严重（CRITICAL）问题需要立即人工处理，请查看 tlsguard 摘要",
        "state.drifted": "偏离", "state.contested": "有争议（有人反复改回）",
        "state.failed": "失败", "state.expired": "已过期", "state.not_yet_valid": "尚未生效",
        "state.renewal_due": "需要续期", "state.expiring": "即将过期",
        "state.not_effective": "已配置但未生效", "state.cannot_verify": "无法验证",
        "notice.delayed": "延迟送达的告警", "notice.delivery_failed": "告警渠道投递失败",
        "notice.outbox_dropped": "未送达的告警已丢弃", "notice.function-failed": "函数执行失败",
    },
}
_OUTCOMES = ("failed", "contested", "drifted", "refused", "remediated", "pending", "compliant")
#: The sections whose items need a person (a channel never drops them when it must shorten a digest).
PERSON_SECTIONS = ("needs_attention", "reminder", "notices")
#: The order a channel that must split a digest fills its messages in: what needs a person first.
PRIORITY = ("needs_attention", "reminder", "notices", "verifications", "remediated", "resolved")


def text(language: str, key: str, **values: Any) -> str:
    strings = STRINGS.get(language, STRINGS["en"])
    return strings.get(key, STRINGS["en"].get(key, key)).format(**values)


#: The text of a run notice in a language other than English, from its fields (the English ``message`` is composed
#: where the notice is raised). Services' own error texts stay as the service wrote them.
NOTICE_TEXTS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "delivery_failed": "摘要未能发送到 {channel}（{type}）：{error}{saved}",
        "outbox_dropped": "{channel} 的 {entries} 份未送达告警摘要在 {hours} 小时后已丢弃"
                          "（其中 {items} 个问题将在下次判定时重新告警）；详见以下运行的报告：{runs}",
        "delayed": "延迟送达：{runs} 份发往 {channel} 的摘要在发送时未能送达（首次于 {first_time}：{first_error}）；"
                   "来自运行：{named}",
        "function-failed": "{function} 在 {attempts} 次尝试后仍然失败：{response}",
    },
}
_NOTICE_FLAGS = {("zh-CN", "saved", True): "；已存入待发队列，下次运行时补发", ("zh-CN", "saved", False): ""}


def notice_text(language: str, entry: Mapping[str, Any]) -> str:
    """A run notice's text in ``language``; its English ``message`` when there is no template or a field is missing."""
    message = str(entry.get("message") or "")
    template = NOTICE_TEXTS.get(language, {}).get(str(entry.get("kind") or ""))
    if template is None:
        return message
    fields: dict[str, Any] = {}
    for name, value in entry.items():
        if isinstance(value, bool):
            fields[name] = _NOTICE_FLAGS.get((language, name, value), "")
        elif isinstance(value, list):
            fields[name] = "、".join(str(v) for v in value) or "-"
        elif value is None:
            fields[name] = "-"
        else:
            fields[name] = value
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError):
        return message


def notice_label(language: str, kind: str) -> str:
    """A run notice's heading in the digest's language; an unknown kind is shown as it is."""
    label = text(language, f"notice.{kind}")
    return kind if label == f"notice.{kind}" else label


def state_label(language: str, state: str) -> str:
    """A problem's state for a person: ``renewal_due:ab12...`` (the suffix only deduplicates) → "renewal due"."""
    name = state.split(":", 1)[0]
    label = text(language, f"state.{name}")
    return name if label == f"state.{name}" else label


def chat_escape(value: Any, flavor: str = "") -> str:
    """Text from a digest, safe inside a chat service's Markdown dialect.

    Slack mrkdwn: ``&``, ``<`` and ``>`` must be escaped as HTML entities (they delimit links and mentions),
    https://api.slack.com/reference/surfaces/formatting#escaping. Lark card Markdown reads ``<...>`` as
    tags (``<at>``, ``<font>``), so those two are escaped too (UNCONFIRMED: the entity form is assumed to be shown
    as the character). DingTalk and WeCom take the text as it is.
    """
    text_ = str(value)
    if flavor == "slack":
        return text_.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if flavor == "lark":
        return text_.replace("<", "&lt;").replace(">", "&gt;")
    return text_


def console_link(target: dict[str, Any]) -> str:
    """The target's page in the Alibaba Cloud console (OSS bucket overview, its domain list, the CDN domain); names
    are percent-encoded, so nothing a digest carries can end a Markdown or Slack link early."""
    from urllib.parse import quote

    kind, name = target.get("kind"), quote(str(target.get("name") or ""), safe="")
    region = quote(str(target.get("region") or "cn-hangzhou"), safe="")
    if kind == "oss-bucket":
        return f"https://oss.console.aliyun.com/bucket/oss-{region}/{name}/overview"
    if kind == "oss-cname":
        bucket = quote(str(target.get("bucket") or ""), safe="")
        return f"https://oss.console.aliyun.com/bucket/oss-{region}/{bucket}/domain"
    if kind == "cdn-domain":
        return f"https://cdn.console.aliyun.com/domain/detail/{name}/basic"
    return ""


@dataclass(frozen=True)
class ItemView:
    """One line a person acts on."""

    section: str  # needs_attention | reminder | resolved | remediated | verifications | notices
    severity: str
    kind: str  # localized kind of target
    target: str
    headline: str
    detail: str = ""
    actor: str = ""
    journal_id: str = ""
    undo: str = ""
    console: str = ""


@dataclass(frozen=True)
class DigestView:
    """A digest, ready to render: title, counts line, items by section."""

    language: str
    title: str
    summary: str
    run: str
    items: tuple[ItemView, ...]
    omitted: int = 0
    critical: bool = False  # a CRITICAL item needs someone now (channels may @-mention)
    part: str = ""
    sections: tuple[str, ...] = field(default=("needs_attention", "reminder", "remediated", "verifications",
                                               "resolved", "notices"))

    def grouped(self) -> list[tuple[str, list[ItemView]]]:
        return [(text(self.language, name), [i for i in self.items if i.section == name]) for name in self.sections
                if any(i.section == name for i in self.items)]

    def with_items(self, items: tuple[ItemView, ...], *, part: str = "", omitted: int | None = None) -> DigestView:
        return replace(self, items=items, part=part, omitted=self.omitted if omitted is None else omitted,
                       critical=any(i.severity == "CRITICAL" and i.section in ("needs_attention", "reminder")
                                    for i in items))

    def worst(self, sections: tuple[str, ...] = PERSON_SECTIONS) -> str:
        """The worst severity among the items of ``sections`` ("" without any)."""
        ranks = [SEVERITIES.index(i.severity) for i in self.items if i.section in sections and i.severity in SEVERITIES]
        return SEVERITIES[min(ranks)] if ranks else ""


def _sections_summary(items: list[ItemView], language: str) -> str:
    """Without target counts (a verification pass, a notice), the title counts the items per section."""
    per_section: dict[str, int] = {}
    for item in items:
        per_section[item.section] = per_section.get(item.section, 0) + 1
    return ", ".join(f"{text(language, section)}: {n}" for section, n in per_section.items()) or text(language,
                                                                                                       "nothing")


def _summary(counts: dict[str, Any], language: str) -> str:
    parts = []
    for outcome in _OUTCOMES:
        n = int(counts.get(outcome) or 0)
        if n:
            label = text(language, "remediated_count" if outcome == "remediated" else outcome)
            parts.append(f"{n} {label}")
    total = int(counts.get("targets") or 0)
    head = f"{total} {text(language, 'target' if total == 1 else 'targets')}" if total else ""
    return ", ".join([head, *parts]) if head else ", ".join(parts)


def _with_reason(language: str, message: str, reason: str) -> str:
    """A problem's text: what is wrong, then what tlsguard did about it (the run's reason: alert mode, a refusal, a
    fix that could not be planned)."""
    if not reason:
        return message
    did = f"{text(language, 'did')}: {reason}"
    return f"{message} · {did}" if message else did


def view(digest: dict[str, Any], language: str = "en") -> DigestView:
    """The language-neutral view of a digest (``alerts.path`` message)."""
    language = language if language in LANGUAGES else "en"
    items: list[ItemView] = []

    def kind(target: dict[str, Any]) -> str:
        return text(language, str(target.get("kind") or ""))

    for entry in digest.get("needs_attention") or []:
        target = entry.get("target") or {}
        items.append(ItemView("reminder" if entry.get("reminder") else "needs_attention",
                              str(entry.get("severity") or ""), kind(target), str(target.get("name") or ""),
                              f"{entry.get('check')}: {state_label(language, str(entry.get('state') or ''))}",
                              _with_reason(language, str(entry.get("message") or ""), str(entry.get("reason") or "")),
                              str(entry.get("actor") or ""), str(entry.get("journal_id") or ""),
                              f"tlsguard undo {entry['journal_id']}" if entry.get("journal_id") else "",
                              console_link(target)))
    for entry in digest.get("remediated") or []:
        target = entry.get("target") or {}
        actions = "; ".join(str(a) for a in entry.get("actions") or [])
        items.append(ItemView("remediated", str(entry.get("severity") or ""), kind(target),
                              str(target.get("name") or ""), ", ".join(entry.get("checks") or []), actions,
                              str(entry.get("actor") or ""), str(entry.get("journal_id") or ""),
                              str(entry.get("undo") or ""), console_link(target)))
    for entry in digest.get("verifications") or []:
        target = entry.get("target") or {}
        verdict = str(entry.get("live_verification") or "")
        items.append(ItemView("verifications", str(entry.get("severity") or ""), kind(target),
                              str(target.get("name") or ""), text(language, verdict),
                              str(entry.get("detail") or ""), journal_id=str(entry.get("journal_id") or ""),
                              console=console_link(target)))
    for entry in digest.get("resolved") or []:
        target = entry.get("target") or {}
        items.append(ItemView("resolved", str(entry.get("severity") or ""), kind(target),
                              str(target.get("name") or target.get("key") or ""),
                              f"{entry.get('check')}: {state_label(language, str(entry.get('state') or ''))}",
                              console=console_link(target)))
    for entry in digest.get("notices") or []:
        items.append(ItemView("notices", "HIGH", "", "", notice_label(language, str(entry.get("kind") or "")),
                              notice_text(language, entry)))
    counts = digest.get("counts") or {}
    summary = _summary(counts, language) or _sections_summary(items, language)
    run = digest.get("run") or {}
    critical = any(i.severity == "CRITICAL" and i.section in ("needs_attention", "reminder") for i in items)
    return DigestView(language, text(language, "title", summary=summary), summary,
                      " ".join(str(v) for v in (run.get("command"), run.get("correlation_id")) if v),
                      tuple(items), int(digest.get("omitted") or 0), critical)


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    import jinja2

    environment = jinja2.Environment(loader=jinja2.PackageLoader("tlsguard.alerts", "templates"),
                                     autoescape=lambda name: (name or "").endswith("html.j2"), trim_blocks=True,
                                     lstrip_blocks=True, keep_trailing_newline=False)
    environment.filters["chat"] = chat_escape
    return environment


def render(digest_view: DigestView, template: str, **options: Any) -> str:
    """Render a view with one of ``templates/`` (``markdown.j2``, ``text.j2``, ``html.j2``); ``options`` reach the
    template (e.g. ``flavor`` for the Markdown dialect of a chat service)."""
    options.setdefault("flavor", "")
    options.setdefault("detail", "full")
    options.setdefault("show_title", True)
    return _environment().get_template(template).render(
        view=digest_view, groups=digest_view.grouped(), t=functools.partial(text, digest_view.language), **options)
