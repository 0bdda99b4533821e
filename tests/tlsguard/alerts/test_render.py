"""What a person reads: every template (Markdown in each chat dialect, plain text, HTML) in English and Simplified
Chinese shows what is wrong or what was done, on which target, who changed it, what tlsguard did, the journal id
with the exact ``tlsguard undo`` command and the console link; the HTML template escapes whatever a digest carries.

Rendered straight from :func:`tlsguard.alerts.render.render` (no channel in between), so the templates themselves
are what is proven; the channels' own escaping and splitting have their tests beside them.
"""

from __future__ import annotations

from typing import Any

import pytest
from tlsguard.alerts.render import render, view

unit = pytest.mark.unit

DRIFTED = {"kind": "oss-bucket", "name": "acme-prod-assets", "region": "cn-shanghai"}
FIXED = {"kind": "cdn-domain", "name": "img.example.com"}
DOMAIN = {"kind": "oss-cname", "name": "shop.example.com", "bucket": "shop-site", "region": "cn-hangzhou"}
NEEDS_MESSAGE = "oss.tls_versions: accepts TLSv1.0, TLSv1.1 (policy: TLSv1.2, TLSv1.3)"
NEEDS_REASON = "drift in https_config (alert mode, nothing written)"
FIX_ACTIONS = ["BatchSetCdnDomainConfig https_tls_version tls10 off, tls11 off"]

#: Each template and the options a channel renders it with (a chat dialect for Markdown).
TEMPLATES = [("markdown.j2", {"flavor": flavor}) for flavor in ("dingtalk", "wecom", "lark", "slack", "")] + [
    ("text.j2", {}), ("html.j2", {})]
TEMPLATE_IDS = [f"{name}-{options.get('flavor') or 'plain'}" if options else name for name, options in TEMPLATES]

#: The labels of each language (a zh-CN message carries the Chinese ones and none of the English ones).
LABELS = {
    "en": {"Needs a person", "Put back by tlsguard", "changed by", "journal", "undo", "console", "bucket",
           "CDN domain"},
    "zh-CN": {"需要人工处理", "tlsguard 已自动回滚", "变更人", "日志", "撤销", "控制台", "存储空间", "CDN 域名"},
}
#: Labels that must not show in the other language (not "undo" or "console": the command and the URLs hold them).
FOREIGN = {"en": LABELS["zh-CN"],
           "zh-CN": {"Needs a person", "Put back by tlsguard", "changed by", "journal", "CDN domain", "targets",
                     "drifted", "tlsguard did"}}


def digest(target: dict[str, Any] | None = None, actor: str = "ram-user:ops-alice") -> dict[str, Any]:
    """A digest as the alert path composes it: one problem left for a person, one change put back."""
    drifted = target or DRIFTED
    return {
        "version": 2, "kind": "digest", "time": "2026-11-23T03:00:00Z",
        "run": {"command": "on_change", "correlation_id": "evt-42", "mode": "enforce"},
        "counts": {"targets": 2, "drifted": 1, "remediated": 1},
        "needs_attention": [{
            "target": drifted, "id": f"{drifted['kind']}/{drifted['name']}", "check": "oss.tls_versions",
            "state": "drifted", "severity": "HIGH", "message": NEEDS_MESSAGE, "reason": NEEDS_REASON,
            "journal_id": "j-20261123-0001", "actor": actor, "reminder": False}],
        "remediated": [{
            "target": FIXED, "id": "cdn-domain/img.example.com", "severity": "HIGH", "checks": ["cdn.tls_versions"],
            "actions": FIX_ACTIONS, "journal_id": "j-20261123-0002", "undo": "tlsguard undo j-20261123-0002",
            "actor": "ram-user:ops-bob", "event_id": "evt-42", "reason": "restored", "live_verification": "pending"}],
        "resolved": [], "verifications": [], "notices": [], "omitted": 0,
    }


def rendered(document: dict[str, Any], language: str, template: str, options: dict[str, Any]) -> str:
    return render(view(document, language), template, **options)


@unit
@pytest.mark.parametrize("language", ["en", "zh-CN"])
@pytest.mark.parametrize(("template", "options"), TEMPLATES, ids=TEMPLATE_IDS)
def test_every_template_shows_what_a_person_acts_on(language: str, template: str, options: dict[str, Any]) -> None:
    out = rendered(digest(), language, template, options)
    # What is wrong (the problem) and what was done (the change put back), each on its target.
    assert NEEDS_MESSAGE in out and "acme-prod-assets" in out
    assert FIX_ACTIONS[0] in out and "img.example.com" in out
    # Who changed it (ActionTrail's actor of the event).
    assert "ram-user:ops-alice" in out and "ram-user:ops-bob" in out
    # What tlsguard did about the problem (the run's reason: alert mode, nothing written).
    assert NEEDS_REASON in out
    # The journal ids with the exact undo command.
    assert "j-20261123-0001" in out and "tlsguard undo j-20261123-0001" in out
    assert "tlsguard undo j-20261123-0002" in out
    # Each target's console page.
    assert "https://oss.console.aliyun.com/bucket/oss-cn-shanghai/acme-prod-assets/overview" in out
    assert "https://cdn.console.aliyun.com/domain/detail/img.example.com/basic" in out
    # The labels are the language's own.
    assert {label for label in LABELS[language] if label not in out} == set(), out
    assert {label for label in FOREIGN[language] if label in out} == set(), out


@unit
@pytest.mark.parametrize(("template", "options"), TEMPLATES, ids=TEMPLATE_IDS)
def test_the_chinese_title_counts_and_states(template: str, options: dict[str, Any]) -> None:
    out = rendered(digest(), "zh-CN", template, options)
    assert "tlsguard：2 个目标" in out  # the counts reach every message, in Chinese
    assert "1 偏离" in out and "1 已修复" in out
    assert "oss.tls_versions: 偏离" in out  # the state of a problem, translated


@unit
def test_a_custom_domain_links_to_its_buckets_domain_page() -> None:
    out = rendered(digest(DOMAIN), "en", "text.j2", {})
    assert "custom domain shop.example.com" in out
    assert "https://oss.console.aliyun.com/bucket/oss-cn-hangzhou/shop-site/domain" in out


HOSTILE_TARGET = {"kind": "oss-bucket", "name": "<script>alert(1)</script>", "region": "cn-hangzhou"}
HOSTILE_ACTOR = '<img src=x onerror="alert(2)">&co'


@unit
@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_html_escapes_a_target_name_and_an_actor(language: str) -> None:
    """html.j2 is autoescaped by render() itself: no caller has to remember to escape the view first."""
    out = rendered(digest(HOSTILE_TARGET, actor=HOSTILE_ACTOR), language, "html.j2", {})
    assert "<script>" not in out and "<img" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;&amp;co" in out
    # The template's own markup is intact.
    assert out.count("<li>") == 2 and '<a href="https://cdn.console.aliyun.com/' in out


@unit
def test_only_the_html_template_is_autoescaped() -> None:
    """Plain text stays plain (an email's text part shows the name as it is); Markdown escapes per dialect."""
    hostile = digest(HOSTILE_TARGET, actor=HOSTILE_ACTOR)
    assert "<script>alert(1)</script>" in rendered(hostile, "en", "text.j2", {})
    assert "&lt;script&gt;" not in rendered(hostile, "en", "text.j2", {})
    slack = rendered(hostile, "en", "markdown.j2", {"flavor": "slack"})
    assert "<script>" not in slack and "&lt;script&gt;" in slack and "&amp;co" in slack
    lark = rendered(hostile, "en", "markdown.j2", {"flavor": "lark"})
    assert "<script>" not in lark and "&lt;script&gt;" in lark


@unit
@pytest.mark.parametrize(("language", "heading", "foreign"), [
    ("en", "An alert channel failed", "告警渠道投递失败"), ("zh-CN", "告警渠道投递失败", "An alert channel failed")])
@pytest.mark.parametrize(("template", "options"), TEMPLATES, ids=TEMPLATE_IDS)
def test_run_notices_are_headed_in_the_digests_language(language: str, heading: str, foreign: str, template: str,
                                                         options: dict[str, Any]) -> None:
    document = {**digest(), "notices": [
        {"kind": "delivery_failed", "message": "the digest could not be delivered to sec-dingtalk"},
        {"kind": "some-new-kind", "message": "kept as it is"}]}
    out = rendered(document, language, template, options)
    assert heading in out and foreign not in out
    assert "delivery_failed" not in out and "some-new-kind" in out and "sec-dingtalk" in out


NOTICES = [
    {"kind": "delivery_failed", "channel": "sec-dingtalk", "type": "dingtalk",
     "error": "errcode 310000: sign not match", "saved": True,
     "message": "the digest could not be delivered to sec-dingtalk (dingtalk): errcode 310000: sign not match; "
                "it waits in the outbox and the next run delivers it"},
    {"kind": "outbox_dropped", "channel": "certs-lark", "entries": 3, "runs": ["evt-1", "evt-2"], "hours": "24",
     "items": 7, "message": "3 undelivered alert digests for certs-lark dropped after 24 h (7 problems will be alerted "
                            "again when next judged); see the reports of runs evt-1, evt-2"},
    {"kind": "delayed", "channel": "ops-wecom", "runs": 2, "named": "evt-3, evt-4",
     "first_time": "2026-12-07T03:00:00Z", "first_error": "unreachable",
     "message": "Delayed: 2 digests for ops-wecom could not be delivered when sent "
                "(first at 2026-12-07T03:00:00Z: unreachable); runs: evt-3, evt-4"},
    {"kind": "function-failed", "function": "tlsguard-sweep", "attempts": 3, "response": "discovery failed",
     "message": "tlsguard-sweep failed after 3 attempts: discovery failed"},
]
NOTICE_WORDS = {
    "en": ["could not be delivered to sec-dingtalk", "waits in the outbox", "dropped after 24 h", "evt-1, evt-2",
           "Delayed: 2 digests for ops-wecom", "tlsguard-sweep failed after 3 attempts"],
    "zh-CN": ["摘要未能发送到 sec-dingtalk", "已存入待发队列", "在 24 小时后已丢弃", "evt-1、evt-2",
              "延迟送达：2 份发往 ops-wecom", "tlsguard-sweep 在 3 次尝试后仍然失败"],
}


@unit
@pytest.mark.parametrize("language", ["en", "zh-CN"])
@pytest.mark.parametrize(("template", "options"), TEMPLATES, ids=TEMPLATE_IDS)
def test_each_kind_of_run_notice_reads_in_the_digests_language(language: str, template: str,
                                                                options: dict[str, Any]) -> None:
    out = rendered({**digest(), "notices": NOTICES}, language, template, options)
    for words in NOTICE_WORDS[language]:
        assert words in out
    other = NOTICE_WORDS["zh-CN" if language == "en" else "en"]
    assert not any(words in out for words in other)
    assert "errcode 310000: sign not match" in out  # the service's own words, in both


@unit
def test_a_notice_missing_a_field_falls_back_to_its_english_message() -> None:
    from tlsguard.alerts.render import notice_text

    assert notice_text("zh-CN", {"kind": "delayed", "message": "Delayed: 1 digest"}) == "Delayed: 1 digest"
