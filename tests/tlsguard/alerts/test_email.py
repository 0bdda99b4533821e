"""The email channel: one digest as text and HTML over SMTP, TLS and AUTH required, every reply checked.

Pure tests build messages (parts, headers, encodings, splitting) and drive the transport against a scripted SMTP
client; the integration tests deliver through localcloud's SMTP sink (STARTTLS with a certificate from localcloud's
CA, AUTH against seeded users) and a plain aiosmtpd that offers no STARTTLS.
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

import pytest
from tlsguard.alerts.channels import ChannelResult
from tlsguard.alerts.channels import email as channel
from tlsguard.alerts.render import view
from tlsguard.errors import ConfigError, Transient
from tlsguard.log import mask_secrets
from tlsguard.policy.model import ChannelSpec
from tlsguard.ratelimit import TokenBucket
from tlsguard.retry import RetryPolicy

unit = pytest.mark.unit

SENDER = "alerts@mail.example.com"
RECIPIENTS = ("ops@example.com", "sec@example.com")
PASSWORD = "Sm7p-Pa55w0rd-not-for-logs"
NAME = re.compile(r"need-\d{3}|fixed-\d{3}\.example\.com|gone-\d{3}\.example\.com")
FAST = RetryPolicy(attempts=3, initial_seconds=0.01, max_seconds=0.02, jitter_seconds=0.0)


def _item(name: str, severity: str = "HIGH", *, reminder: bool = False, detail: str = "") -> dict[str, Any]:
    return {"target": {"kind": "oss-bucket", "name": name, "region": "cn-hangzhou"}, "check": "oss.tls_versions",
            "state": "drifted", "severity": severity, "message": detail or f"{name} accepts TLS 1.0",
            "journal_id": f"j-{name}", "actor": "ops-alice", "reminder": reminder}


def digest(needs: int = 1, remediated: int = 1, resolved: int = 1, *, critical: bool = True,
           detail: str = "") -> dict[str, Any]:
    return {
        "version": 2, "kind": "digest", "time": "2026-01-01T00:00:00Z",
        "run": {"command": "sweep", "correlation_id": "corr-1", "mode": "enforce"},
        "counts": {"targets": needs + remediated + resolved, "drifted": needs, "remediated": remediated},
        "needs_attention": [_item(f"need-{i:03d}", "CRITICAL" if critical and i == 0 else "HIGH", detail=detail)
                            for i in range(needs)],
        "remediated": [{"target": {"kind": "cdn-domain", "name": f"fixed-{i:03d}.example.com"}, "severity": "HIGH",
                        "checks": ["cdn.tls_versions"], "actions": ["SetCdnDomainSSLCertificate"],
                        "journal_id": f"j-fixed-{i}", "undo": f"tlsguard undo j-fixed-{i}", "actor": None}
                       for i in range(remediated)],
        "resolved": [{"target": {"kind": "oss-cname", "name": f"gone-{i:03d}.example.com", "bucket": "b"},
                      "check": "cert.expiry", "state": "expiring", "severity": "LOW"} for i in range(resolved)],
        "verifications": [], "notices": [], "omitted": 0,
    }


def parse(message: EmailMessage | bytes) -> EmailMessage:
    raw = message if isinstance(message, bytes) else channel.wire_bytes(message)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def bodies(message: EmailMessage | bytes) -> tuple[str, str]:
    parsed = parse(message)
    plain, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain is not None and html is not None
    return str(plain.get_content()), str(html.get_content())


def settings(**overrides: Any) -> channel.SmtpSettings:
    values: dict[str, Any] = {"host": "smtp.example.com", "port": 587, "sender": SENDER, "recipients": RECIPIENTS,
                              "username": SENDER, "password": PASSWORD, "timeout_seconds": 2.0}
    values.update(overrides)
    return channel.SmtpSettings(**values)


def email_channel(smtp: channel.SmtpSettings, language: str = "en", **kwargs: Any) -> channel.EmailChannel:
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("limiter", TokenBucket(1000.0, burst=1000.0))
    return channel.EmailChannel("ops-mail", smtp, language, **kwargs)


# -- messages --------------------------------------------------------------------------------------------------
@unit
@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_a_digest_is_one_multipart_alternative_message_with_text_and_html(language: str) -> None:
    digest_view = view(digest(), language)
    [message] = channel.build_messages(digest_view, SENDER, RECIPIENTS, now=1_700_000_000)
    raw = channel.wire_bytes(message)
    parsed = parse(raw)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parsed.iter_parts())
    assert parsed["Subject"] == digest_view.title
    assert parsed["From"].addresses[0].addr_spec == SENDER
    assert [a.addr_spec for a in parsed["To"].addresses] == list(RECIPIENTS)
    assert parsed["Date"].datetime.timestamp() == 1_700_000_000
    assert raw.count(b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n") == 1
    assert parsed["Message-ID"].endswith("@mail.example.com>")
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Content-Language"] == language
    assert parsed["Importance"] == "high"  # a CRITICAL item needs a person now
    plain, html = bodies(raw)
    assert digest_view.title in plain and digest_view.title in html
    assert "need-000" in plain and "<code>need-000</code>" in html
    assert "tlsguard undo j-need-000" in plain and "tlsguard undo j-need-000" in html
    assert "https://oss.console.aliyun.com/bucket/oss-cn-hangzhou/need-000/overview" in html
    # Seven-bit on the wire (quoted-printable or base64 bodies, RFC 2047 headers), CRLF, short lines.
    assert max(raw) < 128
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    assert b"\n" not in raw.replace(b"\r\n", b"")


@unit
def test_chinese_subject_and_bodies_survive_the_encoding() -> None:
    digest_view = view(digest(), "zh-CN")
    assert "tlsguard：" in digest_view.title
    raw = channel.wire_bytes(channel.compose(digest_view, SENDER, RECIPIENTS))
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n", 1)[0]  # the subject header is RFC 2047 encoded
    parsed = parse(raw)
    assert parsed["Subject"] == digest_view.title
    plain, html = bodies(raw)
    assert "需要人工处理" in plain and "需要人工处理" in html
    assert "存储空间" in plain and '<html lang="zh-CN">' in html


@unit
def test_html_escapes_what_a_digest_carries() -> None:
    raw = channel.wire_bytes(channel.compose(view(digest(detail="<script>alert(1)</script> & more"), "en"),
                                             SENDER, RECIPIENTS))
    plain, html = bodies(raw)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "<script>alert(1)</script> & more" in plain


@unit
def test_no_critical_item_no_importance_header() -> None:
    raw = channel.wire_bytes(channel.compose(view(digest(critical=False), "en"), SENDER, RECIPIENTS))
    assert parse(raw)["Importance"] is None


@unit
@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_a_too_big_digest_is_split_into_parts_needs_a_person_first(language: str) -> None:
    source = digest(needs=30, remediated=30, resolved=30, detail="x" * 300)
    digest_view = view(source, language)
    whole = len(channel.wire_bytes(channel.compose(digest_view, SENDER, RECIPIENTS)))
    limit = whole // 3
    messages = channel.build_messages(digest_view, SENDER, RECIPIENTS, max_bytes=limit)
    assert 3 < len(messages) <= channel.MAX_PARTS
    seen: list[str] = []
    for index, message in enumerate(messages, start=1):
        raw = channel.wire_bytes(message)
        assert len(raw) <= limit
        part = "part {} of {}" if language == "en" else "第 {}/{} 部分"
        label = part.format(index, len(messages))
        assert label in parse(raw)["Subject"]
        plain, html = bodies(raw)
        assert label in plain and label in html
        seen += [NAME.search(line)[0] for line in plain.splitlines() if line.startswith("- [")]  # type: ignore[index]
    names = [n for n in seen]
    assert sorted(names) == sorted([f"need-{i:03d}" for i in range(30)] + [f"fixed-{i:03d}.example.com"
                                                                           for i in range(30)] +
                                   [f"gone-{i:03d}.example.com" for i in range(30)])
    assert len(names) == len(set(names))  # every item exactly once
    # What needs a person comes first: every needs-attention item precedes every other item.
    assert names[:30] == [f"need-{i:03d}" for i in range(30)]
    first_plain, _ = bodies(messages[0])
    assert first_plain.index("need-000") < len(first_plain)
    assert parse(messages[0])["Importance"] == "high"  # the part with the CRITICAL item
    assert parse(messages[-1])["Importance"] is None


@unit
def test_beyond_the_part_cap_items_are_counted_as_omitted_in_the_last_part() -> None:
    source = digest(needs=4, remediated=40, resolved=0, detail="y" * 400)
    digest_view = view(source, "en")
    four = len(channel.wire_bytes(channel.compose(digest_view.with_items(digest_view.items[:4]), SENDER,
                                                  RECIPIENTS)))
    messages = channel.build_messages(digest_view, SENDER, RECIPIENTS, max_bytes=four + 200, max_parts=3)
    assert len(messages) == 3
    texts = [bodies(m)[0] for m in messages]
    listed = sum(t.count("- [") for t in texts)
    assert 4 < listed < 44 and all(f"need-{i:03d}" in texts[0] for i in range(4))
    assert f"{44 - listed} more items are in the run's report" in texts[-1]
    assert "more items" not in texts[0]


@unit
def test_what_needs_a_person_is_sent_even_beyond_the_part_cap() -> None:
    source = digest(needs=12, remediated=10, resolved=0, detail="v" * 400)
    digest_view = view(source, "en")
    two = len(channel.wire_bytes(channel.compose(digest_view.with_items(digest_view.items[:2]), SENDER,
                                                 RECIPIENTS)))
    messages = channel.build_messages(digest_view, SENDER, RECIPIENTS, max_bytes=two + 200, max_parts=3)
    assert len(messages) > 3
    text = "".join(bodies(m)[0] for m in messages)
    assert all(f"need-{i:03d}" in text for i in range(12)) and "fixed-" not in text
    assert "10 more items are in the run's report" in bodies(messages[-1])[0]
    assert f"part {len(messages)} of {len(messages)}" in parse(messages[-1])["Subject"]


@unit
def test_a_single_item_too_big_for_a_message_has_its_detail_shortened() -> None:
    digest_view = view(digest(needs=1, remediated=0, resolved=0, detail="z" * 50_000), "en")
    small = len(channel.wire_bytes(channel.compose(digest_view.with_items(()), SENDER, RECIPIENTS))) + 3000
    [message] = channel.build_messages(digest_view, SENDER, RECIPIENTS, max_bytes=small)
    plain, _ = bodies(message)
    assert "need-000" in plain and "z" * 500 + "…" in plain and "z" * 2001 not in plain
    assert len(channel.wire_bytes(message)) <= small


# -- secrets and configuration ---------------------------------------------------------------------------------
@unit
def test_scrub_removes_the_password_in_every_form_auth_sends_it() -> None:
    plain = base64.b64encode(f"\0{SENDER}\0{PASSWORD}".encode()).decode()
    login = base64.b64encode(PASSWORD.encode()).decode()
    text = f"535 bad {PASSWORD} / {plain} / {login}"
    scrubbed = channel.scrub(text, SENDER, PASSWORD)
    assert PASSWORD not in scrubbed and plain not in scrubbed and login not in scrubbed
    assert scrubbed.startswith("535 bad ***")


@unit
def test_build_reads_the_password_and_user_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = ChannelSpec("ops-mail", "email", secret_env="TEST_SMTP_PASSWORD",
                       options={"smtp_host": "smtpdm.aliyun.com", "smtp_port": 80, "from": SENDER,
                                "to": list(RECIPIENTS), "timeout_seconds": 5, "ca_bundle": "/tmp/ca.pem"})
    with pytest.raises(ConfigError, match="TEST_SMTP_PASSWORD") as refused:
        channel.build(spec, "zh-CN")
    assert PASSWORD not in str(refused.value)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    built = channel.build(spec, "zh-CN")
    assert (built.name, built.type, built.language) == ("ops-mail", "email", "zh-CN")
    s = built.settings
    assert (s.host, s.port, s.sender, s.recipients, s.timeout_seconds, s.ca_bundle) == (
        "smtpdm.aliyun.com", 80, SENDER, RECIPIENTS, 5.0, "/tmp/ca.pem")
    assert s.username == SENDER  # DirectMail: the user name is the sender address
    assert mask_secrets(f"x {PASSWORD} y") == "x *** y"  # registered with the log masker
    assert PASSWORD not in repr(built) and PASSWORD not in repr(s)
    monkeypatch.setenv("TEST_SMTP_USER", "relay-user")
    user_spec = ChannelSpec("ops-mail", "email", secret_env="TEST_SMTP_PASSWORD",
                            options={**spec.options, "username_env": "TEST_SMTP_USER"})
    assert channel.build(user_spec, "en").settings.username == "relay-user"
    assert channel.build(ChannelSpec("m", "email", secret_env="TEST_SMTP_PASSWORD",
                                     options={"smtp_host": "h", "from": SENDER, "to": ["a@b"]}), "en"
                         ).settings.port == channel.IMPLICIT_TLS_PORT
    monkeypatch.delenv("TEST_SMTP_USER")
    with pytest.raises(ConfigError, match="TEST_SMTP_USER"):
        channel.build(user_spec, "en")


@unit
def test_the_channel_type_email_is_registered() -> None:
    from tlsguard.alerts.channels import BUILDERS

    assert BUILDERS["email"] == "email"


@unit
def test_classify_4xx_and_dropped_connections_are_transient_5xx_are_failures() -> None:
    assert isinstance(channel.classify(smtplib.SMTPSenderRefused(451, b"try later", SENDER), "send"), Transient)
    assert isinstance(channel.classify(smtplib.SMTPServerDisconnected("gone"), "send"), Transient)
    assert isinstance(channel.classify(ConnectionRefusedError(111, "refused"), "connect"), Transient)
    assert isinstance(channel.classify(TimeoutError("timed out"), "connect"), Transient)
    failure = channel.classify(smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"), "connect")
    assert isinstance(failure, channel.SmtpFailure)
    assert (failure.stage, failure.code, str(failure)) == ("AUTH", 535, "SMTP AUTH: 535 5.7.8 bad credentials")
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    assert isinstance(channel.classify(verify, "connect"), channel.SmtpFailure)  # never retried, never bypassed


@unit
def test_the_tls_context_verifies_the_certificate_and_the_host_name() -> None:
    context = settings().tls_context()
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2


# -- the transport, scripted -----------------------------------------------------------------------------------
class Script:
    """What a scripted SMTP server answers: per command, a list of replies consumed one per call."""

    def __init__(self, **replies: list[tuple[int, bytes]]) -> None:
        self.replies = replies
        self.commands: list[str] = []
        self.sessions = 0
        self.extensions = {"starttls": "", "auth": "PLAIN LOGIN", "size": "10000000"}
        self.delivered: list[tuple[str, list[str], bytes]] = []
        self.connect_failures = 0

    def answer(self, command: str, default: tuple[int, bytes]) -> tuple[int, bytes]:
        self.commands.append(command)
        queue = self.replies.get(command.replace(" ", "_").lower())
        return queue.pop(0) if queue else default


def scripted_smtp(script: Script) -> type:
    class FakeSMTP:
        def __init__(self, host: str, port: int, local_hostname: str | None = None, timeout: float = 0) -> None:
            if script.connect_failures:
                script.connect_failures -= 1
                raise ConnectionRefusedError(111, "Connection refused")
            script.sessions += 1
            self.esmtp_features: dict[str, str] = {}
            self.tls = False
            self.rcpts: list[str] = []
            self.sender = ""

        def ehlo(self, name: str = "") -> tuple[int, bytes]:
            code, reply = script.answer("EHLO", (250, b"ok"))
            features = dict(script.extensions)
            if self.tls:
                features.pop("starttls", None)
            elif "starttls" in features:
                features.pop("auth", None)  # AUTH only once encrypted
            self.esmtp_features = features
            return code, reply

        def has_extn(self, name: str) -> bool:
            return name.lower() in self.esmtp_features

        def starttls(self, context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
            code, reply = script.answer("STARTTLS", (220, b"go ahead"))
            self.tls = code == 220
            return code, reply

        def login(self, user: str, password: str) -> tuple[int, bytes]:
            code, reply = script.answer("AUTH", (235, b"ok"))
            if code != 235:
                raise smtplib.SMTPAuthenticationError(code, reply)
            return code, reply

        def mail(self, sender: str, options: list[str] = []) -> tuple[int, bytes]:  # noqa: B006
            self.sender, self.rcpts = sender, []
            return script.answer("MAIL FROM", (250, b"ok"))

        def rcpt(self, recipient: str) -> tuple[int, bytes]:
            code, reply = script.answer(f"RCPT {recipient}", (250, b"ok"))
            if code == 250:
                self.rcpts.append(recipient)
            return code, reply

        def rset(self) -> tuple[int, bytes]:
            return script.answer("RSET", (250, b"ok"))

        def data(self, data: bytes) -> tuple[int, bytes]:
            code, reply = script.answer("DATA", (250, b"queued"))
            if code == 250:
                script.delivered.append((self.sender, list(self.rcpts), data))
            return code, reply

        def quit(self) -> tuple[int, bytes]:
            return 221, b"bye"

        def close(self) -> None:
            pass

    return FakeSMTP


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    script = Script()
    monkeypatch.setattr(smtplib, "SMTP", scripted_smtp(script))
    return script


@unit
def test_starttls_then_auth_then_one_message(script: Script) -> None:
    result = email_channel(settings()).deliver(digest())
    assert result.to_dict() == ChannelResult("ops-mail", "email", sent=True, messages=1).to_dict()
    assert script.commands[:4] == ["EHLO", "STARTTLS", "EHLO", "AUTH"]
    [(sender, rcpts, data)] = script.delivered
    assert (sender, rcpts) == (SENDER, list(RECIPIENTS))
    assert parse(data)["Subject"].startswith("tlsguard: ")


@unit
def test_no_starttls_no_auth_no_mail(script: Script) -> None:
    script.extensions.pop("starttls")
    result = email_channel(settings()).deliver(digest())
    assert not result.sent and "does not offer STARTTLS" in result.error
    assert "AUTH" not in script.commands and "MAIL FROM" not in script.commands
    assert result.retries == 0


@unit
def test_a_4xx_is_retried_on_a_fresh_connection_then_delivered(script: Script) -> None:
    script.replies["mail_from"] = [(451, b"4.3.0 try again later")]
    script.connect_failures = 1
    result = email_channel(settings()).deliver(digest())
    assert result.sent and result.messages == 1 and result.retries == 2 and not result.error
    assert script.sessions == 2 and len(script.delivered) == 1


@unit
def test_a_4xx_that_persists_is_a_failed_delivery_with_its_code(script: Script) -> None:
    script.replies["data"] = [(452, b"4.3.1 insufficient storage")] * 5
    result = email_channel(settings()).deliver(digest())
    assert not result.sent and result.retries == 2
    assert result.error == "SMTP DATA: 452 4.3.1 insufficient storage"


@unit
def test_a_5xx_is_not_retried(script: Script) -> None:
    script.replies["mail_from"] = [(550, b"5.7.1 sender not allowed")]
    result = email_channel(settings()).deliver(digest())
    assert (result.sent, result.retries, result.error) == (False, 0, "SMTP MAIL FROM: 550 5.7.1 sender not allowed")
    assert "RCPT ops@example.com" not in script.commands


@unit
def test_a_recipient_refused_for_good_fails_the_delivery_the_others_still_get_it(script: Script) -> None:
    script.replies["rcpt_sec@example.com"] = [(550, b"5.1.1 no such user")]
    result = email_channel(settings()).deliver(digest())
    assert not result.sent and result.messages == 1
    assert result.error == "SMTP RCPT TO: recipients refused: sec@example.com: 550 5.1.1 no such user"
    [(_, rcpts, _)] = script.delivered
    assert rcpts == ["ops@example.com"]


@unit
def test_a_recipient_refused_for_now_retries_the_whole_message(script: Script) -> None:
    script.replies["rcpt_sec@example.com"] = [(450, b"4.2.1 mailbox busy")]
    result = email_channel(settings()).deliver(digest())
    assert result.sent and result.retries == 1
    assert "RSET" in script.commands
    [(_, rcpts, _)] = script.delivered  # nobody got it twice
    assert rcpts == list(RECIPIENTS)


@unit
def test_a_wrong_password_is_reported_with_the_code_and_never_the_password(script: Script) -> None:
    echo = base64.b64encode(f"\0{SENDER}\0{PASSWORD}".encode())
    script.replies["auth"] = [(535, b"5.7.8 authentication failed for " + echo)]
    result = email_channel(settings()).deliver(digest())
    assert not result.sent and result.error.startswith("SMTP AUTH: 535 5.7.8 authentication failed")
    assert PASSWORD not in str(result.to_dict()) and echo.decode() not in result.error


@unit
def test_a_non_ascii_recipient_without_smtputf8_is_reported_the_others_are_served(script: Script) -> None:
    result = email_channel(settings(recipients=("ops@example.com", "运维@example.com"))).deliver(digest())
    assert not result.sent and result.messages == 1
    assert result.error == ("SMTP RCPT TO: recipients refused: 运维@example.com: not ASCII and the server does not "
                            "offer SMTPUTF8")
    [(_, rcpts, data)] = script.delivered
    assert rcpts == ["ops@example.com"] and max(data) < 128


@unit
def test_the_server_size_limit_splits_the_digest(script: Script) -> None:
    source = digest(needs=20, remediated=20, resolved=0, detail="w" * 300)
    whole = len(channel.wire_bytes(channel.compose(view(source, "en"), SENDER, RECIPIENTS)))
    script.extensions["size"] = str(whole // 2)
    result = email_channel(settings()).deliver(source)
    assert result.sent and result.messages == len(script.delivered) >= 2
    assert all(len(data) <= whole // 2 for _, _, data in script.delivered)
    assert script.sessions == 1  # every part over one session


@unit
def test_the_deadline_bounds_the_retries(script: Script) -> None:
    ticks = iter(range(0, 1000, 50))
    script.replies["mail_from"] = [(421, b"4.7.0 busy")] * 5
    result = email_channel(settings(), deadline_seconds=60, clock=lambda: float(next(ticks))).deliver(digest())
    assert not result.sent and "gave up after 60 s" in result.error and "421" in result.error


@unit
def test_messages_are_rate_limited_per_channel(script: Script) -> None:
    waits: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(1.0, burst=2.0, clock=lambda: now[0], sleep=sleep)
    smtp = email_channel(settings(), limiter=bucket)
    for _ in range(3):
        assert smtp.deliver(digest()).sent
    assert waits == [1.0]
    assert channel.shared_limiter("a", settings()) is channel.shared_limiter("a", settings())
    assert channel.shared_limiter("a", settings()) is not channel.shared_limiter("b", settings())


# -- against localcloud's SMTP sink ------------------------------------------------------------------------------
SINK_USER = "alerts@localcloud.test"
SINK_PASSWORD = "lc-smtp-Passw0rd-secret"


def control(endpoints: dict[str, Any], method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    import json
    import urllib.request

    request = urllib.request.Request(endpoints["control"] + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def sink(endpoints: dict[str, Any]) -> dict[str, Any]:
    control(endpoints, "POST", "/smtp/users", {"username": SINK_USER, "password": SINK_PASSWORD})
    return endpoints


def sink_settings(endpoints: dict[str, Any], **overrides: Any) -> channel.SmtpSettings:
    values: dict[str, Any] = {"host": endpoints["smtp"]["host"], "port": endpoints["smtp"]["port"],
                              "sender": SINK_USER, "recipients": ("ops@example.com", "运维@example.com"),
                              "username": SINK_USER, "password": SINK_PASSWORD, "timeout_seconds": 10.0,
                              "ca_bundle": endpoints["ca_bundle"]}
    values.update(overrides)
    return channel.SmtpSettings(**values)


@pytest.fixture
def tlsguard_logs(caplog: pytest.LogCaptureFixture) -> Any:
    import logging

    logger = logging.getLogger("tlsguard")  # tlsguard's logger does not propagate: listen on it directly
    caplog.set_level(logging.DEBUG, logger="tlsguard")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_a_digest_is_delivered_through_starttls_and_auth(sink: dict[str, Any], language: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SINK_PASSWORD", SINK_PASSWORD)
    spec = ChannelSpec(f"mail-{language}", "email", secret_env="TEST_SINK_PASSWORD",
                       options={"smtp_host": sink["smtp"]["host"], "smtp_port": sink["smtp"]["port"],
                                "from": SINK_USER, "to": ["ops@example.com", "sec@example.com"],
                                "timeout_seconds": 10, "ca_bundle": sink["ca_bundle"]})
    from tlsguard.alerts.channels import build_channel

    result = build_channel(spec, language).deliver(digest())
    assert result.to_dict() == {"name": f"mail-{language}", "type": "email", "sent": True, "messages": 1,
                                "items": 0, "error": None, "retries": 0}
    [recorded] = control(sink, "GET", "/smtp/messages")
    assert recorded["tls"] is True and recorded["username"] == SINK_USER
    assert recorded["mail_from"] == SINK_USER and recorded["rcpt_tos"] == ["ops@example.com", "sec@example.com"]
    assert recorded["content_type"] == "multipart/alternative"
    expected = view(digest(), language)
    assert recorded["subject"] == expected.title
    assert expected.title in recorded["text"] and expected.title in recorded["html"]
    heading = "Needs a person" if language == "en" else "需要人工处理"
    assert heading in recorded["text"] and f"<h3>{heading}</h3>" in recorded["html"]
    assert "tlsguard undo j-need-000" in recorded["text"]
    assert ["Content-Language", language] in recorded["headers"]
    assert any(option.startswith("SIZE=") for option in recorded["mail_options"])


def test_a_non_ascii_recipient_goes_through_smtputf8(sink: dict[str, Any]) -> None:
    result = email_channel(sink_settings(sink)).deliver(digest())
    assert result.sent, result.error
    [recorded] = control(sink, "GET", "/smtp/messages")
    assert recorded["rcpt_tos"] == ["ops@example.com", "运维@example.com"]
    assert "SMTPUTF8" in recorded["mail_options"]
    assert "运维@example.com" in recorded["to"]


def test_a_wrong_password_fails_with_the_smtp_code_and_shows_the_password_nowhere(
        sink: dict[str, Any], tlsguard_logs: pytest.LogCaptureFixture) -> None:
    import logging

    from tlsguard.alerts.channels import Dispatcher
    from tlsguard.alerts.path import AlertPath
    from tlsguard.log import JsonFormatter, register_secret
    from tlsguard.policy.model import AlertSettings

    wrong = "Wr0ng-smtp-password-4711"
    register_secret(wrong)  # as build() does through env_value
    smtp = email_channel(sink_settings(sink, password=wrong, recipients=("ops@example.com",)))
    delivery = AlertPath(None, Dispatcher([smtp]), AlertSettings(), clock=lambda: 0.0).send(digest())
    [result] = delivery.channels
    assert not result.sent and result.retries == 0  # a 5xx is not retried
    assert result.error.startswith("SMTP AUTH: 535"), result.error
    assert control(sink, "GET", "/smtp/messages") == []
    shown = [str(delivery.to_dict()), repr(result), delivery.error]
    shown += [JsonFormatter().format(record) for record in tlsguard_logs.records]
    assert any("digest not delivered" in line and "535" in line for line in shown)
    encoded = base64.b64encode(wrong.encode()).decode()
    for line in shown:
        assert wrong not in line and encoded not in line
    assert all(wrong not in r.getMessage() for r in tlsguard_logs.records if r.levelno >= logging.DEBUG)


def test_the_certificate_is_verified(sink: dict[str, Any]) -> None:
    result = email_channel(sink_settings(sink, ca_bundle="")).deliver(digest())  # certifi's roots only
    assert not result.sent and result.error.startswith("SMTP TLS: certificate not trusted"), result.error
    assert result.retries == 0 and control(sink, "GET", "/smtp/messages") == []


def test_the_server_size_limit_splits_a_big_digest_into_parts(sink: dict[str, Any]) -> None:
    source = digest(needs=25, remediated=25, resolved=25, detail="d" * 400)
    whole = len(channel.wire_bytes(channel.compose(view(source, "zh-CN"), SINK_USER, ["ops@example.com"])))
    limit = whole // 3
    control(sink, "PUT", "/smtp/limits", {"max_message_size": limit})
    result = email_channel(sink_settings(sink, recipients=("ops@example.com",)), "zh-CN").deliver(source)
    assert result.sent and result.messages >= 3, result.error
    recorded = control(sink, "GET", "/smtp/messages")
    assert len(recorded) == result.messages
    for index, message in enumerate(recorded, start=1):
        assert message["size"] <= limit
        assert message["subject"].endswith(f"（第 {index}/{len(recorded)} 部分）")
        assert message["text"] and message["html"]
    assert "need-000" in recorded[0]["text"] and "need-024" in "".join(m["text"] for m in recorded)
    first_other = min(i for i, m in enumerate(recorded) if "fixed-" in m["text"] or "gone-" in m["text"])
    assert all("need-" not in m["text"] for m in recorded[first_other + 1:])  # what needs a person came first


def test_the_configured_size_limit_applies_below_the_servers(sink: dict[str, Any]) -> None:
    source = digest(needs=10, remediated=10, resolved=0, detail="e" * 400)
    result = email_channel(sink_settings(sink), max_bytes=12_000).deliver(source)
    assert result.sent and result.messages >= 2
    assert all(m["size"] <= 12_000 for m in control(sink, "GET", "/smtp/messages"))


# -- small aiosmtpd servers: no STARTTLS, refusing recipients, implicit TLS, silent --------------------------------
class MiniServer:
    """An aiosmtpd server on an ephemeral loopback port that records what reached it."""

    def __init__(self, *, tls: ssl.SSLContext | None = None, implicit: bool = False,
                 rcpt: dict[str, list[str]] | None = None) -> None:
        import socket

        self.seen: dict[str, list[Any]] = {"auth": [], "mail": [], "rcpt": [], "data": []}
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.tls, self.implicit, self.rcpt_answers = tls, implicit, rcpt or {}
        self.controller: Any = None

    def __enter__(self) -> MiniServer:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import SMTP, AuthResult

        seen, answers, tls, implicit, listener = self.seen, self.rcpt_answers, self.tls, self.implicit, self.listener

        class Handler:
            async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
                seen["mail"].append(address)
                envelope.mail_from = address
                return "250 OK"

            async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
                seen["rcpt"].append(address)
                queue = answers.get(address)
                if queue:
                    return queue.pop(0)
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                seen["data"].append((list(envelope.rcpt_tos), envelope.content))
                return "250 OK"

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
            seen["auth"].append(auth_data.login)
            return AuthResult(success=auth_data.password == SINK_PASSWORD.encode())

        class MiniController(Controller):
            def factory(self) -> SMTP:
                if tls is None:  # offers AUTH in the clear, and no STARTTLS at all
                    return SMTP(self.handler, auth_require_tls=False, authenticator=authenticator)
                return SMTP(self.handler, tls_context=None if implicit else tls, require_starttls=not implicit,
                            auth_required=True, auth_require_tls=not implicit, authenticator=authenticator)

            def _create_server(self) -> Any:
                return self.loop.create_server(self._factory_invoker, sock=listener, ssl=self.ssl_context)

        self.controller = MiniController(Handler(), hostname="127.0.0.1", port=self.port, ready_timeout=10,
                                         ssl_context=tls if implicit else None)
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


@pytest.fixture
def server_tls(cloud: Any, tmp_path: Any) -> ssl.SSLContext:
    """A server context with a certificate from localcloud's CA for 127.0.0.1 (the sink's kind of certificate)."""
    from localcloud.smtp import issue_server_certificate

    chain, key = issue_server_certificate(cloud, "127.0.0.1", tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(chain), str(key))
    return context


def mini_settings(endpoints: dict[str, Any], port: int, **overrides: Any) -> channel.SmtpSettings:
    return sink_settings(endpoints, **{"port": port, "recipients": ("ops@example.com", "nobody@example.com"),
                                       **overrides})


def test_a_server_without_starttls_is_refused_before_auth() -> None:
    with MiniServer() as server:
        result = email_channel(settings(host="127.0.0.1", port=server.port)).deliver(digest())
    assert not result.sent and result.retries == 0
    assert result.error == (f"SMTP STARTTLS: 127.0.0.1:{server.port} does not offer STARTTLS; refusing to send "
                            "credentials or mail in plain text")
    assert server.seen == {"auth": [], "mail": [], "rcpt": [], "data": []}


def test_a_refused_recipient_is_reported_with_its_code(endpoints: dict[str, Any],
                                                       server_tls: ssl.SSLContext) -> None:
    answers = {"nobody@example.com": ["550 5.1.1 <nobody@example.com>: Recipient address rejected"]}
    with MiniServer(tls=server_tls, rcpt=answers) as server:
        result = email_channel(mini_settings(endpoints, server.port)).deliver(digest())
    assert not result.sent and result.messages == 1 and result.retries == 0
    assert result.error == ("SMTP RCPT TO: recipients refused: nobody@example.com: 550 5.1.1 "
                            "<nobody@example.com>: Recipient address rejected")
    [(rcpts, _)] = server.seen["data"]
    assert rcpts == ["ops@example.com"]  # the other recipient still has the digest
    assert server.seen["auth"] == [SINK_USER.encode()]


def test_a_recipient_refused_for_now_is_retried_and_delivered_once(endpoints: dict[str, Any],
                                                                    server_tls: ssl.SSLContext) -> None:
    answers = {"nobody@example.com": ["451 4.3.0 try again later"]}
    with MiniServer(tls=server_tls, rcpt=answers) as server:
        result = email_channel(mini_settings(endpoints, server.port)).deliver(digest())
    assert result.sent and result.retries == 1, result.error
    assert [rcpts for rcpts, _ in server.seen["data"]] == [["ops@example.com", "nobody@example.com"]]
    assert len(server.seen["auth"]) == 2  # the retry ran on a fresh, re-authenticated connection


# aiosmtpd counts only STARTTLS as TLS; here the whole connection is TLS from the first byte.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls_on_the_smtps_port(endpoints: dict[str, Any], server_tls: ssl.SSLContext) -> None:
    with MiniServer(tls=server_tls, implicit=True) as server:
        result = email_channel(mini_settings(endpoints, server.port, implicit_tls=True)).deliver(digest())
    assert result.sent, result.error
    [(rcpts, content)] = server.seen["data"]
    assert rcpts == ["ops@example.com", "nobody@example.com"] and b"multipart/alternative" in content


def test_a_silent_server_times_out_within_the_bound() -> None:
    import socket
    import time

    listener = socket.create_server(("127.0.0.1", 0))  # accepts connections (backlog), never greets
    try:
        port = listener.getsockname()[1]
        started = time.monotonic()
        result = email_channel(settings(host="127.0.0.1", port=port, timeout_seconds=0.5)).deliver(digest())
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert not result.sent and result.retries == 2
    assert "timed out" in result.error and result.error.startswith("SMTP connect:"), result.error
    assert elapsed < 3 * 0.5 + 1.0


@unit
def test_an_email_channel_in_a_policy_file_loads_and_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    from tlsguard.alerts.channels import build_dispatcher
    from tlsguard.policy.loader import parse_policy

    policy = parse_policy("""
version: 1
defaults: {tls_versions: [TLSv1.2, TLSv1.3]}
alerts:
  language: zh-CN
  channels:
    - name: ops-mail
      type: email
      smtp_host: smtpdm.aliyun.com
      smtp_port: 80
      username_env: TEST_DM_USER
      secret_env: TEST_DM_PASSWORD
      from: alerts@mail.example.com
      to: [ops@example.com]
      timeout_seconds: 10
      ca_bundle: /etc/tlsguard/ca.pem
  routes:
    - match: {severity: [critical, high]}
      channels: [ops-mail]
""")
    [spec] = policy.alerts.channels
    assert spec.options["ca_bundle"] == "/etc/tlsguard/ca.pem"
    monkeypatch.setenv("TEST_DM_USER", "alerts@mail.example.com")
    monkeypatch.setenv("TEST_DM_PASSWORD", PASSWORD)
    dispatcher = build_dispatcher(policy.alerts)
    assert dispatcher is not None
    [built] = dispatcher.channels
    assert isinstance(built, channel.EmailChannel) and built.language == "zh-CN"
    assert (built.settings.port, built.settings.ca_bundle) == (80, "/etc/tlsguard/ca.pem")
    with pytest.raises(ConfigError, match="ca_bundle"):
        parse_policy("""
version: 1
defaults: {tls_versions: [TLSv1.2]}
alerts:
  channels:
    - {name: m, type: email, smtp_host: h, from: a@b.c, to: [d@e.f], ca_bundle: ""}
""")


@unit
def test_the_examples_commented_alerts_block_is_a_valid_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from tlsguard.policy.loader import load_policy, parse_policy

    path = Path(__file__).resolve().parents[3] / "examples" / "tlsguard.yaml"
    assert load_policy(path).alerts.channels == ()  # commented out: the example loads without the variables
    text = path.read_text()
    start = text.index("# alerts:")
    block = "\n".join(line[2:] for line in text[start:].splitlines())
    policy = parse_policy(text[:start] + block + "\n")
    assert [c.type for c in policy.alerts.channels] == ["dingtalk", "email", "webhook"]
    mail = next(c for c in policy.alerts.channels if c.type == "email")
    monkeypatch.setenv(mail.secret_env, PASSWORD)
    built = channel.build(mail, policy.alerts.language)
    assert (built.settings.host, built.settings.port, built.settings.username) == (
        "smtpdm.aliyun.com", 465, "alerts@mail.example.com")
