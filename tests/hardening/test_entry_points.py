"""The function entry points under hostile input, end to end against localcloud (issue 14): the webhook's replay
protection (state bucket with forbid-overwrite, or per instance without one), raw HTTP requests with binary headers
and oversized bodies through localcloud's HTTP-trigger front, and a CloudEvents batch with one hostile event."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import pytest
from tlsguard.policy.model import RawHttpsConfig
from tlsguard.ports import BucketRef

from tests.functions.conftest import (
    INBOUND_SECRET,
    POLICY,
    STATE_BUCKET,
    compliant_bucket,
    deploy_functions,
    drifted_bucket,
    outsider,
    result_of,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from localcloud.cloud import LocalCloud
    from localcloud.sdeploy import Deployment

TLS10 = RawHttpsConfig(tls_enabled=True, tls_versions=("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"))
APPLY_BODY = b'{"buckets": ["app-drifted"], "apply": true}'


def fleet(cloud: LocalCloud) -> None:
    cloud.seed({"buckets": [{"name": STATE_BUCKET, "region": "cn-hangzhou"}, compliant_bucket("app-prod"),
                            drifted_bucket("app-drifted")]})


def deployed_with(cloud: LocalCloud, tmp_path: Path, policy: str) -> Deployment:
    path = tmp_path / "tlsguard.yaml"
    path.write_text(policy)
    return deploy_functions(cloud, tmp_path, path)


@pytest.fixture
def hold_timers(cloud: LocalCloud) -> Iterator[None]:
    saved = cloud.fc.timers_enabled
    cloud.fc.timers_enabled = False
    yield
    cloud.fc.timers_enabled = saved


def signed(body: bytes, stamp: str | None = None) -> list[tuple[str, bytes]]:
    timestamp = stamp or str(int(time.time()))
    digest = hmac.new(INBOUND_SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return [("X-Tlsguard-Timestamp", timestamp.encode()), ("X-Tlsguard-Signature", f"sha256={digest}".encode())]


def post(deployment: Deployment, body: bytes, headers: list[tuple[str, bytes]]) -> tuple[int, dict[str, Any]]:
    """One raw HTTP request to the webhook's HTTP trigger (header values are bytes: any bytes go on the wire)."""
    url = urllib.parse.urlsplit(deployment.http_triggers["tlsguard-webhook"])
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        connection.putrequest("POST", url.path + "/check")
        connection.putheader("Content-Type", b"application/json")
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()
    assert b"Traceback" not in answer
    return response.status, json.loads(answer)


def tls_versions(cloud: LocalCloud, bucket: str) -> set[str]:
    return set(outsider(cloud).get_https_config(BucketRef(bucket, "cn-hangzhou")).tls_versions)


def journal_intents(cloud: LocalCloud, bucket: str) -> list[str]:
    prefix = f"tlsguard/journal/oss-bucket/{bucket}/"
    return [k for k in outsider(cloud).list_objects(STATE_BUCKET, prefix) if k.endswith(".intent.json")]


# -- replay protection ---------------------------------------------------------------------------------------------
def test_ten_replays_of_a_signed_apply_request_are_accepted_once(cloud: LocalCloud, tmp_path: Path,
                                                                  hold_timers: None) -> None:
    fleet(cloud)
    deployment = deployed_with(cloud, tmp_path, POLICY)
    try:
        headers = signed(APPLY_BODY)
        answers = [post(deployment, APPLY_BODY, headers) for _ in range(10)]
    finally:
        deployment.close()
    assert [status for status, _ in answers] == [200] + [409] * 9
    assert answers[0][1]["targets"][0]["outcome"] == "remediated"
    assert all("already received" in body["error"] for _, body in answers[1:])
    assert tls_versions(cloud, "app-drifted") == {"TLSv1.2", "TLSv1.3"}
    assert len(journal_intents(cloud, "app-drifted")) == 1  # one run wrote, nine were refused before any work
    seen = list(outsider(cloud).list_objects(STATE_BUCKET, "tlsguard/webhook/seen/"))
    assert len(seen) == 1


def test_concurrent_copies_of_one_request_are_accepted_by_exactly_one_instance(cloud: LocalCloud, tmp_path: Path,
                                                                               hold_timers: None) -> None:
    """Ten copies at once land on concurrent FC instances: the forbid-overwrite create lets exactly one through."""
    fleet(cloud)
    deployment = deployed_with(cloud, tmp_path, POLICY)
    headers = signed(APPLY_BODY)
    statuses: list[int] = []
    start = threading.Barrier(10)

    def send() -> None:
        start.wait()
        statuses.append(post(deployment, APPLY_BODY, headers)[0])

    threads = [threading.Thread(target=send) for _ in range(10)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        deployment.close()
    assert sorted(statuses) == [200] + [409] * 9
    assert len(journal_intents(cloud, "app-drifted")) == 1


def test_without_a_state_bucket_replays_are_refused_per_instance_and_the_log_says_so(
        cloud: LocalCloud, tmp_path: Path, hold_timers: None, caplog: pytest.LogCaptureFixture) -> None:
    fleet(cloud)
    deployment = deployed_with(cloud, tmp_path, POLICY.replace("state: {bucket: tlsguard-state}\n", ""))
    try:
        body = b'{"buckets": ["app-prod"], "apply": true}'
        headers = signed(body)
        statuses = [post(deployment, body, headers)[0] for _ in range(10)]
        fresh = post(deployment, body, signed(body, str(int(time.time()) + 1)))[0]
    finally:
        deployment.close()
    assert statuses == [200] + [409] * 9
    assert fresh == 200  # the same body signed again with a new timestamp is a new request
    assert any("replay protection is per-instance" in r.getMessage() for r in caplog.records)


# -- raw HTTP: headers of any bytes, bodies of any size ------------------------------------------------------------
@pytest.mark.parametrize(("headers", "body", "status"), [
    ([("X-Tlsguard-Timestamp", b"1700000000"), ("X-Tlsguard-Signature", b"sha256=\xff\xfe" * 8)], b"{}", 401),
    ([("X-Tlsguard-Timestamp", b"1700000000"), ("X-Tlsguard-Signature", "sha256=\u00e9".encode() * 8)], b"{}", 401),
    ([("X-Tlsguard-Timestamp", b"\x80\x81"), ("X-Tlsguard-Signature", b"sha256=00")], b"{}", 401),
    (None, b'{"buckets": ["' + b"b" * 100_000 + b'"]}', 413),
    (None, b"\xff\xfe binary", 400),
    (None, b'{"buckets": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", 400),
    (None, b'{"buckets": ["../../etc/passwd"]}', 400),
])
def test_hostile_requests_get_a_4xx_with_a_reason_never_a_5xx(cloud: LocalCloud, tmp_path: Path,
                                                              hold_timers: None, headers: Any, body: bytes,
                                                              status: int) -> None:
    fleet(cloud)
    deployment = deployed_with(cloud, tmp_path, POLICY)
    try:
        answer_status, answer = post(deployment, body, headers if headers is not None else signed(body))
    finally:
        deployment.close()
    assert answer_status == status and isinstance(answer.get("error"), str) and answer["error"]


# -- a CloudEvents batch with one hostile event --------------------------------------------------------------------
def test_a_batch_with_one_hostile_event_still_handles_the_good_ones(cloud: LocalCloud, tmp_path: Path,
                                                                    hold_timers: None) -> None:
    fleet(cloud)
    cloud.seed({"buckets": [compliant_bucket("app-other")]})
    oss = outsider(cloud)
    for bucket in ("app-prod", "app-other"):
        oss.put_https_config(BucketRef(bucket, "cn-hangzhou"), TLS10)
    first, second = cloud.trail.events()[-2:]  # exactly as EventBridge delivers them (rules not deployed yet)
    deployment = deployed_with(cloud, tmp_path, POLICY)
    hostile = '{"id": "X", "data": ' + "[" * 50_000 + "]" * 50_000 + "}"
    try:
        record = cloud.fc.invoke("tlsguard-on-change",
                                 f"[{json.dumps(first)}, {hostile}, {json.dumps(second)}]".encode())
    finally:
        deployment.close()
    body = result_of(record)
    assert sorted((h["target"]["name"], h["outcome"]) for h in body["handled"]) == [
        ("app-other", "remediated"), ("app-prod", "remediated")]
    [skipped] = body["skipped"]
    assert "nests deeper than 64 levels" in skipped["reason"]
    assert tls_versions(cloud, "app-prod") == tls_versions(cloud, "app-other") == {"TLSv1.2", "TLSv1.3"}
