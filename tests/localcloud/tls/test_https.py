"""HTTPS behaviour: the OSS REST API over the TLS plane (official SDK), and the CDN edge's HSTS and redirects."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from typing import Any

import alibabacloud_oss_v2 as oss
import pytest
from cryptography.hazmat.primitives import hashes

from localcloud.cloud import LocalCloud

from .conftest import BUCKET_HOST, TlsHarness

ROOT = ("LCTESTROOTKEY0000001", "lc-test-root-secret-0000000000001")
BUCKET = "tls-bucket"
DENY_PLAIN_HTTP = {
    "Version": "1",
    "Statement": [{
        "Effect": "Deny", "Principal": ["*"], "Action": ["oss:*"],
        "Resource": [f"acs:oss:*:*:{BUCKET}", f"acs:oss:*:*:{BUCKET}/*"],
        "Condition": {"Bool": {"acs:SecureTransport": ["false"]}},
    }],
}


def _client(endpoint: str) -> oss.Client:
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(*ROOT)
    cfg.region = "cn-hangzhou"
    cfg.endpoint = endpoint
    cfg.retry_max_attempts = 1
    return oss.Client(cfg)


@pytest.fixture
def resolve_aliyuncs_to_loopback(monkeypatch: pytest.MonkeyPatch, cloud: LocalCloud) -> Iterator[None]:
    """A resolver override: ``*.aliyuncs.com`` is 127.0.0.1 (like ``curl --connect-to``), and trust the bundle."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".aliyuncs.com"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cloud.endpoints["ca_bundle"])
    yield


def test_put_bucket_https_config_through_the_sdk_changes_what_the_edge_negotiates(
        tls: TlsHarness, resolve_aliyuncs_to_loopback: None) -> None:
    tls.cloud.seed({"buckets": [{"name": BUCKET, "policy": DENY_PLAIN_HTTP}]})
    assert tls.accepts(BUCKET_HOST, version="TLSv1.1")  # Enable=false: OSS's default TLS 1.0-1.2
    assert not tls.accepts(BUCKET_HOST, version="TLSv1.3")
    plain = _client(tls.cloud.endpoints["oss"])
    with pytest.raises(oss.exceptions.OperationError) as denied:  # the policy refuses plain HTTP ...
        plain.get_bucket_https_config(oss.GetBucketHttpsConfigRequest(bucket=BUCKET))
    assert "AccessDenied" in str(denied.value)
    secure = _client(f"https://oss-cn-hangzhou.aliyuncs.com:{tls.port}")
    handshakes = tls.cloud.tls_plane.counters["handshake_ok"]
    secure.put_bucket_https_config(oss.PutBucketHttpsConfigRequest(
        bucket=BUCKET,
        https_configuration=oss.HttpsConfiguration(
            tls=oss.TLS(enable=True, tls_versions=["TLSv1.2", "TLSv1.3"]),
            cipher_suite=oss.CipherSuite(enable=True, strong_cipher_suite=True)),
    ))  # ... and lets HTTPS through (SecureTransport is true on the TLS plane)
    got = secure.get_bucket_https_config(oss.GetBucketHttpsConfigRequest(bucket=BUCKET))
    assert got.https_configuration is not None and got.https_configuration.tls is not None
    assert got.https_configuration.tls.tls_versions == ["TLSv1.2", "TLSv1.3"]
    assert tls.cloud.tls_plane.counters["handshake_ok"] > handshakes  # the SDK really went through the plane
    # propagation is 0 in tests: the edge already enforces the new posture
    assert not tls.accepts(BUCKET_HOST, version="TLSv1.1")
    assert tls.handshake(BUCKET_HOST, version="TLSv1.2")[1] in {"ECDHE-RSA-AES128-GCM-SHA256",
                                                                "ECDHE-RSA-AES256-GCM-SHA384",
                                                                "ECDHE-RSA-CHACHA20-POLY1305"}
    assert not tls.accepts(BUCKET_HOST, version="TLSv1.2", ciphers="AES128-SHA")
    refused = tls.s_client(BUCKET_HOST, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert refused.returncode != 0


def test_bound_cname_serves_its_certificate_and_the_oss_api(tls: TlsHarness) -> None:
    tls.cloud.seed({
        "certificates": [{"name": "static-cert", "kind": "valid", "domains": ["static.example.com"]}],
        "buckets": [{"name": BUCKET, "cnames": [{"domain": "static.example.com", "certificate": "static-cert"}]}],
    })
    cert = tls.cloud.cas.find_by_name(tls.cloud.default_account_id, "static-cert")
    assert cert is not None
    assert tls.served_chain("static.example.com")[0].fingerprint(hashes.SHA256()).hex().upper() == cert.info.sha256
    with tls.connect("static.example.com") as conn:
        conn.sendall(b"GET /missing-object HTTP/1.1\r\nHost: static.example.com\r\nConnection: close\r\n\r\n")
        response = http.client.HTTPResponse(conn)  # type: ignore[arg-type]
        response.begin()
        body = response.read()
    assert response.getheader("x-oss-request-id")
    assert b"<Code>" in body  # an OSS error document, served over TLS by the OSS frame


def _edge_get(tls: TlsHarness, host: str, path: str = "/index.html") -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", tls.cloud.endpoints["edge_http_port"], timeout=5)
    connection.request("GET", path, headers={"Host": host})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def _https_get(tls: TlsHarness, host: str) -> tuple[int, dict[str, str]]:
    with tls.connect(host) as conn:
        conn.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        response = http.client.HTTPResponse(conn)  # type: ignore[arg-type]
        response.begin()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}


def test_cdn_edge_hsts_and_https_force_redirects(tls: TlsHarness) -> None:
    names = ["cdn-308.example.com", "cdn-301.example.com", "cdn-plain.example.com"]
    tls.cloud.seed({
        "certificates": [{"name": f"cert-{n}", "kind": "valid", "domains": [n]} for n in names],
        "cdn_domains": [
            {"name": names[0], "certificate": f"cert-{names[0]}",
             "configs": {"https_force": {"enable": "on", "https_rewrite": "308"},
                         "HSTS": {"enabled": "on", "https_hsts_max_age": "5184000",
                                  "https_hsts_include_subdomains": "on"}}},
            {"name": names[1], "certificate": f"cert-{names[1]}",
             "configs": {"https_force": {"enable": "on"}, "HSTS": {"enabled": "off", "https_hsts_max_age": "60"}}},
            {"name": names[2], "certificate": f"cert-{names[2]}"},
        ],
    })
    redirect = _edge_get(tls, names[0], "/a/b?x=1")
    assert redirect.status == 308
    assert redirect.getheader("Location") == f"https://{names[0]}/a/b?x=1"
    assert redirect.getheader("Strict-Transport-Security") is None  # HSTS is never sent over plain HTTP
    assert _edge_get(tls, names[1]).status == 301
    assert _edge_get(tls, names[2]).status == 200
    assert _edge_get(tls, "not-a-cdn-domain.example.com").status == 404
    status, headers = _https_get(tls, names[0])
    assert status == 200
    assert headers["strict-transport-security"] == "max-age=5184000; includeSubDomains"
    status, headers = _https_get(tls, names[1])
    assert status == 200 and "strict-transport-security" not in headers


def test_plain_http_to_the_tls_port_gets_a_400(tls: TlsHarness) -> None:
    before = tls.cloud.tls_plane.counters["plain_http"]
    with socket.create_connection(("127.0.0.1", tls.port), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = raw.recv(4096)
    assert data.startswith(b"HTTP/1.1 400 ")
    assert tls.cloud.tls_plane.counters["plain_http"] == before + 1


def test_put_cname_through_the_sdk_binds_what_the_edge_serves(tls: TlsHarness) -> None:
    """PutCname with a CAS certificate, then a forced rebind: each handshake shows the certificate bound."""
    domain = "cdn-origin.example.com"
    tls.cloud.seed({
        "certificates": [{"name": "origin-old", "kind": "expiring", "days": 5, "domains": [domain]},
                         {"name": "origin-new", "kind": "valid", "domains": [domain]}],
        "buckets": [{"name": BUCKET, "verified_domains": [domain]}],  # its _dnsauth TXT record is in place
    })
    cas = tls.cloud.cas
    old = cas.find_by_name(tls.cloud.default_account_id, "origin-old")
    new = cas.find_by_name(tls.cloud.default_account_id, "origin-new")
    assert old is not None and new is not None
    client = _client(tls.cloud.endpoints["oss"])
    client.create_cname_token(oss.CreateCnameTokenRequest(bucket=BUCKET, bucket_cname_configuration=(
        oss.BucketCnameConfiguration(cname=oss.Cname(domain=domain)))))

    def bind(cert_id: str, previous: str | None = None) -> None:
        client.put_cname(oss.PutCnameRequest(bucket=BUCKET, bucket_cname_configuration=oss.BucketCnameConfiguration(
            cname=oss.Cname(domain=domain, certificate_configuration=oss.CertificateConfiguration(
                cert_id=cert_id, previous_cert_id=previous, force=True)))))

    def served_sha256() -> str:
        return tls.served_chain(domain)[0].fingerprint(hashes.SHA256()).hex().upper()

    bind(cas.oss_cert_id(old))
    assert served_sha256() == old.info.sha256
    tls.cloud.tls.propagation_seconds = 120
    bind(cas.oss_cert_id(new), cas.oss_cert_id(old))
    assert served_sha256() == old.info.sha256  # the rebind is still propagating
    tls.cloud.clock.advance(121)
    assert served_sha256() == new.info.sha256
