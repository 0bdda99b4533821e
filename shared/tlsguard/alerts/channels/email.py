"""Email over SMTP: one digest as a multipart/alternative message (plain text and HTML), over TLS only, with AUTH.

Transport (RFC 5321 replies, RFC 3207 STARTTLS, RFC 8314 implicit TLS):

* **TLS always, the certificate verified.** Port 465 speaks TLS from the first byte (implicit TLS); any other port
  must offer STARTTLS after EHLO, or the channel refuses to go on: neither the credentials nor the mail ever cross
  the network in plain text. The server's certificate is verified against ``ca_bundle`` (a PEM file; localcloud's
  SMTP sink has a certificate from localcloud's CA) or, without it, certifi's roots, and must name ``smtp_host``.
* **AUTH** with the user from ``username_env`` (default: the ``from`` address, which is what Alibaba Cloud
  DirectMail requires) and the password from ``secret_env``; the password is registered with the log masker and is
  scrubbed (with its base64 forms, as AUTH PLAIN and LOGIN send it) from every error the channel reports.
* **Every reply checked.** EHLO, STARTTLS, AUTH, MAIL FROM, each RCPT TO and the end of DATA: a 4xx reply, a dropped
  connection or a timeout is transient and retried with backoff (:mod:`tlsguard.retry`) on a fresh connection; a
  5xx reply is a failed delivery reported with its code and text. A recipient refused with a 5xx fails the delivery
  (naming the recipient and the code) while the others still get the message; a recipient refused with a 4xx makes
  the whole message be retried, so nobody gets it twice because of that.
* **Limits.** A message larger than ``max_bytes`` (default 1 MiB, or the server's smaller EHLO ``SIZE``) is split
  into parts, the items that need a person first, each titled "part i of n"; at most :data:`MAX_PARTS` parts unless
  what needs a person takes more (other items left over are counted as omitted: they are in the run's report).
  Messages per channel are rate limited (:data:`MESSAGES_PER_MINUTE`, bursts of :data:`MAX_PARTS`: tlsguard's own
  choice, DirectMail documents no SMTP rate), each socket operation has ``timeout_seconds`` and the whole delivery a
  deadline (:data:`DEADLINE_SECONDS`).
* **Encoding.** UTF-8 text and HTML parts, quoted-printable or base64 (7-bit on the wire), RFC 2047 headers; an
  address beyond ASCII goes only through a server that offers SMTPUTF8. Every text of the digest is HTML-escaped in
  the HTML part (:func:`html_safe`).

Alibaba Cloud DirectMail's SMTP interface: ``smtpdm.aliyun.com`` (China (Hangzhou); other regions have their own
``smtpdm-<region>.aliyuncs.com``), port 80 or 25 with STARTTLS, or 465 with implicit TLS (port 25 is blocked on
ECS); the user name is the sender address and the password is the SMTP password set for it in the console; a
message may be at most 15 MB (https://help.aliyun.com/en/direct-mail/user-guide/send-emails-using-smtp,
https://www.alibabacloud.com/help/pt-br/direct-mail/smtp-endpoints,
https://alibabacloud.com/help/en/direct-mail/how-can-i-send-emails-with-attachments-using-smtp).

A retry after the end of DATA was sent but its reply was lost can deliver a message twice; a digest delivered twice
is better than one lost.
"""

from __future__ import annotations

import base64
import dataclasses
import email.policy
import functools
import ssl
import threading
import time
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from typing import TYPE_CHECKING, Any

from tlsguard.alerts.channels import ChannelResult, env_value
from tlsguard.errors import ConfigError, TlsguardError, Transient
from tlsguard.log import get_logger, mask_secrets
from tlsguard.ratelimit import TokenBucket
from tlsguard.retry import RetryPolicy, call_with_retries

if TYPE_CHECKING:
    import smtplib
    from collections.abc import Callable, Sequence

    from tlsguard.alerts.render import DigestView, ItemView
    from tlsguard.policy.model import ChannelSpec

log = get_logger("tlsguard.alerts.email")

#: Implicit TLS (RFC 8314); every other port must offer STARTTLS.
IMPLICIT_TLS_PORT = 465
DEFAULT_PORT = IMPLICIT_TLS_PORT
DEFAULT_TIMEOUT_SECONDS = 10.0
#: Largest message sent (bytes on the wire, headers included); the server's EHLO SIZE lowers it.
DEFAULT_MAX_BYTES = 1024 * 1024
#: A digest too big for one message is sent in at most this many parts.
MAX_PARTS = 10
#: Messages per minute per channel (bursts of MAX_PARTS: one split digest never waits).
MESSAGES_PER_MINUTE = 20.0
#: The whole delivery (connections, retries, every part) gives up after this long.
DEADLINE_SECONDS = 90.0
#: Serialization: CRLF, RFC 2047 headers, and a 7-bit body (quoted-printable or base64), so no server needs 8BITMIME.
POLICY = email.policy.SMTP.clone(cte_type="7bit")
_DETAIL_STEPS = (2000, 500, 100)

_limiters: dict[tuple[str, str, int, str], TokenBucket] = {}
_limiters_lock = threading.Lock()


class SmtpFailure(TlsguardError):
    """A delivery the server refused or that could not be made; ``code`` is the SMTP reply code (0 if none)."""

    def __init__(self, stage: str, message: str, code: int = 0) -> None:
        self.stage = stage
        self.code = code
        super().__init__(f"SMTP {stage}: {code} {message}" if code else f"SMTP {stage}: {message}")


# -- the message -----------------------------------------------------------------------------------------------
def ordered_items(items: Sequence[ItemView]) -> tuple[ItemView, ...]:
    """Items in the order a split digest fills its messages (render.PRIORITY: what needs a person first), the
    digest's order kept within a section."""
    from tlsguard.alerts.render import PRIORITY

    rank = {section: index for index, section in enumerate(PRIORITY)}
    return tuple(sorted(items, key=lambda item: rank.get(item.section, len(rank))))


def subject(digest_view: DigestView) -> str:
    if not digest_view.part:
        return digest_view.title
    if digest_view.language == "zh-CN":
        return f"{digest_view.title}（{digest_view.part}）"
    return f"{digest_view.title} ({digest_view.part})"


def compose(digest_view: DigestView, sender: str, recipients: Sequence[str], *, now: float | None = None
            ) -> EmailMessage:
    """One message: the view as plain text and HTML (multipart/alternative, UTF-8), subject its title."""
    from tlsguard.alerts.render import render

    message = EmailMessage(policy=POLICY)
    message["Subject"] = subject(digest_view)
    message["From"] = formataddr(("tlsguard", sender))
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(datetime.fromtimestamp(time.time() if now is None else now, timezone.utc))
    message["Message-ID"] = make_msgid("tlsguard", domain=sender.rpartition("@")[2] or "tlsguard.invalid")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to an alert
    if digest_view.critical:
        message["Importance"] = "high"
        message["X-Priority"] = "1"
    message.set_content(render(digest_view, "text.j2") + "\n", subtype="plain", charset="utf-8")
    message.add_alternative(render(html_safe(digest_view), "html.j2") + "\n", subtype="html", charset="utf-8")
    message["Content-Language"] = digest_view.language  # after the content: set_content clears Content-* headers
    return message


def html_safe(digest_view: DigestView) -> DigestView:
    """The view with every text it carries HTML-escaped (as ``Markup``, which an autoescaping template leaves
    alone): a bucket name, an actor or a message never becomes markup in the HTML part."""
    from markupsafe import escape

    def safe(item: ItemView) -> ItemView:
        texts = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
        return dataclasses.replace(item, **{name: escape(value) for name, value in texts.items()
                                            if isinstance(value, str)})

    return dataclasses.replace(digest_view, title=escape(digest_view.title), summary=escape(digest_view.summary),
                               run=escape(digest_view.run), part=escape(digest_view.part),
                               items=tuple(safe(item) for item in digest_view.items))


def wire_bytes(message: EmailMessage, *, utf8: bool = False) -> bytes:
    """The message as DATA carries it; ``utf8``: headers in UTF-8 (an SMTPUTF8 transaction, RFC 6532)."""
    return message.as_bytes(policy=POLICY.clone(utf8=True) if utf8 else POLICY)


def split(digest_view: DigestView, fits: Callable[[DigestView], bool], max_parts: int = MAX_PARTS
          ) -> list[DigestView]:
    """The view as parts that each ``fits``, needs-a-person items first, each labelled "part i of n".

    Each part takes the longest run of the remaining items that fits (found by doubling, then bisection); a single
    item that cannot fit alone has its detail shortened. Beyond ``max_parts`` only what needs a person is still
    sent (render.PERSON_SECTIONS); the other items left are counted in the last part's "omitted" line (they are
    in the run's report).
    """
    from tlsguard.alerts.render import PERSON_SECTIONS, text

    if fits(digest_view):
        return [digest_view]
    language = digest_view.language
    widest = text(language, "part", i=max(99, max_parts), n=max(99, max_parts))  # no label is longer

    def probe(chunk: tuple[ItemView, ...]) -> bool:
        return fits(digest_view.with_items(chunk, part=widest, omitted=digest_view.omitted))

    remaining = ordered_items(digest_view.items)
    chunks: list[tuple[ItemView, ...]] = []
    dropped = 0
    while remaining:
        if len(chunks) >= max_parts:  # past the cap only what needs a person is still sent
            person = tuple(item for item in remaining if item.section in PERSON_SECTIONS)
            dropped += len(remaining) - len(person)
            remaining = person
            if not remaining:
                break
        fitting, failing = 0, len(remaining)  # remaining[:fitting] fits, remaining[:failing] does not (or is all)
        if probe(remaining):
            fitting = failing
        step = 1
        while step < failing and fitting < failing:
            if probe(remaining[:step]):
                fitting, step = step, step * 2
            else:
                failing = step
        while failing - fitting > 1:
            middle = (fitting + failing) // 2
            if probe(remaining[:middle]):
                fitting = middle
            else:
                failing = middle
        if fitting == 0:
            chunks.append((_shortened(remaining[0], probe),))
            remaining = remaining[1:]
        else:
            chunks.append(remaining[:fitting])
            remaining = remaining[fitting:]
    total = len(chunks)
    return [digest_view.with_items(chunk, part=text(language, "part", i=index, n=total),
                                   omitted=digest_view.omitted + dropped if index == total else 0)
            for index, chunk in enumerate(chunks, start=1)]


def _shortened(item: ItemView, probe: Callable[[tuple[ItemView, ...]], bool]) -> ItemView:
    """An item too big for a message on its own, its detail cut until it fits (or as short as it gets)."""
    shorter = item
    for keep in _DETAIL_STEPS:
        if len(item.detail) > keep:
            shorter = dataclasses.replace(item, detail=item.detail[:keep] + "…")
            if probe((shorter,)):
                break
    return shorter


def build_messages(digest_view: DigestView, sender: str, recipients: Sequence[str], *,
                   max_bytes: int = DEFAULT_MAX_BYTES, max_parts: int = MAX_PARTS,
                   now: float | None = None) -> list[EmailMessage]:
    """The messages one digest is sent as: one if it fits in ``max_bytes``, else parts (:func:`split`)."""
    stamp = time.time() if now is None else now

    def fits(candidate: DigestView) -> bool:
        return len(wire_bytes(compose(candidate, sender, recipients, now=stamp))) <= max_bytes

    return [compose(part, sender, recipients, now=stamp) for part in split(digest_view, fits, max_parts)]


# -- the transport ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    username: str
    password: str = dataclasses.field(repr=False)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    ca_bundle: str = ""
    implicit_tls: bool = False  # TLS from the first byte (port 465); otherwise STARTTLS, required

    def tls_context(self) -> ssl.SSLContext:
        if self.ca_bundle:
            context = ssl.create_default_context(cafile=self.ca_bundle)
        else:
            import certifi

            context = ssl.create_default_context(cafile=certifi.where())
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context  # verifies the chain and the host name (check_hostname, CERT_REQUIRED)


class _Connection:
    """One SMTP session: connected, encrypted and authenticated on first use, dropped after a failure."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None
        self.size_limit = 0  # the server's EHLO SIZE (0: none announced)

    def open(self) -> smtplib.SMTP:
        if self.smtp is not None:
            return self.smtp
        import smtplib
        import socket

        s = self.settings
        context = s.tls_context()
        name = socket.gethostname() or "localhost"  # never getfqdn(): a reverse DNS lookup can stall
        smtp: smtplib.SMTP
        if s.implicit_tls:
            smtp = smtplib.SMTP_SSL(s.host, s.port, local_hostname=name, timeout=s.timeout_seconds, context=context)
        else:
            smtp = smtplib.SMTP(s.host, s.port, local_hostname=name, timeout=s.timeout_seconds)
        self.smtp = smtp
        _expect("EHLO", smtp.ehlo(), 250)
        if not s.implicit_tls:
            if not smtp.has_extn("starttls"):
                raise SmtpFailure("STARTTLS", f"{s.host}:{s.port} does not offer STARTTLS; refusing to send "
                                  "credentials or mail in plain text")
            _expect("STARTTLS", smtp.starttls(context=context), 220)
            _expect("EHLO", smtp.ehlo(), 250)
        if not smtp.has_extn("auth"):
            raise SmtpFailure("AUTH", f"{s.host}:{s.port} offers no AUTH")
        smtp.login(s.username, s.password)
        size = smtp.esmtp_features.get("size", "").strip()
        self.size_limit = int(size) if size.isdigit() else 0
        return smtp

    def send(self, message: EmailMessage) -> list[str]:
        """Send one message; returns the recipients refused for good (5xx), as ``address: code text``.

        An address beyond ASCII needs the server's SMTPUTF8 (RFC 6531): with it the envelope and the headers go
        as UTF-8; without it such a recipient is refused here (and reported), the others are still served.
        """
        smtp = self.open()
        s = self.settings
        recipients = list(s.recipients)
        refused: list[tuple[str, int, str]] = []
        utf8 = not all(address.isascii() for address in (s.sender, *recipients))
        if utf8 and not smtp.has_extn("smtputf8"):
            if not s.sender.isascii():
                raise SmtpFailure("MAIL FROM", f"the sender {s.sender} is not ASCII and the server does not offer "
                                  "SMTPUTF8")
            refused = [(address, 0, "not ASCII and the server does not offer SMTPUTF8")
                       for address in recipients if not address.isascii()]
            recipients = [address for address in recipients if address.isascii()]
            utf8 = False
        data = wire_bytes(message, utf8=utf8)
        options = [f"SIZE={len(data)}"] if smtp.has_extn("size") else []
        if utf8:
            smtp.command_encoding = "utf-8"
            options += ["SMTPUTF8", *(["BODY=8BITMIME"] if smtp.has_extn("8bitmime") else [])]
        _expect("MAIL FROM", smtp.mail(s.sender, options), 250)
        accepted: list[str] = []
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            if code in (250, 251):
                accepted.append(recipient)
            else:
                refused.append((recipient, code, _text(reply)))
        described = [f"{address}: {code} {reply}" if code else f"{address}: {reply}"
                     for address, code, reply in refused]
        if any(400 <= code < 500 for _, code, _ in refused) or not accepted:
            smtp.rset()
            worst = next((code for _, code, _ in refused if 400 <= code < 500), refused[0][1] if refused else 0)
            raise SmtpFailure("RCPT TO", "recipients refused: " + "; ".join(described), worst)
        _expect("DATA", smtp.data(data), 250)
        return described

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except Exception:  # a session that already failed: only the socket is left to close
            try:
                smtp.close()
            except Exception:
                pass


def _text(reply: bytes | str) -> str:
    value = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(value.split())[:300]


def _expect(stage: str, answer: tuple[int, bytes], *codes: int) -> None:
    code, reply = answer
    if code not in codes:
        raise SmtpFailure(stage, _text(reply), code)


class EmailChannel:
    """Implements :class:`tlsguard.alerts.channels.Channel` over SMTP."""

    type = "email"

    def __init__(self, name: str, settings: SmtpSettings, language: str = "en", *,
                 max_bytes: int = DEFAULT_MAX_BYTES, max_parts: int = MAX_PARTS,
                 retry: RetryPolicy | None = None, limiter: TokenBucket | None = None,
                 deadline_seconds: float = DEADLINE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.settings = settings
        self.language = language
        self.max_bytes = max_bytes
        self.max_parts = max_parts
        self.retry = retry or RetryPolicy(attempts=3, initial_seconds=0.5, max_seconds=4.0, jitter_seconds=0.5)
        self.limiter = limiter or shared_limiter(name, settings)
        self.deadline_seconds = deadline_seconds
        self.clock = clock

    def __repr__(self) -> str:
        s = self.settings
        return f"EmailChannel(name={self.name!r}, host={s.host!r}, port={s.port}, to={list(s.recipients)!r})"

    def deliver(self, digest: dict[str, Any]) -> ChannelResult:
        from tlsguard.alerts.render import view

        result = ChannelResult(self.name, self.type)
        deadline = self.clock() + self.deadline_seconds
        connection = _Connection(self.settings)
        refused: list[str] = []
        try:
            self._attempt(result, connection, deadline, "connect", connection.open)
            limit = min(self.max_bytes, connection.size_limit or self.max_bytes)
            messages = build_messages(view(digest, self.language), self.settings.sender, self.settings.recipients,
                                      max_bytes=limit, max_parts=self.max_parts)
            for message in messages:
                self.limiter.acquire()
                refused += self._attempt(result, connection, deadline, "send",
                                         functools.partial(connection.send, message))
                result.messages += 1
        except (SmtpFailure, Transient) as exc:
            result.error = self._scrub(str(exc))
        except Exception as exc:  # a channel never raises into a run
            result.error = self._scrub(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()
        if refused and not result.error:
            result.error = self._scrub("SMTP RCPT TO: recipients refused: " + "; ".join(refused))
        result.sent = not result.error
        if result.sent:
            log.info("email sent", extra={"channel": self.name, "messages": result.messages,
                                          "retries": result.retries})
        return result

    def _attempt(self, result: ChannelResult, connection: _Connection, deadline: float, what: str,
                 fn: Callable[[], Any]) -> Any:
        """``fn`` with retries on transient failures, each on a fresh connection, within the deadline."""
        tries = 0

        def once() -> Any:
            nonlocal tries
            tries += 1
            if tries > 1:
                result.retries += 1
                if self.clock() > deadline:
                    raise SmtpFailure(what, f"gave up after {self.deadline_seconds:g} s: {result.error}")
            try:
                return fn()
            except Exception as exc:
                failure = classify(exc, what)
                if isinstance(failure, Transient):
                    connection.close()
                    result.error = self._scrub(str(failure))
                    log.warning("email attempt failed", extra={"channel": self.name, "error": result.error,
                                                               "attempt": tries})
                raise failure from None

        value = call_with_retries(self.retry, once)
        result.error = ""
        return value

    def _scrub(self, text: str) -> str:
        return scrub(text, self.settings.username, self.settings.password)


def classify(exc: BaseException, what: str) -> SmtpFailure | Transient:
    """A transport failure as tlsguard reports it: :class:`Transient` (4xx, dropped, timed out) or a failure."""
    import smtplib

    if isinstance(exc, (SmtpFailure, Transient)):
        failure: SmtpFailure | Transient = exc
        code = exc.code if isinstance(exc, SmtpFailure) else 0
    elif isinstance(exc, smtplib.SMTPResponseException):
        stage = {smtplib.SMTPAuthenticationError: "AUTH", smtplib.SMTPSenderRefused: "MAIL FROM",
                 smtplib.SMTPDataError: "DATA", smtplib.SMTPConnectError: "connect",
                 smtplib.SMTPHeloError: "EHLO"}.get(type(exc), what)
        code = int(exc.smtp_code)
        failure = SmtpFailure(stage, _text(exc.smtp_error), code)
    elif isinstance(exc, smtplib.SMTPServerDisconnected):
        return Transient(f"SMTP {what}: connection closed: {exc}", service="smtp", operation=what)
    elif isinstance(exc, ssl.SSLCertVerificationError):
        return SmtpFailure("TLS", f"certificate not trusted: {getattr(exc, 'verify_message', '') or exc}")
    elif isinstance(exc, ssl.SSLEOFError):
        return Transient(f"SMTP TLS: connection closed: {exc}", service="smtp", operation=what)
    elif isinstance(exc, ssl.SSLError):
        return SmtpFailure("TLS", str(exc))
    elif isinstance(exc, (TimeoutError, ConnectionError, OSError)):
        return Transient(f"SMTP {what}: {type(exc).__name__}: {exc}", service="smtp", operation=what)
    elif isinstance(exc, smtplib.SMTPException):
        return SmtpFailure(what, str(exc))
    else:
        return SmtpFailure(what, f"{type(exc).__name__}: {exc}")
    if isinstance(failure, SmtpFailure) and 400 <= code < 500:
        return Transient(str(failure), service="smtp", operation=failure.stage, code=str(code), status=code)
    return failure


def scrub(text: str, username: str, password: str) -> str:
    """``text`` without the password, as itself or base64 as AUTH LOGIN and PLAIN send it (and registered secrets)."""
    if password:
        forms = {password, base64.b64encode(password.encode()).decode(),
                 base64.b64encode(f"\0{username}\0{password}".encode()).decode(),
                 base64.b64encode(f"{username}\0{username}\0{password}".encode()).decode()}
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "***")
    return mask_secrets(text)


def shared_limiter(name: str, settings: SmtpSettings) -> TokenBucket:
    """One token bucket per channel in this process (a warm function instance's runs share it)."""
    key = (name, settings.host, settings.port, settings.sender)
    with _limiters_lock:
        bucket = _limiters.get(key)
        if bucket is None:
            bucket = _limiters[key] = TokenBucket(MESSAGES_PER_MINUTE / 60.0, burst=float(MAX_PARTS))
        return bucket


def build(spec: ChannelSpec, language: str) -> EmailChannel:
    from tlsguard import settings as env

    options = spec.options
    field = f"alerts.channels.{spec.name}"
    host = str(options.get("smtp_host") or "")
    sender = str(options.get("from") or "")
    recipients = tuple(str(address) for address in options.get("to") or ())
    if not (host and sender and recipients):
        raise ConfigError(f"channel {spec.name!r} (email) needs smtp_host, from and to", field=field)
    username = sender
    username_env = str(options.get("username_env") or "")
    if username_env:
        username = env.env(username_env) or ""
        if not username:
            raise ConfigError(f"channel {spec.name!r}: the environment variable {username_env} (the SMTP user name) "
                              "is not set", field=field)
    password = env_value(spec, spec.secret_env, "the SMTP password (secret_env)")
    port = int(options.get("smtp_port") or DEFAULT_PORT)
    smtp = SmtpSettings(host, port, sender, recipients, username, password,
                        float(options.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS),
                        str(options.get("ca_bundle") or ""), implicit_tls=port == IMPLICIT_TLS_PORT)
    return EmailChannel(spec.name, smtp, language)
