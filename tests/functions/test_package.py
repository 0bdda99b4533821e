"""``make package`` artifacts: each zip, unpacked into a clean virtualenv on python3.10 and python3.12 (no localcloud,
no tests, nothing from this checkout on the path), runs its handler against localcloud with the role's STS keys.

The first run builds the dependency wheels once per Python version (``build/wheels``); later runs reuse them and
the installed dependency trees, so this test costs seconds, not minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from tlsguard.policy.model import RawHttpsConfig
from tlsguard.ports import BucketRef

from deploy import package as packaging
from tests.functions.conftest import (
    INBOUND_SECRET,
    STATE_BUCKET,
    cdn_domain,
    compliant_bucket,
    drifted_bucket,
    outsider,
    settle,
)

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ("3.10", "3.12")

DRIVER = r"""
import json, os, sys, types
sys.path.insert(0, os.getcwd())            # FC puts the code directory first on sys.path
import index
try:
    import localcloud  # noqa: F401
    leaked = True
except ImportError:
    leaked = False
spec = json.loads(os.environ.pop("DRIVER_SPEC"))
context = types.SimpleNamespace(request_id="1-test-" + spec["function"], region="cn-hangzhou",
                                account_id=spec["account"], function=types.SimpleNamespace(name=spec["function"]))
if spec["runtime"] == "3.10":
    context.credentials = types.SimpleNamespace(**spec["credentials"])
else:
    os.environ.update({"ALIBABA_CLOUD_ACCESS_KEY_ID": spec["credentials"]["access_key_id"],
                       "ALIBABA_CLOUD_ACCESS_KEY_SECRET": spec["credentials"]["access_key_secret"],
                       "ALIBABA_CLOUD_SECURITY_TOKEN": spec["credentials"]["security_token"]})
result = index.handler(sys.stdin.buffer.read(), context)
import tlsguard
print(json.dumps({"result": result, "leaked": leaked, "tlsguard": tlsguard.__file__,
                  "python": "%d.%d" % sys.version_info[:2]}))
"""


@pytest.fixture(scope="module", params=VERSIONS)
def runtime(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The six artifacts for one Python version, each unpacked, plus a clean venv of that version.

    Unpacked trees and the venv are cached under build/ by the zip's digest: a venv created ``--without-pip`` and
    never installed into stays clean, and an unchanged zip need not be unpacked again.
    """
    version: str = request.param
    built = packaging.package(version, dist=ROOT / "build" / "test-dist")
    base = ROOT / "build" / "test-unpacked" / f"py{version.replace('.', '')}"
    venv = base / "venv"
    base.mkdir(parents=True, exist_ok=True)
    if not (venv / "bin" / "python").exists():
        subprocess.run([packaging.find_python(version), "-m", "venv", "--without-pip", str(venv)], check=True)
    unpacked = {}
    for name, archive in built.items():
        assert archive.stat().st_size <= packaging.SIZE_BUDGET_BYTES, name
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
        target = base / f"{name}-{digest}"
        with zipfile.ZipFile(archive) as zipped:
            names = zipped.namelist()
            assert "index.py" in names and "tlsguard/functions/handlers.py" in names and "tlsguard.yaml" in names
            assert not [n for n in names if n.startswith(("localcloud/", "tests/", "functions/"))]
            assert "cert-policy.yaml" not in names  # one policy file: certificates.cdn_https lives in tlsguard.yaml
            if not (target / "index.py").exists():
                for stale in base.glob(f"{name}-*"):
                    shutil.rmtree(stale, ignore_errors=True)
                staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=base))
                zipped.extractall(staging)
                try:
                    staging.rename(target)  # atomic: a concurrent run sees all of it or none
                except OSError:
                    shutil.rmtree(staging, ignore_errors=True)
        unpacked[name] = target
    # Only the sweep carries the FC SDK (the others stay small).
    assert (unpacked["sweep"] / "alibabacloud_fc20230330").is_dir()
    assert not (unpacked["check"] / "alibabacloud_fc20230330").exists()
    # The CDN/CAS RPC SDK (and cryptography, for chains and the trust store) in every function: each wires the same
    # ports, and the lifecycle runs over custom domains and CDN domains.
    for name in packaging.FUNCTIONS:
        assert (unpacked[name] / "aliyunsdkcore").is_dir() and (unpacked[name] / "cryptography").is_dir(), name
    return {"version": version, "python": str(venv / "bin" / "python"), "dirs": unpacked}


def invoke(runtime: dict[str, Any], cloud: LocalCloud, endpoints_file: Path, function: str, event: bytes,
           extra_env: dict[str, str] | None = None) -> Any:
    principal = cloud.iam.assume_role(cloud.default_account_id, "tlsguard-fc-role", f"tlsguard-{function}",
                                      cloud.clock.time(), 3600)
    spec = {"function": f"tlsguard-{function}", "runtime": runtime["version"], "account": cloud.default_account_id,
            "credentials": {"access_key_id": principal.access_key_id,
                            "access_key_secret": principal.access_key_secret,
                            "security_token": principal.security_token}}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "TLSGUARD_LOCALCLOUD": str(endpoints_file), "TLSGUARD_POLICY": "tlsguard.yaml",
           "DRIVER_SPEC": json.dumps(spec), **(extra_env or {})}
    completed = subprocess.run([runtime["python"], "-I", "-c", DRIVER], input=event, capture_output=True,
                               cwd=runtime["dirs"][function], env=env, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    answer = json.loads(completed.stdout.decode().strip().splitlines()[-1])
    assert answer["leaked"] is False and answer["python"] == runtime["version"]
    assert answer["tlsguard"].startswith(str(runtime["dirs"][function]))
    return answer["result"]


# A fresh checkout builds the wheelhouse first (about 1-2 min per Python version, the only online step).
@pytest.mark.timeout(900)
def test_every_artifact_runs_its_handler_against_localcloud(runtime: dict[str, Any], cloud: LocalCloud,
                                                            endpoints_file: Path, no_timers: None) -> None:
    from localcloud.sdeploy import deploy

    cloud.seed({"buckets": [{"name": STATE_BUCKET, "region": "cn-hangzhou"}, compliant_bucket("pkg-ok"),
                            drifted_bucket("pkg-drifted"), drifted_bucket("pkg-batch", "cn-shanghai"),
                            drifted_bucket("pkg-event"), drifted_bucket("pkg-hook")]})
    # The in-process functions stand in for the deployed check function the sweep fans out to.
    deployment = deploy(cloud, endpoints_file=endpoints_file, policy=ROOT / "examples" / "tlsguard.yaml",
                        environ={})
    for rule in cloud.events.rules():
        cloud.events.set_enabled(rule.name, False)
    try:
        # check: one batch
        body = invoke(runtime, cloud, endpoints_file, "check", json.dumps(
            {"buckets": [{"name": "pkg-batch", "region": "cn-shanghai"}]}).encode())
        assert [(t["target"]["name"], t["outcome"]) for t in body["targets"]] == [("pkg-batch", "remediated")]
        # check: the sweep's batch form, every kind of target named by kind
        body = invoke(runtime, cloud, endpoints_file, "check", json.dumps(
            {"correlation_id": "pkg", "batch": 1, "targets": [{"kind": "oss-bucket", "name": "pkg-ok",
                                                               "region": "cn-hangzhou"}]}).encode())
        assert body["correlation_id"] == "pkg" and body["batch"] == 1
        assert body["summary"]["targets"] == 1 and body["summary"]["failed"] == 0
        # on_change: a real ActionTrail CloudEvent from an outsider's change
        outsider(cloud).put_https_config(BucketRef("pkg-event", "cn-hangzhou"),
                                         RawHttpsConfig(tls_enabled=True, tls_versions=("TLSv1.0", "TLSv1.2")))
        event = cloud.trail.events()[-1]
        body = invoke(runtime, cloud, endpoints_file, "on_change", json.dumps(event).encode())
        assert [(h["target"]["name"], h["outcome"]) for h in body["handled"]] == [("pkg-event", "remediated")]
        # on_change: a CDN posture event (the CDN RPC SDK; certificates.cdn_https of the packaged policy)
        cloud.seed({"certificates": [{"name": "pkg-cert", "kind": "valid", "domains": ["pkg.cdn.example"]}],
                    "cdn_domains": [cdn_domain("pkg.cdn.example", "pkg-cert", https_tls_version={
                        "tls10": "on", "tls11": "on", "tls12": "on", "tls13": "on", "ciphersuitegroup": "all"})]})
        cdn_event = {**event, "id": "PKG-CDN-1", "source": "acs.cdn", "type": "cdn:ActionTrail:ApiCall",
                     "data": {**event["data"], "eventName": "BatchSetCdnDomainConfig", "eventId": "PKG-CDN-1",
                              "referencedResources": {"ACS::CDN::Domain": ["pkg.cdn.example"]}}}
        body = invoke(runtime, cloud, endpoints_file, "on_change", json.dumps(cdn_event).encode())
        assert [(h["target"]["name"], h["target"]["kind"], h["outcome"]) for h in body["handled"]] == [
            ("pkg.cdn.example", "cdn-domain", "remediated")]
        # webhook: a signed HTTP-trigger event
        raw = b'{"buckets": ["pkg-hook"]}'
        stamp = str(int(time.time()))
        signature = "sha256=" + hmac.new(INBOUND_SECRET.encode(), stamp.encode() + b"." + raw,
                                         hashlib.sha256).hexdigest()
        http_event = {"version": "v1", "rawPath": "/", "body": raw.decode(), "isBase64Encoded": False,
                      "headers": {"X-Tlsguard-Timestamp": stamp, "X-Tlsguard-Signature": signature},
                      "queryParameters": {}, "requestContext": {"http": {"method": "POST", "path": "/"}}}
        answer = invoke(runtime, cloud, endpoints_file, "webhook", json.dumps(http_event).encode(),
                        {"TLSGUARD_INBOUND_SECRET": INBOUND_SECRET})
        assert answer["statusCode"] == 200
        report = json.loads(answer["body"])
        assert report["report_version"] == "2.0" and [t["outcome"] for t in report["targets"]] == ["drifted"]
        # failed: an FC destination event (no alert URL configured, so it only logs)
        body = invoke(runtime, cloud, endpoints_file, "failed", json.dumps({
            "requestContext": {"requestId": "1-x", "functionArn": "acs:fc:cn-hangzhou:1:functions/tlsguard-check",
                               "condition": "UnhandledInvocationError", "approximateInvokeCount": 4},
            "requestPayload": "{}", "responsePayload": "{}"}).encode())
        assert body == {"function": "failed", "alerted": False, "failed_function": "tlsguard-check",
                        "request_id": "1-x"}
        # cert_renewal: every domain (live handshakes through the TLS plane); nothing is due in this fleet
        body = invoke(runtime, cloud, endpoints_file, "cert_renewal", json.dumps(
            {"triggerTime": "2026-11-23T01:00:00Z", "triggerName": "daily", "payload": "{}"}).encode())
        assert body["function"] == "cert_renewal" and body["errors"] == []
        assert body["summary"]["by_kind"] == {"oss-bucket": 0, "oss-cname": 0, "cdn-domain": 1}
        assert body["summary"]["remediated"] == body["summary"]["drifted"] == body["summary"]["failed"] == 0
        # sweep: fans out (threshold 1) through the FC SDK in the artifact to localcloud's check function
        body = invoke(runtime, cloud, endpoints_file, "sweep", json.dumps(
            {"triggerTime": "2026-11-23T00:00:00Z", "triggerName": "hourly",
             "payload": '{"threshold": 1, "batch_size": 2}'}).encode())
        assert body["fanout"] is True and body["targets"] == 6 and body["batches"] == 3  # 5 buckets, 1 CDN domain
        settle(cloud)
        checks = [i for i in cloud.fc.invocations() if i["function"] == "tlsguard-check"]
        assert len(checks) == 3 and all(i["status"] == "succeeded" for i in checks)
        assert set(outsider(cloud).get_https_config(BucketRef("pkg-drifted", "cn-hangzhou")).tls_versions) == {
            "TLSv1.2", "TLSv1.3"}
    finally:
        deployment.close()


@pytest.mark.timeout(900)
def test_the_artifact_zip_is_reproducible(tmp_path: Path) -> None:
    first = packaging.package("3.12", dist=tmp_path / "a", functions=("check",))["check"]
    again = packaging.package("3.12", dist=tmp_path / "b", functions=("check",))["check"]
    assert hashlib.sha256(again.read_bytes()).hexdigest() == hashlib.sha256(first.read_bytes()).hexdigest()
    # A second build with unchanged inputs reuses the zip instead of rebuilding it.
    stamp = again.stat().st_mtime_ns
    assert packaging.package("3.12", dist=tmp_path / "b", functions=("check",))["check"].stat().st_mtime_ns == stamp
