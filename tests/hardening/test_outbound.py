"""Outbound calls are safe and their errors classed right (issue 14).

* tlsguard's own HTTP (the signed alert webhook) goes only to ``https://`` or a loopback ``http://`` URL, checked
  when it is configured (a ConfigError naming the variable, never the URL), and never follows a redirect: a 3xx is
  a failed delivery naming the status, and the signed body and its headers reach no other host (a redirect to the
  ECS metadata path is the case that was found).
* What an SDK refuses before sending (an invalid bucket name, a region with a NUL or an IDNA label too long,
  aliyunsdkcore's own refusals) is a permanent failure with a reason: called once, never retried, and the check
  function acknowledges a poison batch instead of raising for FC to retry it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from tlsguard.errors import CloudError, ConfigError, InvalidRequest, Transient
from tlsguard.netsafe import check_outbound_url
from tlsguard.retry import RetryPolicy

from tests.functions.conftest import POLICY, compliant_bucket, deploy_functions, invocations, result_of, settle
from tests.support import STATE_BUCKET

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from localcloud.cloud import LocalCloud

SECRET = "outbound-test-secret-0123456789"
QUICK = RetryPolicy(attempts=3, initial_seconds=0.01, max_seconds=0.02, jitter_seconds=0.0)


class Recorder:
    """A loopback HTTP server that records every request (path and headers) and answers ``status`` with
    ``headers``."""

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                recorder.requests.append({"method": self.command, "path": self.path,
                                          "headers": dict(self.headers.items()), "body": self.rfile.read(length)})
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = do_PUT = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorders() -> Iterator[list[Recorder]]:
    made: list[Recorder] = []
    yield made
    for recorder in made:
        recorder.close()


# -- the URL rule --------------------------------------------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize("url", ["https://hooks.example.com/tlsguard?token=abc", "http://127.0.0.1:8080/alerts",
                                 "http://127.9.9.9/x", "http://[::1]:9000/", "http://localhost/hook",
                                 "HTTPS://Hooks.Example.com/"])
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    check_outbound_url(url, "TLSGUARD_WEBHOOK_URL")


@pytest.mark.unit
@pytest.mark.parametrize(("url", "why"), [
    ("file:///etc/passwd", "another scheme"),
    ("http://hooks.example.com/alert?token=s3cr3t-token-value", "not loopback"),
    ("http://10.0.0.1/alert", "not loopback"),
    ("http://100.100.100.200/latest/meta-data/", "not loopback"),
    ("http://127.0.0.1.example.com/", "not loopback"),
    ("ftp://hooks.example.com/x", "another scheme"),
    ("gopher://127.0.0.1:25/", "another scheme"),
    ("https:///no-host", "no host"),
    ("https://hooks.example.com:99999/", "not a valid URL"),
    ("https://hooks.example.com/a b", "whitespace"),
    ("", "empty"),
])
def test_other_urls_are_a_config_error_naming_the_variable_never_the_url(url: str, why: str) -> None:
    with pytest.raises(ConfigError) as refused:
        check_outbound_url(url, "TLSGUARD_WEBHOOK_URL")
    message = str(refused.value)
    assert message.startswith("TLSGUARD_WEBHOOK_URL: the URL ") and why in message
    if url:
        assert url not in message and "s3cr3t" not in message and "passwd" not in message


@pytest.mark.unit
@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://hooks.example.com/x?token=s3cr3t-token-value"])
def test_the_webhook_url_variable_is_checked_when_the_alerts_are_wired(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path, url: str) -> None:
    from tlsguard.policy.loader import load_policy
    from tlsguard.wiring import alert_channels

    policy = tmp_path / "tlsguard.yaml"
    policy.write_text(POLICY)
    monkeypatch.setenv("TLSGUARD_WEBHOOK_URL", url)
    monkeypatch.setenv("TLSGUARD_WEBHOOK_SECRET", SECRET)
    with pytest.raises(ConfigError, match="TLSGUARD_WEBHOOK_URL") as refused:
        alert_channels(load_policy(policy))
    assert url not in str(refused.value) and "s3cr3t" not in str(refused.value)


@pytest.mark.unit
def test_a_notifier_built_by_hand_checks_its_url_too() -> None:
    from tlsguard.notify.webhook import WebhookNotifier

    with pytest.raises(ConfigError, match=r"^alerts\.channels\.ops url: the URL uses another scheme; accepted: https://"):
        WebhookNotifier("file:///etc/shadow", SECRET, url_source="alerts.channels.ops url")


# -- redirects -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failed_delivery_and_the_signed_request_goes_nowhere_else(
        recorders: list[Recorder], status: int) -> None:
    from tlsguard.alerts.channels import Dispatcher
    from tlsguard.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookNotifier

    elsewhere = Recorder()  # another host: the "metadata service" the redirect points at
    recorders.append(elsewhere)
    receiver = Recorder(status, {"Location": f"{elsewhere.url}/latest/meta-data/ram/security-credentials/"})
    recorders.append(receiver)
    notifier = WebhookNotifier(receiver.url + "/alerts", SECRET, retry=QUICK)
    with pytest.raises(CloudError) as failed:
        notifier.send({"kind": "digest", "counts": {"targets": 1}})
    assert not failed.value.retryable and failed.value.status == status and failed.value.code == "Redirect"
    assert f"answered {status}" in str(failed.value) and "not followed" in str(failed.value)
    assert "meta-data" not in str(failed.value)
    assert len(receiver.requests) == 1  # a refusal is not retried
    assert receiver.requests[0]["headers"].get(SIGNATURE_HEADER, "").startswith("sha256=")
    assert elsewhere.requests == []  # never followed: no signature header, no body, nothing
    # Through the channel: a failed delivery naming the status, never raised into the run.
    [result] = Dispatcher.single(notifier).dispatch({"kind": "digest", "needs_attention": [{"id": "x"}]})
    assert not result.sent and str(status) in result.error
    assert elsewhere.requests == [] and TIMESTAMP_HEADER in receiver.requests[-1]["headers"]


def test_a_refusal_is_not_retried_but_a_server_error_is(recorders: list[Recorder]) -> None:
    from tlsguard.notify.webhook import WebhookNotifier

    refusing, failing = Recorder(403), Recorder(503)
    recorders.extend([refusing, failing])
    with pytest.raises(CloudError) as refused:
        WebhookNotifier(refusing.url, SECRET, retry=QUICK).send({"kind": "digest"})
    assert not refused.value.retryable and refused.value.status == 403 and len(refusing.requests) == 1
    with pytest.raises(Transient):
        WebhookNotifier(failing.url, SECRET, retry=QUICK).send({"kind": "digest"})
    assert len(failing.requests) == QUICK.attempts


# -- client-side errors are permanent --------------------------------------------------------------------------------
class CountingLimiter:
    """Stands in for the adapter's rate limiter to count attempts: ``acquire`` runs once per attempt."""

    def __init__(self) -> None:
        self.acquired: list[str] = []

    def acquire(self, operation: str) -> None:
        self.acquired.append(operation)


BUCKET_READS = ("oss:GetBucketHttpsConfig", "oss:GetBucketPolicy", "oss:GetBucketEncryption", "oss:GetBucketTags")


def oss_reads(cloud: LocalCloud) -> int:
    snapshot = cloud.stats.snapshot()
    return sum(snapshot.get(name, 0) for name in BUCKET_READS)


@pytest.mark.parametrize(("bucket", "region", "code"), [
    ("Bad_Bucket", "cn-hangzhou", "BucketNameInvalidError"),
    ("-leading-dash", "cn-hangzhou", "BucketNameInvalidError"),
    ("ok-bucket", "cn-hangzhou\x00", "ValueError"),  # NUL: the SDK cannot even build the client
    ("ok-bucket", "a" * 70, "UnicodeError"),  # IDNA: a host label over 63 characters
    ("ok-bucket", "cn..hangzhou", "UnicodeError"),  # IDNA: an empty label
])
def test_an_input_the_sdk_refuses_is_called_once_and_never_retried(cloud: LocalCloud, bucket: str, region: str,
                                                                   code: str) -> None:
    from tlsguard.adapters.oss import AliyunOss, connection_from_endpoint_data
    from tlsguard.ports import BucketRef

    limiter = CountingLimiter()
    oss = AliyunOss(connection_from_endpoint_data(cloud.endpoints), retry=RetryPolicy(attempts=5, initial_seconds=0.01),
                    limiter=limiter)  # type: ignore[arg-type]
    before = oss_reads(cloud)
    with pytest.raises(InvalidRequest) as refused:
        oss.get_https_config(BucketRef(bucket, region))
    assert refused.value.code == code and not refused.value.retryable
    assert len(limiter.acquired) <= 1  # one attempt (none when no client can be built for the region)
    assert oss_reads(cloud) == before  # nothing reached OSS


@pytest.mark.unit
@pytest.mark.parametrize(("code", "message", "permanent"), [
    ("SDK.InvalidRegionId", "Can not find endpoint to access.", True),
    ("SDK.EndpointResolvingError", "No endpoint for product 'Cdn'.", True),
    ("SDK.InvalidParameter", "bad parameter", True),
    ("SDK.HttpError", "Failed to parse: http://host\x00:80/", True),
    ("SDK.HttpError", "Invalid URL 'http://': No host supplied", True),
    ("SDK.HttpError", "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded", False),
    ("SDK.ServerUnreachable", "Unable to connect server", False),
])
def test_aliyunsdkcore_refusals_are_permanent_and_network_failures_are_not(code: str, message: str,
                                                                           permanent: bool) -> None:
    from aliyunsdkcore.acs_exception.exceptions import ClientException
    from tlsguard.certs._rpc import _client_error

    error = _client_error(ClientException(code, message), "cdn", "DescribeUserDomains", "x.example")
    assert isinstance(error, InvalidRequest) is permanent
    assert isinstance(error, Transient) is not permanent
    assert error.code == code and error.retryable is not permanent


@pytest.fixture
def check_function(cloud: LocalCloud, tmp_path: Path) -> Iterator[None]:
    cloud.seed({"buckets": [{"name": STATE_BUCKET, "region": "cn-hangzhou"}, compliant_bucket("app-prod")]})
    policy = tmp_path / "tlsguard.yaml"
    policy.write_text(POLICY)
    saved = (cloud.fc.timers_enabled, cloud.fc.async_retry_base_seconds, cloud.fc.async_retry_max_seconds)
    cloud.fc.timers_enabled = False
    cloud.fc.async_retry_base_seconds, cloud.fc.async_retry_max_seconds = 0.01, 0.05
    deployment = deploy_functions(cloud, tmp_path, policy)
    yield
    deployment.close()
    cloud.fc.wait_idle(10)
    cloud.fc.timers_enabled, cloud.fc.async_retry_base_seconds, cloud.fc.async_retry_max_seconds = saved


def test_a_poison_batch_is_acknowledged_with_a_reason_not_retried_by_fc(cloud: LocalCloud,
                                                                        check_function: None) -> None:
    batch = {"correlation_id": "poison", "targets": [
        {"kind": "oss-bucket", "name": "Bad_Bucket", "region": "cn-hangzhou"},
        {"kind": "oss-bucket", "name": "app-prod", "region": "cn-hangzhou"}]}
    cloud.stats.reset()
    cloud.fc.invoke("tlsguard-check", json.dumps(batch).encode(), invocation_type="Async")
    settle(cloud)
    [record] = invocations(cloud, "tlsguard-check")
    assert record["attempts"] == 1  # FC was not asked to retry the batch
    body = result_of(record)
    items = {(t["target"]["name"], t["target"]["region"]): t for t in body["targets"]}
    bad_name = items[("Bad_Bucket", "cn-hangzhou")]
    assert bad_name["outcome"] == "failed" and bad_name["error_code"] == "BucketNameInvalidError"
    assert "Bucket name is invalid" in bad_name["reason"] and bad_name["retryable"] is False
    assert body["summary"]["compliant"] == 1 and body["summary"]["failed"] == 1
    # Only the good target's reads reached OSS: one of each, no retry for the bad one.
    snapshot = cloud.stats.snapshot()
    assert snapshot.get("oss:GetBucketHttpsConfig") == 1 and snapshot.get("oss:GetBucketPolicy") == 1
