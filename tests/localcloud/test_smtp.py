"""SMTP sink: STARTTLS (RFC 3207), AUTH LOGIN/PLAIN (RFC 4954), SIZE (RFC 1870), and what it records.

Plain smtplib clients; each test states the behaviour it checks. Codes and sources: docs/emulated/smtp.md.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest

from tests.localcloud._chat_http import control

USER, PASSWORD = "alerts@acme.example", "s3cret-mailbox"


@pytest.fixture
def smtp(cloud: Any) -> Any:
    cloud.seed({"smtp_users": [{"username": USER, "password": PASSWORD}]})
    return cloud


def _client(cloud: Any) -> smtplib.SMTP:
    endpoint = cloud.endpoints["smtp"]
    client = smtplib.SMTP(endpoint["host"], endpoint["port"], timeout=10)
    client.ehlo()
    return client


def _tls(cloud: Any) -> ssl.SSLContext:
    """Trust exactly localcloud's CA bundle; hostname checking on (the client connects to 127.0.0.1)."""
    return ssl.create_default_context(cafile=cloud.endpoints["ca_bundle"])


def _secure(cloud: Any, login: bool = True) -> smtplib.SMTP:
    client = _client(cloud)
    client.starttls(context=_tls(cloud))
    client.ehlo()
    if login:
        client.login(USER, PASSWORD)
    return client


def _message(subject: str = "tlsguard: 2 drifted") -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"tlsguard <{USER}>"
    message["To"] = "ops@acme.example, sec@acme.example"
    message["Subject"] = subject
    message.set_content("2 drifted targets\nacme-prod: TLS 1.0 enabled\n")
    message.add_alternative("<h1>2 drifted targets</h1><p>acme-prod: TLS 1.0 enabled</p>\n", subtype="html")
    return message


def test_endpoints_name_the_loopback_smtp_port(cloud: Any) -> None:
    endpoint = cloud.endpoints["smtp"]
    assert set(endpoint) == {"host", "port"} and endpoint["host"] == "127.0.0.1" and endpoint["port"] > 0


def test_starttls_is_offered_and_the_certificate_chains_to_the_ca_bundle(smtp: Any) -> None:
    client = _client(smtp)
    try:
        assert client.has_extn("starttls")
        # RFC 3207 / RFC 4954: AUTH is not offered on the plaintext channel
        assert not client.has_extn("auth")
        code, _ = client.starttls(context=_tls(smtp))  # verifies the chain and the 127.0.0.1 IP SAN
        assert code == 220
        assert isinstance(client.sock, ssl.SSLSocket)
        issuer = dict(item[0] for item in client.sock.getpeercert()["issuer"])
        assert issuer["commonName"] == "LocalCloud RSA Issuing CA 1"
        client.ehlo()
        assert client.has_extn("auth") and {"LOGIN", "PLAIN"} <= set(client.esmtp_features["auth"].split())
    finally:
        client.quit()


def test_mail_before_starttls_is_refused_with_530(smtp: Any) -> None:
    client = _client(smtp)
    try:
        # RFC 3207 §4: "530 Must issue a STARTTLS command first"
        assert client.mail(USER) == (530, b"Must issue a STARTTLS command first")
        assert client.docmd("AUTH", "PLAIN")[0] == 530
        assert client.docmd("RCPT", "TO:<ops@acme.example>")[0] == 530
    finally:
        client.quit()
    assert smtp.smtp.messages() == []


def test_mail_before_auth_is_refused_with_530_5_7_0(smtp: Any) -> None:
    client = _secure(smtp, login=False)
    try:
        # RFC 4954 §6: 530 5.7.0 Authentication required
        assert client.mail(USER) == (530, b"5.7.0 Authentication required")
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            client.send_message(_message())
        assert info.value.smtp_code == 530
    finally:
        client.quit()
    assert smtp.smtp.messages() == []


def test_wrong_password_is_refused_with_535_5_7_8(smtp: Any) -> None:
    client = _secure(smtp, login=False)
    try:
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            client.login(USER, "wrong")
        assert info.value.smtp_code == 535 and info.value.smtp_error.startswith(b"5.7.8")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("nobody@acme.example", PASSWORD)
    finally:
        client.quit()


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_auth_login_and_plain_accept_a_seeded_mailbox(smtp: Any, mechanism: str) -> None:
    client = _secure(smtp, login=False)
    try:
        client.user, client.password = USER, PASSWORD
        authobject = client.auth_login if mechanism == "LOGIN" else client.auth_plain
        code, text = client.auth(mechanism, authobject, initial_response_ok=mechanism == "PLAIN")
        assert (code, text) == (235, b"2.7.0 Authentication successful")
        client.send_message(_message(f"via {mechanism}"))
    finally:
        client.quit()
    [entry] = smtp.smtp.messages()
    assert entry["username"] == USER and entry["subject"] == f"via {mechanism}"


def test_a_good_message_is_recorded_with_envelope_headers_and_both_parts(smtp: Any) -> None:
    client = _secure(smtp)
    try:
        refused = client.send_message(_message("tlsguard: 2 drifted — ünïcode"),
                                      to_addrs=["ops@acme.example", "sec@acme.example"])
        assert refused == {}
    finally:
        client.quit()
    [entry] = control(smtp, "GET", "/smtp/messages")
    assert entry["mail_from"] == USER
    assert entry["rcpt_tos"] == ["ops@acme.example", "sec@acme.example"]
    assert entry["tls"] is True and entry["username"] == USER
    assert entry["subject"] == "tlsguard: 2 drifted — ünïcode"  # RFC 2047 decoded
    headers = {name.lower(): value for name, value in entry["headers"]}
    assert headers["to"] == "ops@acme.example, sec@acme.example" and "multipart/alternative" in headers["content-type"]
    assert entry["content_type"] == "multipart/alternative"
    assert entry["text"] == "2 drifted targets\nacme-prod: TLS 1.0 enabled\n"
    assert entry["html"] == "<h1>2 drifted targets</h1><p>acme-prod: TLS 1.0 enabled</p>\n"
    assert entry["size"] > 0 and entry["id"].startswith("LC") and "Subject:" in entry["raw"]


def test_size_is_advertised_and_enforced_on_mail_from_and_on_data(smtp: Any) -> None:
    assert control(smtp, "PUT", "/smtp/limits", {"max_message_size": 4096}) == {"max_message_size": 4096}
    client = _secure(smtp)
    try:
        # RFC 1870: EHLO advertises SIZE <limit>; a declared SIZE above it is refused at MAIL FROM with 552
        assert client.esmtp_features["size"] == "4096"
        assert client.mail(USER, ["SIZE=4097"])[0] == 552
        client.rset()
        big = EmailMessage()
        big["From"], big["To"], big["Subject"] = USER, "ops@acme.example", "too big"
        big.set_content(("x" * 70 + "\n") * 90)  # 6,390 bytes of body
        with pytest.raises(smtplib.SMTPSenderRefused) as info:  # smtplib declares SIZE=<len> itself
            client.send_message(big)
        assert info.value.smtp_code == 552
        client.rset()
        # a client that declares nothing is refused after DATA (552 Too much mail data)
        assert client.mail(USER)[0] == 250 and client.rcpt("ops@acme.example")[0] == 250
        code, _ = client.data(big.as_bytes(policy=policy.SMTP))  # CRLF lines, as on the wire
        assert code == 552
        client.send_message(_message("fits"))
    finally:
        client.quit()
    assert [m["subject"] for m in smtp.smtp.messages()] == ["fits"]


def test_mailboxes_come_from_seed_or_control_and_reset_forgets_everything(smtp: Any) -> None:
    control(smtp, "POST", "/smtp/users", {"username": "second@acme.example", "password": "pw2"})
    assert control(smtp, "GET", "/smtp/users") == ["alerts@acme.example", "second@acme.example"]
    client = _secure(smtp, login=False)
    try:
        client.login("second@acme.example", "pw2")
        client.send_message(_message())
    finally:
        client.quit()
    assert len(smtp.smtp.messages()) == 1
    from localcloud.seed import SeedError

    with pytest.raises(SeedError, match=r"smtp_users\[0\]"):
        smtp.seed({"smtp_users": [{"username": "x"}]})
    control(smtp, "PUT", "/smtp/limits", {"max_message_size": 100})
    smtp.reset()
    assert smtp.smtp.users() == [] and smtp.smtp.messages() == []
    assert smtp.smtp.max_message_size == 10 * 1024 * 1024


def test_smtp_stops_cleanly_with_localcloud(tmp_path: Any) -> None:
    from localcloud.cloud import LocalCloud

    cloud = LocalCloud(state_dir=str(tmp_path))
    cloud.seed({"accounts": [{"id": "1", "access_keys": [{"id": "K", "secret": "S"}]}],
                "smtp_users": [{"username": USER, "password": PASSWORD}]})
    endpoints = cloud.start(tls=False)
    host, port = endpoints["smtp"]["host"], endpoints["smtp"]["port"]
    client = _secure(cloud)
    client.send_message(_message())
    client.quit()
    cloud.stop()
    assert cloud.smtp.port == port and len(cloud.smtp.messages()) == 1
    with pytest.raises(OSError), socket.create_connection((host, port), timeout=2):
        pass
