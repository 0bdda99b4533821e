"""Nothing secret leaves tlsguard (issue 14): credentials, STS tokens, webhook secrets and robot URLs are masked in
every text that leaves the process, whatever form they take there.

The leak that started it: CDN answers ``SignatureDoesNotMatch`` with the string-to-sign it computed, and that
string holds the request's ``SecurityToken`` (percent-encoded twice: once as a query value, once more as part of
the string-to-sign, https://help.aliyun.com/en/document_detail/130769.html; localcloud renders it as the RPC
gateway does, see ``localcloud/rpc/auth.py``). aliyunsdkcore 2.16.1 (``client.py``, ``_get_server_exception``)
passes the message through whenever the server's string-to-sign differs from its own, as it does when a request
is altered on its way: here a loopback proxy in front of localcloud's CDN adds one parameter. Each exit is checked
with that real answer, through the official SDK: the per-target reason, the report (JSON and human), the alert
digest a webhook receives, the log (tlsguard's and the SDKs' own loggers), stderr, the webhook function's HTTP 200
body and cert_renewal's ``errors`` (both run by localcloud's Function Compute with the role's STS keys).
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from tlsguard.log import REDACTED, JsonFormatter, mask_secrets, register_secret, scrub

from tests.functions.conftest import (
    ALERT_SECRET,
    INBOUND_SECRET,
    POLICY,
    AlertSink,
    cdn_domain,
    invocations,
    result_of,
    settle,
)
from tests.support import ALICE, STATE_BUCKET

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from localcloud.cloud import LocalCloud
    from localcloud.sdeploy import Deployment

#: An STS token as STS issues them: standard base64 after "CAIS", so with ``+``, ``/`` and ``=`` that every
#: encoding changes (UNCONFIRMED: the documentation shows tokens only as "****"; the shape is the SDKs' and the
#: console's). localcloud's own tokens are URL-safe, so this one is sent by the tests that need the encodings.
STS_TOKEN = "CAIS+wF1q6Ft5B2yfSjIr5bkK/7Ayb1u0oi4Y0P+4Gl0dhbGvKjdt+Zz2IHhMdHdoAe8Ys/kxn2xX7/oblqNpQppj=="
DOMAIN = "leak.cdn.example"


def every_form(secret: str) -> dict[str, str]:
    """The forms a secret takes on its way out: plain, query-encoded (quote, quote_plus) and as an RPC
    string-to-sign holds it (percent-encoded twice)."""
    once = urllib.parse.quote(secret, safe="")
    return {"plain": secret, "quote": once, "quote_plus": urllib.parse.quote_plus(secret),
            "twice": urllib.parse.quote(once, safe="")}


def assert_absent(text: str, secret: str, where: str) -> None:
    for name, form in every_form(secret).items():
        assert form not in text, f"{where}: the token leaks ({name} form)"


class TamperingProxy:
    """A loopback middlebox in front of localcloud's CDN RPC endpoint that adds a parameter to the requests of the
    given actions (all when None): the gateway then computes another string-to-sign and says so, echoing it."""

    def __init__(self, upstream: str, actions: set[str] | None = None) -> None:
        self.upstream = upstream
        self.tampered = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                self.forward()

            def do_POST(self) -> None:
                self.forward()

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path
                params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
                params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
                if actions is None or params.get("Action") in actions:
                    path += ("&" if "?" in path else "?") + "Tampered=1"
                    proxy.tampered += 1
                host, port = proxy.upstream.rsplit(":", 1)
                connection = http.client.HTTPConnection(host, int(port), timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                connection.request(self.command, path, body=body or None, headers=headers)
                answer = connection.getresponse()
                payload = answer.read()
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.getheader("Content-Type") or "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                connection.close()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Everything tlsguard logs during the test, at DEBUG (so the SDKs' own lines, routed there, too), and
    whatever reaches the root logger, as FC's Python runtime (which configures it) would record it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root_handler = logging.StreamHandler(stream)
    root_handler.setFormatter(logging.Formatter("ROOT %(name)s %(levelname)s %(message)s"))
    tlsguard_root, root = logging.getLogger("tlsguard"), logging.getLogger()
    saved = tlsguard_root.level, root.level
    tlsguard_root.addHandler(handler)
    tlsguard_root.setLevel(logging.DEBUG)
    root.addHandler(root_handler)
    root.setLevel(logging.DEBUG)
    yield stream
    tlsguard_root.removeHandler(handler)
    root.removeHandler(root_handler)
    tlsguard_root.setLevel(saved[0])
    root.setLevel(saved[1])


def seed_cdn_domain(cloud: LocalCloud) -> None:
    cloud.seed({"buckets": [{"name": STATE_BUCKET, "region": "cn-hangzhou"}],
                "certificates": [{"name": "leak-cert", "kind": "valid", "domains": [DOMAIN]}],
                "cdn_domains": [cdn_domain(DOMAIN, "leak-cert")]})


# -- the one redaction function -------------------------------------------------------------------------------------
@pytest.mark.unit
def test_every_encoded_form_of_a_registered_token_is_masked() -> None:
    register_secret(STS_TOKEN)
    forms = every_form(STS_TOKEN)
    forms["lower-hex"] = forms["quote"].replace("%2B", "%2b").replace("%2F", "%2f").replace("%3D", "%3d")
    forms["json"] = json.dumps(STS_TOKEN)[1:-1]
    for shift in range(3):  # inside a base64 blob (a Basic header, a signed document) at each alignment
        blob = base64.b64encode(b"x" * shift + b"token:" + STS_TOKEN.encode() + b"&rest").decode()
        forms[f"base64+{shift}"] = blob
    for name, form in forms.items():
        masked = mask_secrets(f"before {form} after")
        assert REDACTED in masked, name
        assert_absent(masked, STS_TOKEN, name)
        if not name.startswith("base64"):
            assert masked == f"before {REDACTED} after", name


@pytest.mark.unit
def test_echoed_credential_parameters_are_masked_even_when_never_registered() -> None:
    unknown = "CAISunregistered+token/value=="
    once = urllib.parse.quote(unknown, safe="")
    rpc = f"POST&%2F&AccessKeyId%3DSTS.x%26SecurityToken%3D{urllib.parse.quote(once, safe='')}%26Timestamp%3D2026"
    oss = f"x-oss-date:20260101T000000Z\nx-oss-security-token:{unknown}\n\nhost"
    body = json.dumps({"AccessKeySecret": "lc-secret-value-1", "SecurityToken": unknown})
    for text in (rpc, oss, body, f"SecurityToken={once}&Version=1"):
        masked = mask_secrets(text)
        assert_absent(masked, unknown, text[:20])
        assert "lc-secret-value-1" not in masked
    # The rest of an echoed string-to-sign is kept: it is what tells a person what was signed.
    assert mask_secrets(rpc).endswith(f"SecurityToken%3D{REDACTED}%26Timestamp%3D2026")
    assert mask_secrets("InvalidSecurityToken.Expired: SecurityToken is mandatory") == \
        "InvalidSecurityToken.Expired: SecurityToken is mandatory"


@pytest.mark.unit
def test_a_robot_url_and_the_token_inside_it_are_masked_but_not_its_plain_words() -> None:
    token = "9f2c4e61b7a04d4c8e1f0a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
    url = f"https://oapi.dingtalk.com/robot/send?access_token={token}"
    lark = "https://open.feishu.cn/open-apis/bot/v2/hook/0b6c2e4a-7d1f-4c3b-9a8e-5f6d7c8b9a01"
    register_secret(url)
    register_secret(lark)
    text = mask_secrets(f"POST {url} failed; token {token}; hook 0b6c2e4a-7d1f-4c3b-9a8e-5f6d7c8b9a01; "
                        "the robot send API")
    assert token not in text and url not in text and "0b6c2e4a-7d1f-4c3b-9a8e-5f6d7c8b9a01" not in text
    assert "the robot send API" in text


@pytest.mark.unit
def test_scrub_walks_a_document_and_keeps_everything_else() -> None:
    register_secret("webhook-secret-0123456789")
    document = {"reason": "sig webhook-secret-0123456789", "items": [{"m": "webhook-secret-0123456789"}, 3, None],
                "signature_algorithm": "sha256WithRSAEncryption", "count": 2}
    assert scrub(document) == {"reason": f"sig {REDACTED}", "items": [{"m": REDACTED}, 3, None],
                               "signature_algorithm": "sha256WithRSAEncryption", "count": 2}


@pytest.mark.unit
def test_an_error_message_is_redacted_wherever_it_is_read() -> None:
    from tlsguard.errors import CloudError

    register_secret(STS_TOKEN)
    error = CloudError(f"server string to sign is:SecurityToken%3D{STS_TOKEN}", service="cdn", operation="X")
    for text in (str(error), error.describe(), f"{error}", repr(str(error))):
        assert_absent(text, STS_TOKEN, "error")


# -- every exit, with a real CDN answer echoing an STS token ----------------------------------------------------------
def test_a_cdn_signature_mismatch_echoing_the_sts_token_leaves_through_no_exit(
        cloud: LocalCloud, tmp_path: Path, log_lines: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
    from tlsguard import runs
    from tlsguard.certs._rpc import RpcConnection
    from tlsguard.errors import PermissionDenied
    from tlsguard.lifecycle import Lifecycle
    from tlsguard.model import TargetKind, TargetRef, Trigger
    from tlsguard.notify.webhook import WebhookNotifier
    from tlsguard.policy.loader import load_policy
    from tlsguard.report import RunReport
    from tlsguard.wiring import alert_path, build, context

    from tests.support import FAST_RETRY

    seed_cdn_domain(cloud)
    proxy = TamperingProxy(str(cloud.endpoints["cdn"]), actions={"DescribeCdnDomainConfigs",
                                                                 "DescribeDomainCertificateInfo"})
    sink = AlertSink()
    try:
        policy_path = tmp_path / "tlsguard.yaml"
        policy_path.write_text(POLICY)
        # ops-alice's key sent with an STS token: the gateway checks the token only for STS keys, so the calls are
        # authenticated exactly as the function role's would be, and the token travels in every request.
        rpc = RpcConnection(region="cn-hangzhou", access_key_id=ALICE[0], access_key_secret=ALICE[1],
                            security_token=STS_TOKEN, protocol="http")
        wiring = build(load_policy(policy_path), localcloud={**cloud.endpoints, "cdn": proxy.address}, rpc=rpc,
                       retry=FAST_RETRY, notifier=WebhookNotifier(sink.url, ALERT_SECRET))
        assert wiring.ports.cdn is not None
        # What CDN really answered: the token is in it (twice percent-encoded), so every check below can fail.
        with pytest.raises(PermissionDenied) as raw:
            wiring.ports.cdn.domain_configs(DOMAIN, ("https_force",))
        echoed = str(raw.value.__cause__)
        assert "SignatureDoesNotMatch" in echoed and every_form(STS_TOKEN)["twice"] in echoed

        ctx = context(wiring, apply=True, clock=cloud.clock.time)
        report = RunReport("apply", "enforce", str(policy_path))
        alerts = alert_path(wiring, ctx.clock)
        target = TargetRef(TargetKind.CDN_DOMAIN, DOMAIN, "", cloud.default_account_id)
        [result] = runs.sweep(Lifecycle(ctx), [(target, {})], trigger=Trigger("cli"))
        report.add(result)
        alerts.observe(result)
        delivery = alerts.flush(command="apply", mode="enforce")
        report.alerts = delivery.to_dict()

        assert result.outcome.value == "failed" and "SignatureDoesNotMatch" in result.reason
        assert REDACTED in result.reason
        assert_absent(result.reason, STS_TOKEN, "the target's reason")
        document = json.dumps(report.finish().to_dict())
        assert "SignatureDoesNotMatch" in document
        assert_absent(document, STS_TOKEN, "the JSON report")
        assert_absent(report.human(), STS_TOKEN, "the human report")
        [digest] = sink.wait_for(1)
        assert digest["needs_attention"][0]["target"]["name"] == DOMAIN
        assert "SignatureDoesNotMatch" in json.dumps(digest)
        assert_absent(json.dumps(digest), STS_TOKEN, "the alert digest")
        logged = log_lines.getvalue()
        assert "ServerException occurred" in logged  # aliyunsdkcore's own error line, now a debug line of ours
        assert "ROOT aliyunsdkcore" not in logged  # and no longer handed to whoever configured the root logger
        assert_absent(logged, STS_TOKEN, "the log")
        console = capsys.readouterr()
        assert "ServerException" not in console.err  # the SDK prints nothing on the console
        assert_absent(console.out + console.err, STS_TOKEN, "stdout/stderr")
    finally:
        proxy.close()
        sink.close()


@pytest.fixture
def alert_sink() -> Iterator[AlertSink]:
    sink = AlertSink()
    yield sink
    sink.close()


@pytest.fixture
def tampered_deployment(cloud: LocalCloud, tmp_path: Path, alert_sink: AlertSink,
                        request: pytest.FixtureRequest) -> Iterator[tuple[Deployment, TamperingProxy]]:
    """The function set deployed with CDN reached through a tampering proxy (the actions in the test's param)."""
    from localcloud.cloud import write_endpoints
    from localcloud.sdeploy import deploy

    seed_cdn_domain(cloud)
    proxy = TamperingProxy(str(cloud.endpoints["cdn"]), actions=getattr(request, "param", None))
    endpoints_file = tmp_path / "endpoints.json"
    write_endpoints(endpoints_file, {**cloud.endpoints, "cdn": proxy.address})
    policy_file = tmp_path / "tlsguard.yaml"
    policy_file.write_text(POLICY)
    saved = cloud.fc.timers_enabled
    cloud.fc.timers_enabled = False
    deployment = deploy(cloud, endpoints_file=endpoints_file, policy=policy_file, variables={"runtime": "python3.12"},
                        environment={"TLSGUARD_WEBHOOK_URL": alert_sink.url, "TLSGUARD_WEBHOOK_SECRET": ALERT_SECRET},
                        environ={"TLSGUARD_INBOUND_SECRET": INBOUND_SECRET})
    yield deployment, proxy
    deployment.close()
    cloud.fc.wait_idle(10)
    cloud.fc.timers_enabled = saved
    proxy.close()


def role_tokens(cloud: LocalCloud) -> list[str]:
    """The STS tokens localcloud issued to the function role (what the deployed functions signed with)."""
    principals = cloud.iam.keys()  # every key localcloud knows, STS sessions included
    return [p.security_token for p in principals if p.role_name == "tlsguard-fc-role" and p.security_token]


def test_cert_renewal_errors_do_not_carry_the_role_token(
        tampered_deployment: tuple[Deployment, TamperingProxy], cloud: LocalCloud, alert_sink: AlertSink,
        log_lines: io.StringIO) -> None:
    _, proxy = tampered_deployment
    timer = json.dumps({"triggerTime": "2026-11-23T03:00:00Z", "triggerName": "daily", "payload": ""}).encode()
    record = cloud.fc.invoke("tlsguard-cert-renewal", timer)
    body = result_of(record)
    tokens = role_tokens(cloud)
    assert tokens and proxy.tampered >= 1
    errors = " ".join(body["errors"])
    assert "DescribeUserDomains" in errors and "SignatureDoesNotMatch" in errors and REDACTED in errors
    for where, text in (("cert_renewal's result", json.dumps(body)), ("the invocation record", json.dumps(record)),
                        ("the log", log_lines.getvalue()),
                        ("the digests", json.dumps(alert_sink.alerts))):
        for token in tokens:
            assert_absent(text, token, where)


@pytest.mark.parametrize("tampered_deployment", [{"DescribeCdnDomainConfigs", "DescribeDomainCertificateInfo"}],
                         indirect=True)
def test_the_webhook_200_body_does_not_carry_the_role_token(
        tampered_deployment: tuple[Deployment, TamperingProxy], cloud: LocalCloud, alert_sink: AlertSink,
        log_lines: io.StringIO) -> None:
    import hashlib
    import hmac
    import urllib.request

    deployment, proxy = tampered_deployment
    for apply in (False, True):  # a plan only reports; an apply also sends the digest
        body = json.dumps({"domains": [DOMAIN], "apply": apply}).encode()
        stamp = str(int(time.time()))
        signature = hmac.new(INBOUND_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(deployment.http_triggers["tlsguard-webhook"] + "/check", data=body,
                                         method="POST", headers={"Content-Type": "application/json",
                                                                 "X-Tlsguard-Timestamp": stamp,
                                                                 "X-Tlsguard-Signature": f"sha256={signature}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            text = response.read().decode()
        tokens = role_tokens(cloud)
        [target] = json.loads(text)["targets"]
        assert tokens and target["outcome"] == "failed" and "SignatureDoesNotMatch" in target["reason"]
        assert REDACTED in target["reason"]
        for token in tokens:
            assert_absent(text, token, "the webhook's HTTP 200 body")
    assert proxy.tampered >= 2
    settle(cloud)
    [digest] = alert_sink.wait_for(1)
    for token in tokens:
        assert_absent(json.dumps(digest), token, "the webhook apply's digest")
        assert_absent(log_lines.getvalue(), token, "the log")
    assert all(i["status"] == "succeeded" for i in invocations(cloud, "tlsguard-webhook"))


def test_the_cli_console_shows_the_reason_once_and_no_sdk_line(cloud: LocalCloud, tmp_path: Path) -> None:
    """The same answer through ``tlsguard plan`` in a real process: the report gives the reason, and nothing else
    reaches the console (aliyunsdkcore's "ServerException occurred" line stays in the debug log)."""
    import subprocess
    import sys
    from pathlib import Path as RealPath

    from localcloud.cloud import write_endpoints

    seed_cdn_domain(cloud)
    proxy = TamperingProxy(str(cloud.endpoints["cdn"]), actions={"DescribeCdnDomainConfigs",
                                                                 "DescribeDomainCertificateInfo"})
    try:
        endpoints_file = tmp_path / "endpoints.json"
        write_endpoints(endpoints_file, {**cloud.endpoints, "cdn": proxy.address})
        policy = tmp_path / "tlsguard.yaml"
        policy.write_text(POLICY)
        root = RealPath(__file__).resolve().parents[2]
        process = subprocess.run(
            [sys.executable, "-c", "from tlsguard.cli import main; main()", "plan", "--policy", str(policy),
             "--localcloud", str(endpoints_file), "--target", f"cdn-domain:{DOMAIN}"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": f"{root / 'shared'}:{root}"})
    finally:
        proxy.close()
    assert process.returncode == 1 and proxy.tampered >= 1
    assert "SignatureDoesNotMatch" in process.stdout
    assert process.stderr == "", process.stderr[:2000]
    secret = str(cloud.endpoints["access_key_secret"])
    assert_absent(process.stdout, secret, "the CLI's report")
