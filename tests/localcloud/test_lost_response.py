"""The ``lost_response`` fault: the request is carried out (a write lands and is trailed), then the connection is
closed without an answer, so the client cannot tell whether its write happened. Seen through the official SDKs."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from typing import Any

import alibabacloud_oss_v2 as oss
import pytest
from aliyunsdkcore.acs_exception.exceptions import ClientException

from tests.localcloud._rpc_clients import common_call, make_client

ROOT = ("LCTESTROOTKEY0000001", "lc-test-root-secret-0000000000001")
LEGACY = {"tls": {"enable": True, "versions": ["TLSv1.0", "TLSv1.1", "TLSv1.2"]}}


def _client(cloud: Any) -> oss.Client:
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(*ROOT)
    cfg.region = "cn-hangzhou"
    cfg.endpoint = cloud.endpoints["oss"]
    cfg.retry_max_attempts = 1  # one attempt: what the client sees of the one request
    return oss.Client(cfg)


def _add_fault(cloud: Any, spec: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(cloud.endpoints["control"] + "/faults", method="POST",
                                     data=json.dumps(spec).encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        rule: dict[str, Any] = json.loads(response.read())
    return rule


def _trailed(cloud: Any, event_name: str) -> list[dict[str, Any]]:
    return [e["data"] for e in cloud.trail.events() if e["data"]["eventName"] == event_name]


def _https_versions(client: oss.Client, bucket: str) -> list[str]:
    result = client.get_bucket_https_config(oss.GetBucketHttpsConfigRequest(bucket=bucket))
    return list(result.https_configuration.tls.tls_versions or [])


def test_a_lost_response_carries_the_write_out_and_the_client_gets_no_answer(cloud: Any) -> None:
    cloud.seed({"buckets": [{"name": "lost-answer", "https_config": LEGACY}]})
    client = _client(cloud)
    # GIVEN a lost_response fault on the next PutBucketHttpsConfig (added through the control API)
    rule = _add_fault(cloud, {"kind": "lost_response", "service": "oss", "operation": "PutBucketHttpsConfig",
                              "remaining": 1})
    assert rule["kind"] == "lost_response"
    document = oss.HttpsConfiguration(tls=oss.TLS(enable=True, tls_versions=["TLSv1.2", "TLSv1.3"]))
    # WHEN the SDK writes: THEN it sees no answer at all (no status, no error code: a dropped connection)
    with pytest.raises(Exception) as info:
        client.put_bucket_https_config(oss.PutBucketHttpsConfigRequest(bucket="lost-answer",
                                                                       https_configuration=document))
    assert not isinstance(info.value, oss.exceptions.ServiceError)
    assert getattr(info.value, "status_code", None) is None
    # AND yet the write landed: a re-read shows it, and ActionTrail recorded it once, without an error
    assert _https_versions(client, "lost-answer") == ["TLSv1.2", "TLSv1.3"]
    events = _trailed(cloud, "PutBucketHttpsConfig")
    assert len(events) == 1 and "errorCode" not in events[0]
    assert [r.hits for r in cloud.faults.rules()] == [1]
    # AND the fault is used up: the next write is answered normally
    client.put_bucket_https_config(oss.PutBucketHttpsConfigRequest(bucket="lost-answer", https_configuration=document))
    assert len(_trailed(cloud, "PutBucketHttpsConfig")) == 2


def test_a_reset_is_not_a_lost_response_the_write_never_happens(cloud: Any) -> None:
    cloud.seed({"buckets": [{"name": "reset-answer", "https_config": LEGACY}]})
    client = _client(cloud)
    _add_fault(cloud, {"kind": "reset", "service": "oss", "operation": "PutBucketHttpsConfig", "remaining": 1})
    document = oss.HttpsConfiguration(tls=oss.TLS(enable=True, tls_versions=["TLSv1.2", "TLSv1.3"]))
    with pytest.raises(Exception) as info:
        client.put_bucket_https_config(oss.PutBucketHttpsConfigRequest(bucket="reset-answer",
                                                                       https_configuration=document))
    assert not isinstance(info.value, oss.exceptions.ServiceError)
    assert _https_versions(client, "reset-answer") == ["TLSv1.0", "TLSv1.1", "TLSv1.2"]
    assert _trailed(cloud, "PutBucketHttpsConfig") == []


def test_a_lost_rpc_response_lands_the_cdn_write(cloud: Any) -> None:
    cloud.seed({"certificates": [{"name": "lost-cdn", "kind": "valid", "domains": ["www.lost.example"]}],
                "cdn_domains": [{"name": "www.lost.example", "certificate": "lost-cdn"}]})
    client = make_client()
    endpoint = cloud.endpoints["cdn"]
    _add_fault(cloud, {"kind": "lost_response", "service": "cdn", "operation": "BatchSetCdnDomainConfig",
                       "resource": "www.lost.example", "remaining": 1})
    functions = json.dumps([{"functionName": "https_force",
                             "functionArgs": [{"argName": "enable", "argValue": "on"}]}])
    # aliyunsdkcore reports the dropped connection as a client-side error, never as a server answer
    with pytest.raises(ClientException):
        common_call(client, endpoint, "2018-05-10", "BatchSetCdnDomainConfig", DomainNames="www.lost.example",
                    Functions=functions)
    configs = common_call(client, endpoint, "2018-05-10", "DescribeCdnDomainConfigs",
                          DomainName="www.lost.example", FunctionNames="https_force")
    found = configs["DomainConfigs"]["DomainConfig"]
    assert [c["FunctionName"] for c in found] == ["https_force"]
    assert len(_trailed(cloud, "BatchSetCdnDomainConfig")) == 1


def _cutting_proxy(upstream_port: int, keep_body_bytes: int) -> tuple[int, threading.Thread]:
    """A one-connection TCP proxy that forwards a request's headers and ``keep_body_bytes`` of its body, then closes
    both sides: what the cloud sees of a client killed while sending."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def run() -> None:
        client, _ = listener.accept()
        listener.close()
        upstream = socket.create_connection(("127.0.0.1", upstream_port))
        received = b""
        try:
            while b"\r\n\r\n" not in received:
                chunk = client.recv(65536)
                if not chunk:
                    return
                received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            while len(body) < keep_body_bytes:
                chunk = client.recv(65536)
                if not chunk:
                    break
                body += chunk
            upstream.sendall(head + b"\r\n\r\n" + body[:keep_body_bytes])
            time.sleep(0.2)
        finally:
            upstream.close()
            client.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return port, thread


@pytest.mark.parametrize("keep", [0, 7])
def test_a_request_cut_short_by_a_dying_client_is_never_carried_out(cloud: Any, keep: int) -> None:
    cloud.seed({"buckets": [{"name": "cut-short"}]})
    port, thread = _cutting_proxy(int(cloud.endpoints["oss"].rsplit(":", 1)[1]), keep)
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(*ROOT)
    cfg.region = "cn-hangzhou"
    cfg.endpoint = f"http://127.0.0.1:{port}"
    cfg.retry_max_attempts = 1
    cfg.connect_timeout = 5
    cfg.readwrite_timeout = 5
    body = b'{"journal": "a whole document the client never finished sending"}'
    with pytest.raises(Exception):  # noqa: B017 - the SDK sees the connection closed, whatever it calls that
        oss.Client(cfg).put_object(oss.PutObjectRequest(bucket="cut-short", key="state/doc.json", body=body))
    thread.join(10)
    # THEN no object exists: the cloud never acts on a request whose body did not arrive whole
    assert "state/doc.json" not in cloud.oss.get("cut-short").objects
