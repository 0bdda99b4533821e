"""An SMTP submission sink on loopback (aiosmtpd): STARTTLS, AUTH LOGIN/PLAIN, SIZE, and a record of every message.

``cloud.smtp`` owns the mailboxes (``smtp_users`` in a seed, ``POST /smtp/users``), the message size limit and the
accepted messages (``GET /smtp/messages``). The server certificate is issued at start by localcloud's issuing CA
(``LocalCloud RSA Issuing CA 1``) for ``localhost`` and the bound address, so a client that trusts the endpoints
file's ``ca_bundle`` verifies it. Codes and RFCs are in ``docs/emulated/smtp.md``.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import threading
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable
    from email.message import MIMEPart
    from pathlib import Path

    from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

    from localcloud.cloud import LocalCloud

#: The message size limit advertised in EHLO (``SIZE``) and enforced on MAIL FROM and DATA (RFC 1870).
DEFAULT_MAX_MESSAGE_SIZE = 10 * 1024 * 1024
#: The name the server greets with.
SMTP_HOSTNAME = "localcloud-smtp"


def _not_login_data_deprecation(record: logging.LogRecord) -> bool:
    """aiosmtpd 1.4 logs a deprecation warning of its own on every successful AUTH; localcloud drops it."""
    return "login_data is deprecated" not in record.getMessage()


class SmtpSeedError(ValueError):
    """A mailbox that cannot be created; the message names the item and field."""


def issue_server_certificate(cloud: LocalCloud, host: str, directory: Path) -> tuple[Path, Path]:
    """(chain file, key file) for a server certificate for ``localhost``, 127.0.0.1 and ``host``.

    Signed by the factory's issuing CA, whose root is in the CA bundle; the chain file holds leaf and issuing CA.
    (The factory's own kinds carry DNS names only; SMTP clients connect to an IP address, so this leaf adds an
    IP address SAN.)
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    authority = cloud.certs.factory.issuing
    key = ec.generate_private_key(ec.SECP256R1())
    addresses = {ipaddress.ip_address("127.0.0.1")}
    try:
        addresses.add(ipaddress.ip_address(host))
    except ValueError:
        pass
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    names += [x509.IPAddress(address) for address in sorted(addresses, key=str)]
    now = cloud.clock.now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
                       critical=False)
        .sign(authority.key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    chain_path = directory / "smtp-chain.pem"
    key_path = directory / "smtp-key.pem"
    chain_path.write_text(cert.public_bytes(serialization.Encoding.PEM).decode("ascii") + authority.pem)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return chain_path, key_path


def _part_text(part: MIMEPart | None) -> str | None:
    if part is None:
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # unknown charset, undecodable payload: keep what can be read
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace").replace("\r\n", "\n") if isinstance(payload, bytes) else None
    # DATA carries lines as CRLF (RFC 5321's canonical form); the record keeps the text, not the transport.
    return content.replace("\r\n", "\n") if isinstance(content, str) else None


def parse_message(raw: bytes) -> dict[str, Any]:
    """Headers (decoded), subject, text and HTML parts and attachments of a message as DATA carried it."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    attachments = []
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        attachments.append({"filename": part.get_filename(), "content_type": part.get_content_type(),
                            "size": len(payload) if isinstance(payload, bytes) else 0})
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return {
        "headers": [[name, str(value)] for name, value in message.items()],
        "subject": str(message.get("subject", "")),
        "from": str(message.get("from", "")),
        "to": str(message.get("to", "")),
        "content_type": message.get_content_type(),
        "text": _part_text(text),
        "html": _part_text(html),
        "attachments": attachments,
    }


class SmtpSink:
    """Mailboxes, the size limit, accepted messages, and the aiosmtpd server (started by :meth:`start`)."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self.max_message_size = DEFAULT_MAX_MESSAGE_SIZE
        self.host = ""
        self.port = 0
        self._lock = threading.Lock()
        self._users: dict[str, str] = {}
        self._messages: list[dict[str, Any]] = []
        self._seq = 0
        self._controller: Any = None
        self._tls: ssl.SSLContext | None = None

    # -- mailboxes -----------------------------------------------------------------------------------------
    def add_user(self, spec: Any) -> str:
        if not isinstance(spec, dict) or set(spec) - {"username", "password"}:
            raise SmtpSeedError(f"a mailbox is {{username, password}}, got {spec!r}")
        username, password = spec.get("username"), spec.get("password")
        if not isinstance(username, str) or not username or not isinstance(password, str) or not password:
            raise SmtpSeedError(f"mailbox {username!r}: username and password must be non-empty strings")
        with self._lock:
            self._users[username] = password
        return username

    def seed(self, items: list[Any]) -> None:
        for index, spec in enumerate(items):
            try:
                self.add_user(spec)
            except SmtpSeedError as exc:
                raise SmtpSeedError(f"smtp_users[{index}]: {exc}") from None

    def users(self) -> list[str]:
        with self._lock:
            return sorted(self._users)

    def check(self, username: str, password: str) -> bool:
        with self._lock:
            expected = self._users.get(username)
        return expected is not None and expected == password

    # -- messages ------------------------------------------------------------------------------------------
    def record(self, session: Session, envelope: Envelope) -> dict[str, Any]:
        raw = envelope.original_content or b""
        parsed = parse_message(raw)
        with self._lock:
            self._seq += 1
            entry: dict[str, Any] = {
                "id": f"LC{self._seq:08d}",
                "seq": self._seq,
                "time": self.cloud.clock.time(),
                "peer": list(session.peer) if isinstance(session.peer, tuple) else session.peer,
                "username": session.auth_data,
                "tls": session.ssl is not None,
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "mail_options": list(envelope.mail_options),
                "size": len(raw),
                **parsed,
                "raw": raw.decode("utf-8", "replace"),
            }
            self._messages.append(entry)
            return dict(entry)

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._messages]

    def clear_messages(self) -> None:
        with self._lock:
            self._messages.clear()

    def reset(self) -> None:
        """Forget mailboxes and messages and restore the default size limit (the server keeps running)."""
        with self._lock:
            self._users.clear()
            self._messages.clear()
            self._seq = 0
        self.max_message_size = DEFAULT_MAX_MESSAGE_SIZE

    def snapshot(self) -> dict[str, Any]:
        return {"users": self.users(), "messages": len(self.messages()), "max_message_size": self.max_message_size,
                "host": self.host, "port": self.port}

    # -- server --------------------------------------------------------------------------------------------
    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if isinstance(auth_data, LoginPassword):
            username = auth_data.login.decode("utf-8", "replace")
            if self.check(username, auth_data.password.decode("utf-8", "replace")):
                return AuthResult(success=True, auth_data=username)
        return AuthResult(success=False, handled=False)

    def start(self, host: str, port: int = 0) -> int:
        """Listen on ``host:port`` (0: an ephemeral port); returns the port."""
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import SMTP

        mail_log = logging.getLogger("mail.log")
        if _not_login_data_deprecation not in mail_log.filters:
            mail_log.addFilter(_not_login_data_deprecation)
        chain, key = issue_server_certificate(self.cloud, host, self.cloud.state_dir / "smtp")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(chain), str(key))
        self._tls = context
        listener = socket.create_server((host, port), reuse_port=False)
        sink = self

        class _Handler:
            async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
                entry = sink.record(session, envelope)
                return f"250 2.0.0 OK: queued as {entry['id']}"

        class _Controller(Controller):
            def factory(self) -> SMTP:
                return SMTP(self.handler, hostname=SMTP_HOSTNAME, ident="localcloud ESMTP",
                            data_size_limit=sink.max_message_size, enable_SMTPUTF8=True, tls_context=context,
                            require_starttls=True, auth_required=True, auth_require_tls=True,
                            authenticator=sink._authenticate, timeout=60)

            def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
                return self.loop.create_server(self._factory_invoker, sock=listener)

        controller = _Controller(_Handler(), hostname=host, port=listener.getsockname()[1], ready_timeout=30)
        try:
            controller.start()
        except BaseException:
            listener.close()
            raise
        self._controller = controller
        self.host, self.port = host, int(listener.getsockname()[1])
        return self.port

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
