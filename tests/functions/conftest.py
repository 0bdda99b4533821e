"""Fixtures for the function set: s.yaml deployed into the session's localcloud, a small fleet, a webhook sink."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from tlsguard.notify.webhook import verify

from localcloud.cloud import LocalCloud, write_endpoints
from localcloud.sdeploy import Deployment, deploy

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

STATE_BUCKET = "tlsguard-state"
INBOUND_SECRET = "test-inbound-secret-0123456789"
ALERT_SECRET = "test-alert-secret-0123456789"
USER_KEY = ("LCTESTUSERKEY0000001", "lc-test-user-secret-0000000000001")

POLICY = """\
version: 1
mode: enforce
defaults:
  tls_versions: [TLSv1.2, TLSv1.3]
  https_only: true
  encryption: {algorithm: AES256}
state: {bucket: tlsguard-state}
guard: {max_remediations: 3, window_minutes: 60, own_principals: [tlsguard-fc-role]}
certificates:
  cdn_https:
    https_force: true
    hsts: {max_age: 5184000, include_subdomains: false}
    tls_versions: [TLSv1.2, TLSv1.3]
    cipher_suite_group: strict
"""

#: A CDN domain's HTTPS functions exactly as POLICY declares them.
CDN_COMPLIANT_CONFIGS = {
    "https_force": {"enable": "on", "https_rewrite": "301"},
    "HSTS": {"enabled": "on", "https_hsts_max_age": "5184000", "https_hsts_include_subdomains": "off"},
    "https_tls_version": {"tls10": "off", "tls11": "off", "tls12": "on", "tls13": "on", "ciphersuitegroup": "strict"},
}

COMPLIANT_POLICY = {
    "Version": "1",
    "Statement": [{"Effect": "Deny", "Principal": ["*"], "Action": ["oss:*"],
                   "Resource": ["acs:oss:*:*:{b}", "acs:oss:*:*:{b}/*"],
                   "Condition": {"Bool": {"acs:SecureTransport": ["false"]}}}],
}


def compliant_bucket(name: str, region: str = "cn-hangzhou") -> dict[str, Any]:
    policy = json.loads(json.dumps(COMPLIANT_POLICY).replace("{b}", name))
    return {"name": name, "region": region, "policy": policy, "encryption": {"algorithm": "AES256"},
            "https_config": {"tls": {"enable": True, "versions": ["TLSv1.2", "TLSv1.3"]}}}


def drifted_bucket(name: str, region: str = "cn-hangzhou") -> dict[str, Any]:
    bucket = compliant_bucket(name, region)
    bucket["https_config"] = {"tls": {"enable": True, "versions": ["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]}}
    return bucket


def cdn_domain(name: str, certificate: str, **configs: dict[str, str]) -> dict[str, Any]:
    """A CDN domain serving HTTPS with ``certificate``; its configs are POLICY's, overridden by ``configs``."""
    return {"name": name, "certificate": certificate, "configs": {**CDN_COMPLIANT_CONFIGS, **configs}}


class AlertSink:
    """A local webhook receiver that checks tlsguard's alert signature and keeps what it got."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.bad_signatures = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if verify(ALERT_SECRET, self.headers.get("X-Tlsguard-Timestamp", ""), body,
                          self.headers.get("X-Tlsguard-Signature", "")):
                    sink.alerts.append(json.loads(body))
                else:
                    sink.bad_signatures += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.alerts) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.alerts

    def digests(self) -> list[dict[str, Any]]:
        """The run digests received so far (every run sends at most one)."""
        return [a for a in self.alerts if a.get("kind") == "digest"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def alert_sink() -> Iterator[AlertSink]:
    sink = AlertSink()
    yield sink
    sink.close()


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "tlsguard.yaml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def fleet(cloud: LocalCloud) -> LocalCloud:
    cloud.seed({"buckets": [{"name": STATE_BUCKET, "region": "cn-hangzhou"},
                            compliant_bucket("app-prod"), drifted_bucket("app-drifted"),
                            compliant_bucket("logs-sh", "cn-shanghai")]})
    return cloud


@pytest.fixture
def no_timers(cloud: LocalCloud) -> Iterator[None]:
    """s.yaml's timers are real cron (hourly, daily): keep them from firing on the wall clock during a test.

    Timers still fire on demand (``cloud.fc.fire_timer`` and the control API), which is what the tests use.
    """
    saved = cloud.fc.timers_enabled
    cloud.fc.timers_enabled = False
    yield
    cloud.fc.timers_enabled = saved


@pytest.fixture
def fast_async(cloud: LocalCloud) -> Iterator[None]:
    saved = (cloud.fc.async_retry_base_seconds, cloud.fc.async_retry_max_seconds)
    cloud.fc.async_retry_base_seconds, cloud.fc.async_retry_max_seconds = 0.01, 0.05
    yield
    cloud.fc.async_retry_base_seconds, cloud.fc.async_retry_max_seconds = saved


def deploy_functions(cloud: LocalCloud, tmp_path: Path, policy_file: Path, *, runtime: str = "python3.12",
                     environment: dict[str, str] | None = None) -> Deployment:
    endpoints_file = tmp_path / "endpoints.json"
    write_endpoints(endpoints_file, cloud.endpoints)
    return deploy(cloud, endpoints_file=endpoints_file, policy=policy_file, variables={"runtime": runtime},
                  environment=environment or {}, environ={"TLSGUARD_INBOUND_SECRET": INBOUND_SECRET})


@pytest.fixture
def deployed(fleet: LocalCloud, tmp_path: Path, policy_file: Path, alert_sink: AlertSink,
             fast_async: None, no_timers: None) -> Iterator[Deployment]:
    deployment = deploy_functions(fleet, tmp_path, policy_file, environment={
        "TLSGUARD_WEBHOOK_URL": alert_sink.url, "TLSGUARD_WEBHOOK_SECRET": ALERT_SECRET})
    yield deployment
    deployment.close()
    fleet.fc.wait_idle(10)


def outsider(cloud: LocalCloud, key: tuple[str, str] = USER_KEY) -> Any:
    """The RAM user ops-alice through the official SDK (HTTPS via the TLS plane): how drift is introduced."""
    import dataclasses

    from tlsguard.adapters.oss import AliyunOss, connection_from_endpoint_data
    from tlsguard.retry import RetryPolicy

    connection = dataclasses.replace(connection_from_endpoint_data(cloud.endpoints), access_key_id=key[0],
                                     access_key_secret=key[1])
    return AliyunOss(connection, retry=RetryPolicy(attempts=1))


def settle(cloud: LocalCloud, timeout: float = 20.0) -> None:
    """Wait until every delivery and invocation (including ones they cause) has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cloud.events.wait_idle(max(0.1, deadline - time.monotonic()))
        cloud.fc.wait_idle(max(0.1, deadline - time.monotonic()))
        if all(i["status"] in ("succeeded", "failed") for i in cloud.fc.invocations()) and \
                cloud.events.wait_idle(0.05):
            return
    raise AssertionError("localcloud did not settle")


def invocations(cloud: LocalCloud, function: str) -> list[dict[str, Any]]:
    return [i for i in cloud.fc.invocations() if i["function"] == function]


def result_of(record: dict[str, Any]) -> Any:
    assert record["status"] == "succeeded", record
    return json.loads(record["result"])


def outcomes(items: list[dict[str, Any]]) -> dict[str, str]:
    """``{target name: outcome}`` of report items."""
    return {item["target"]["name"]: item["outcome"] for item in items}


def finding_checks(item: dict[str, Any]) -> set[str]:
    """The check ids of a report item's findings that are not waived notices."""
    return {f["check"] for f in item["findings"] if not f["waived"] and f["severity"] != "INFO"}
